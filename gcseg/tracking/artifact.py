"""The per-scene artifact of `sam2_track`: lifted point labels + per-frame id maps + track statistics.

Layout (gcseg.io.samples, schema ``gcseg.sam2_track``, version 3): ``samples/scene/{coord, color, instance,
share, votes}`` (the scene's reference cloud, its voted track ids, -1 = unlabelled, each point's vote share of its
id, float32, and its number of votes, int32: together the lift-only row's confidence, gcseg.lifting.wilson_lower),
``id_maps`` uint16 (F, H, W) (0 = no object; gzip, one chunk per
frame), ``frames`` int32 (F,) (frame numbers of the id maps), ``keyframes`` int32,
``tracks/{id, born_at, last_seen, ended_at, state}`` (state 0 ACTIVE, 1 DORMANT, 2 TERMINATED; ended_at -1 =
alive), ``track_stats/*`` and ``consistency/{tracked, tracked_keyframes, stage1_keyframes}/*`` scalars, ``config``
(the run config, JSON: gcseg.io.samples.is_finished).

Scenes `sam2_track` diagnoses (``sam2_track.diagnostics.split``) also hold ``diagnostics/``: per row
(``ceiling``, ``perfect_identity``: gcseg.eval.diagnostics, on scenes with per-frame GT; ``no_policy``:
gcseg.tracking.no_policy) ``{instance int32 (N,), share float32 (N,), votes int32 (N,)}`` lifted like the tracked labels,
``coverage/{gt_instances, hits_proposals, hits_kept}``, ``settings/*`` (what produced them, for the eval
stage to name each row's source) and, where the cloud has GT instances, ``views/{instance, points, views,
hits_proposals, hits_kept}`` int64 per GT object (gcseg.eval.diagnostics.ViewCounts; absent in older artifacts). Older versions (1: no shares, no diagnostics; 2: no votes) are rejected as stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import ArtifactError
from gcseg.eval.diagnostics import VIEW_FIELDS, ViewCounts
from gcseg.io.h5 import open_h5
from gcseg.io.samples import SCHEMA_VERSIONS, config_json, write_point_samples
from gcseg.io.samples import is_finished as _is_finished
from gcseg.scene import PointCloud
from gcseg.tracking.policy import ObjectState, TrackingPolicy
from gcseg.tracking.run import TrackResult

SCHEMA = "gcseg.sam2_track"
VERSION = SCHEMA_VERSIONS[SCHEMA]
LIFTED_ROWS: tuple[str, ...] = ("ceiling", "perfect_identity", "no_policy")  # rows a diagnostics group may hold
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


def _lifted(labels: np.ndarray, shares: np.ndarray, votes: np.ndarray, n: int, what: str) -> dict[str, np.ndarray]:
    labels, shares, votes = np.asarray(labels), np.asarray(shares), np.asarray(votes)
    if labels.shape != (n,) or shares.shape != (n,) or votes.shape != (n,):
        raise ValueError(f"{what}: labels {labels.shape}, shares {shares.shape} and votes {votes.shape} must all "
                         f"be ({n},)")
    if not np.isfinite(shares).all() or shares.min(initial=0) < 0 or shares.max(initial=0) > 1:
        raise ValueError(f"{what}: vote shares must lie in [0, 1]")
    if votes.min(initial=0) < 0:
        raise ValueError(f"{what}: vote counts must be >= 0")
    return {"instance": labels.astype(np.int32), "share": shares.astype(np.float32), "votes": votes.astype(np.int32)}


def diagnostics_tree(rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], coverage: Mapping[str, int],
                     settings: Mapping[str, Any], n: int,
                     views: ViewCounts | None = None) -> dict[str, Any]:
    """The ``diagnostics`` group: rows (name -> (labels, shares, votes) on the n reference points), coverage counts
    {gt_instances, hits_proposals, hits_kept}, settings (scalars / strings) and the per-view counts per GT object
    (None: none; their shapes were checked when the ViewCounts was built)."""
    unknown = set(rows) - set(LIFTED_ROWS)
    if unknown:
        raise ValueError(f"unknown diagnostic rows {sorted(unknown)}; expected some of {LIFTED_ROWS}")
    tree: dict[str, Any] = {k: _lifted(*rows[k], n, k) for k in sorted(rows)}
    tree["coverage"] = {k: int(coverage[k]) for k in ("gt_instances", "hits_proposals", "hits_kept")}
    tree["settings"] = dict(settings)
    if views is not None:
        tree["views"] = views.to_tree()
    return tree


def write_track_artifact(path: str | Path, result: TrackResult, policy: TrackingPolicy, cloud: PointCloud,
                         labels: np.ndarray, shares: np.ndarray, votes: np.ndarray,
                         consistency: dict[str, dict[str, float | int]],
                         diagnostics: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None) -> None:
    """Write one scene's artifact atomically. `shares`: each point's vote share of its label (float, [0, 1]);
    `votes`: each point's number of votes (int >= 0);
    `diagnostics`: a :func:`diagnostics_tree` (None: the scene is not diagnosed); `config`: the run config
    (gcseg.io.samples.is_finished compares it on a rerun)."""
    n = len(cloud)
    color = cloud.color if cloud.color is not None else np.zeros((n, 3), np.uint8)
    lifted = _lifted(labels, shares, votes, n, "tracked labels")
    stats = dict(result.stats)
    stats["labelled_points"] = int((labels >= 0).sum())
    stats["lifted_instances"] = int(len(np.unique(labels[labels >= 0])))
    extra = {"id_maps": result.id_maps, "frames": result.frames, "keyframes": np.asarray(result.keyframes, np.int32),
             "tracks": tracks_table(policy), "track_stats": stats, "consistency": consistency,
             "config": config_json(config)}
    if diagnostics is not None:
        extra["diagnostics"] = diagnostics
    write_point_samples(path, {"scene": {"coord": cloud.coord, "color": color, **lifted}},
                        schema=SCHEMA, scene_id=result.scene_id, extra=extra)


def _scalars(group: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in sorted(group):
        v = group[k][()]
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def read_summary(path: str | Path) -> dict[str, Any]:
    """track_stats and consistency of a written scene (small; the id maps are not read)."""
    with open_h5(path, schema=SCHEMA, version=VERSION) as f:
        if "track_stats" not in f:
            raise ArtifactError("artifact has no track_stats", path=path, fix="rerun sam2_track")
        return {"track_stats": _scalars(f["track_stats"]),
                "consistency": {k: _scalars(f["consistency"][k]) for k in sorted(f["consistency"])}}


def is_finished(path: Path, config: Mapping[str, Any] | None, diagnosed: bool = False) -> bool:
    """A readable artifact of this version written with run config `config` (with a diagnostics group if
    `diagnosed`): a resumed run skips it."""
    if not _is_finished(path, SCHEMA, config):
        return False
    try:
        read_summary(path)
        if diagnosed:
            with open_h5(path, schema=SCHEMA, version=VERSION) as f:
                return "diagnostics" in f
    except (ArtifactError, KeyError, OSError):
        return False
    return True


def _lifted_from(group: Any, path: str | Path, what: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if "instance" not in group or "share" not in group or "votes" not in group:
        raise ArtifactError(f"{what} lacks instance, share or votes", path=path, fix="rerun `dvc repro sam2_track`")
    labels, shares = group["instance"][()].astype(np.int64), group["share"][()].astype(np.float64)
    votes = group["votes"][()].astype(np.int64)
    if labels.shape != (n,) or shares.shape != (n,) or votes.shape != (n,):
        raise ArtifactError(f"{what}: {labels.shape[0]} labels / {shares.shape[0]} shares / {votes.shape[0]} votes "
                            f"for {n} points", path=path, fix="rerun `dvc repro sam2_track`")
    if not np.isfinite(shares).all() or shares.min(initial=0) < 0 or shares.max(initial=0) > 1:
        raise ArtifactError(f"{what}: vote shares outside [0, 1]", path=path, fix="rerun `dvc repro sam2_track`")
    if votes.min(initial=0) < 0:
        raise ArtifactError(f"{what}: negative vote counts", path=path, fix="rerun `dvc repro sam2_track`")
    return labels, shares, votes


def _views_from(g: Any, path: str | Path) -> dict[str, np.ndarray]:
    missing = [k for k in VIEW_FIELDS if k not in g]
    if missing:
        raise ArtifactError(f"diagnostics/views lacks {', '.join(missing)}", path=path,
                            fix="rerun `dvc repro sam2_track`")
    try:
        return ViewCounts(**{k: g[k][()] for k in VIEW_FIELDS}).to_tree()
    except ValueError as exc:
        raise ArtifactError(f"diagnostics/views: {exc}", path=path, fix="rerun `dvc repro sam2_track`") from exc


def read_lifted(path: str | Path) -> dict[str, Any]:
    """The lifted labels of a written scene and its diagnostics, without the id maps:
    {"coord" (N, 3), "labels" int64 (N,), "shares" float64 (N,), "votes" int64 (N,), "diagnostics": None or
    {"rows": {name: (labels, shares, votes)}, "coverage": {...}, "settings": {...}, "views": {...} or None}}."""
    with open_h5(path, schema=SCHEMA, version=VERSION) as f:
        if "samples/scene/coord" not in f:
            raise ArtifactError("artifact has no samples/scene", path=path, fix="rerun `dvc repro sam2_track`")
        coord = f["samples/scene/coord"][()]
        n = coord.shape[0]
        labels, shares, votes = _lifted_from(f["samples/scene"], path, "samples/scene", n)
        diag = None
        if "diagnostics" in f:
            g = f["diagnostics"]
            if "coverage" not in g or "settings" not in g:
                raise ArtifactError("diagnostics lack coverage or settings", path=path,
                                    fix="rerun `dvc repro sam2_track`")
            diag = {"rows": {k: _lifted_from(g[k], path, f"diagnostics/{k}", n) for k in LIFTED_ROWS if k in g},
                    "coverage": _scalars(g["coverage"]),
                    "settings": {k: (v.decode() if isinstance(v, bytes) else v)
                                 for k, v in _scalars(g["settings"]).items()},
                    "views": _views_from(g["views"], path) if "views" in g else None}
    return {"coord": coord, "labels": labels, "shares": shares, "votes": votes, "diagnostics": diag}
