"""The per-scene artifact of `sam2_track`: lifted point labels + per-frame id maps + track statistics.

Layout (gcseg.io.samples, schema ``gcseg.sam2_track``): ``samples/scene/{coord, color, instance}`` (the scene's
reference cloud and its voted track ids, -1 = unlabelled), ``id_maps`` uint16 (F, H, W) (0 = no object; gzip,
one chunk per frame), ``frames`` int32 (F,) (frame numbers of the id maps), ``keyframes`` int32,
``tracks/{id, born_at, last_seen, ended_at, state}`` (state 0 ACTIVE, 1 DORMANT, 2 TERMINATED; ended_at -1 =
alive), ``track_stats/*`` and ``consistency/{tracked, tracked_keyframes, stage1_keyframes}/*`` scalars, ``config``
(the run config, JSON: gcseg.io.samples.is_finished).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import ArtifactError
from gcseg.io.h5 import open_h5
from gcseg.io.samples import SCHEMA_VERSION, config_json, write_point_samples
from gcseg.scene import PointCloud
from gcseg.tracking.policy import ObjectState, TrackingPolicy
from gcseg.tracking.run import TrackResult

SCHEMA = "gcseg.sam2_track"
STATE_CODE = {ObjectState.ACTIVE: 0, ObjectState.DORMANT: 1, ObjectState.TERMINATED: 2}


def tracks_table(policy: TrackingPolicy) -> dict[str, np.ndarray]:
    ids = sorted(policy.tracks)
    t = [policy.tracks[i] for i in ids]
    return {
        "id": np.asarray(ids, np.int32),
        "born_at": np.asarray([x.born_at for x in t], np.int32),
        "last_seen": np.asarray([x.last_seen for x in t], np.int32),
        "ended_at": np.asarray([-1 if x.ended_at is None else x.ended_at for x in t], np.int32),
        "state": np.asarray([STATE_CODE[x.state] for x in t], np.uint8),
    }


def write_track_artifact(path: str | Path, result: TrackResult, policy: TrackingPolicy, cloud: PointCloud,
                         labels: np.ndarray, consistency: dict[str, dict[str, float | int]],
                         config: dict[str, Any] | None = None) -> None:
    n = len(cloud)
    color = cloud.color if cloud.color is not None else np.zeros((n, 3), np.uint8)
    stats = dict(result.stats)
    stats["labelled_points"] = int((labels >= 0).sum())
    stats["lifted_instances"] = int(len(np.unique(labels[labels >= 0])))
    write_point_samples(path, {"scene": {"coord": cloud.coord, "color": color, "instance": labels}},
                        schema=SCHEMA, scene_id=result.scene_id,
                        extra={"id_maps": result.id_maps, "frames": result.frames,
                               "keyframes": np.asarray(result.keyframes, np.int32),
                               "tracks": tracks_table(policy), "track_stats": stats,
                               "consistency": consistency, "config": config_json(config)})


def _scalars(group: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in sorted(group):
        v = group[k][()]
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def read_summary(path: str | Path) -> dict[str, Any]:
    """track_stats and consistency of a written scene (small; the id maps are not read)."""
    with open_h5(path, schema=SCHEMA, version=SCHEMA_VERSION) as f:
        if "track_stats" not in f:
            raise ArtifactError("artifact has no track_stats", path=path, fix="rerun sam2_track")
        return {"track_stats": _scalars(f["track_stats"]),
                "consistency": {k: _scalars(f["consistency"][k]) for k in sorted(f["consistency"])}}
