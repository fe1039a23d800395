"""One scene through the training-free baselines: the views they read and the rows they give.

The keyframe rows read the keyframes `sam2_track` proposes on (every ``keyframe_stride``-th frame) with the
proposer's masks after the containment filter, painted into one id map per keyframe as Stage 1 paints them
(smaller masks on top, gcseg.tracking.run.proposals_to_id_map). The tracked row reads the per-frame id maps stored
in the `sam2_track` artifact (every ``tracked_stride``-th stored frame). Every view is associated with the
reference cloud as `sam2_track` lifts (gcseg.baselines.views.collect_views).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gcseg.baselines.artifact import ROWS
from gcseg.baselines.maskclustering import MaskClusteringConfig, mask_clustering
from gcseg.baselines.sai3d import Sai3dConfig, sai3d
from gcseg.baselines.views import Instances, PointViews, collect_views
from gcseg.errors import ArtifactError
from gcseg.proposals.base import Proposals
from gcseg.proposals.containment import containment_filter
from gcseg.scene import Frame, Scene


@dataclass(frozen=True)
class BaselinesConfig:
    """Which rows to compute and how (params.yaml ``baselines:``)."""

    rows: tuple[str, ...] = ROWS
    max_dist: float = 0.05  # metres: depth agreement of the point association (= sam2_track.lift.max_dist)
    tracked_stride: int = 1  # the tracked row reads every n-th stored id map
    maskclustering: MaskClusteringConfig = field(default_factory=MaskClusteringConfig)
    sai3d: Sai3dConfig = field(default_factory=Sai3dConfig)

    def __post_init__(self) -> None:
        unknown = [r for r in self.rows if r not in ROWS]
        if unknown or len(set(self.rows)) != len(self.rows):
            raise ValueError(f"rows must be distinct names out of {', '.join(ROWS)}, got {list(self.rows)}")
        if self.max_dist <= 0 or self.tracked_stride < 1:
            raise ValueError("max_dist must be > 0 and tracked_stride >= 1")

    @property
    def needs_superpoints(self) -> bool:
        return any(r.startswith("sai3d") for r in self.rows)


def keyframe_views(scene: Scene, proposer: Callable[[Frame], Proposals], keyframes: list[int], *,
                   tau_contain: float, min_area: int) -> Iterator[tuple[Frame, np.ndarray]]:
    """(keyframe, id map of its containment-filtered proposals) for every keyframe, lazily."""
    from gcseg.tracking.run import proposals_to_id_map

    for i in keyframes:
        frame = scene.frame(int(i))
        props = proposer(frame)
        if props.masks.shape[1:] != frame.hw:
            from gcseg.errors import InputError

            raise InputError(f"proposals are {props.masks.shape[1:]} but frame {frame.index} is {frame.hw}",
                             fix="the proposer must return masks at the depth resolution")
        keep = np.sort(containment_filter(props.masks, props.scores, tau_contain, min_area))
        yield frame, proposals_to_id_map(Proposals(props.masks[keep], props.scores[keep])).astype(np.int64)


def tracked_views(scene: Scene, track_path: str | Path, stride: int) -> Iterator[tuple[Frame, np.ndarray]]:
    """(frame, tracked id map) for every `stride`-th id map stored in a sam2_track artifact, lazily."""
    from gcseg.io.h5 import open_h5
    from gcseg.tracking.artifact import SCHEMA, VERSION

    with open_h5(track_path, schema=SCHEMA, version=VERSION) as f:
        if "id_maps" not in f or "frames" not in f:
            raise ArtifactError("tracked-label artifact lacks id_maps or frames", path=track_path,
                                fix="rerun `dvc repro sam2_track`")
        frames = f["frames"][()].astype(np.int64)
        for i in range(0, frames.size, stride):
            yield scene.frame(int(frames[i])), f["id_maps"][i].astype(np.int64)


def track_cloud(track_path: str | Path) -> np.ndarray:
    """The reference cloud (float32 (N, 3)) a sam2_track artifact labels: the baselines label the same points."""
    from gcseg.io.h5 import open_h5
    from gcseg.tracking.artifact import SCHEMA, VERSION

    with open_h5(track_path, schema=SCHEMA, version=VERSION) as f:
        if "samples/scene/coord" not in f:
            raise ArtifactError("tracked-label artifact lacks samples/scene/coord", path=track_path,
                                fix="rerun `dvc repro sam2_track`")
        return f["samples/scene/coord"][()].astype(np.float32)


@dataclass
class SceneRows:
    """A scene's baseline rows and seconds per step (benchmarks and logs only; never written)."""

    rows: dict[str, Instances]
    timing: dict[str, float]

    def row_seconds(self) -> dict[str, float]:
        """Wall time of each row including the inputs it needs (a shared input counts for every row using it)."""
        t = self.timing
        kf = t.get("keyframe_views_s", 0.0)
        out = {}
        for r in self.rows:
            inputs = kf if r != "sai3d_tracked" else t.get("tracked_views_s", 0.0)
            if r.startswith("sai3d"):
                inputs += t.get("superpoints_s", 0.0)
            out[r] = round(inputs + t[f"{r}_s"], 3)
        return out


def run_scene(coord: np.ndarray, cfg: BaselinesConfig, *,
              keyframes: Callable[[], Iterator[tuple[Frame, np.ndarray]]] | None = None,
              tracked: Callable[[], Iterator[tuple[Frame, np.ndarray]]] | None = None,
              superpoints: Callable[[], np.ndarray] | None = None) -> SceneRows:
    """The configured rows of one scene. `keyframes` / `tracked`: view iterators (see keyframe_views /
    tracked_views), `superpoints`: the superpoint id per reference point; each is called only if a row needs it."""
    coord = np.asarray(coord, np.float32)
    timing: dict[str, float] = {}
    rows: dict[str, Instances] = {}
    kf_views: PointViews | None = None
    sp_ids: np.ndarray | None = None

    def timed(key: str, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        out = fn()
        timing[key] = timing.get(key, 0.0) + time.perf_counter() - t0
        return out

    if any(r in cfg.rows for r in ("maskclustering", "sai3d_keyframes")):
        if keyframes is None:
            raise ValueError("keyframe rows need the keyframe views")
        kf_views = timed("keyframe_views_s", lambda: collect_views(  # type: ignore[assignment]
            coord, keyframes(), max_dist=cfg.max_dist, boundary_px=cfg.maskclustering.boundary_px))
    if cfg.needs_superpoints:
        if superpoints is None:
            raise ValueError("SAI3D rows need superpoints")
        sp_ids = np.asarray(timed("superpoints_s", superpoints))
    if "maskclustering" in cfg.rows:
        rows["maskclustering"] = timed("maskclustering_s",  # type: ignore[assignment]
                                       lambda: mask_clustering(coord, kf_views, cfg.maskclustering))
    if "sai3d_keyframes" in cfg.rows:
        rows["sai3d_keyframes"] = timed("sai3d_keyframes_s",  # type: ignore[assignment]
                                        lambda: sai3d(coord, sp_ids, kf_views, cfg.sai3d))
    if "sai3d_tracked" in cfg.rows:
        if tracked is None:
            raise ValueError("the tracked row needs the tracked views")
        tr_views = timed("tracked_views_s", lambda: collect_views(coord, tracked(), max_dist=cfg.max_dist))
        rows["sai3d_tracked"] = timed("sai3d_tracked_s",  # type: ignore[assignment]
                                      lambda: sai3d(coord, sp_ids, tr_views, cfg.sai3d))
    return SceneRows(rows={r: rows[r] for r in cfg.rows}, timing={k: round(v, 3) for k, v in timing.items()})
