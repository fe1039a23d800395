"""Instances of one scan without training: what ``gcseg segment --input SCAN --out DIR`` runs.

The training-free half of the method on a single scan, no model needed: keyframe mask proposals (the
pipeline's proposer), the containment filter, Algorithm 1 tracking (gcseg.tracking.run.track_and_lift) and
voting of the tracked id maps onto the scan's points (its reference.ply or benchmark mesh, else a cloud fused
from the depth frames). Every tracked id that wins at least ``min_points`` points is one instance; its
confidence is the eval stage's lift-only row's (its points' vote shares, discounted where few views voted). With the same settings and scene
id the labels are those the ``sam2_track`` stage writes for that scan.

The outputs are ``gcseg predict``'s (gcseg.predict.write_prediction: ScanNet benchmark files, an
instance-coloured PLY, a summary) plus a preview PNG (the scan's colours beside its instances).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import InputError
from gcseg.proposals.base import Proposals
from gcseg.scene import Frame, PointCloud, Scene
from gcseg.tracking.policy import TrackingPolicy
from gcseg.tracking.propagators import Propagator
from gcseg.tracking.run import LiftConfig

FRAME_SOURCES: tuple[str, ...] = ("auto", "posed_rgbd", "scannet", "scannetpp")
NEEDS_FRAMES = ("a posed RGB-D scan: a folder with color/, depth/, pose/, intrinsic/ (ScanNet exported layout), a "
                "ScanNet scene folder with exported frames, or a ScanNet++ scene folder with iphone/ frames")


@dataclass(frozen=True)
class TrackSettings:
    """How a scan is tracked and lifted (the `sam2_track` stage's settings; Stage 1's proposer min_area)."""

    keyframe_stride: int = 5
    tau_contain: float = 0.8
    min_area: int = 20  # pixels (the stages convert sam_keyframes.min_area_frac for the scan's image size)
    lift: LiftConfig = field(default_factory=LiftConfig)
    merge: Any = None  # sam2_track.merge settings (gcseg.tracking.merge), None = no merge


@dataclass(frozen=True)
class Segmentation:
    """Instances of one scan on its reference points: masks bool (K, N) and confidences float32 (K,), best
    first; ``stats`` = the tracker's statistics plus how the points were obtained."""

    cloud: PointCloud
    masks: np.ndarray
    scores: np.ndarray
    stats: dict[str, Any]


def open_scan(path: str | Path, *, source: str = "auto", scene_id: str | None = None) -> Scene:
    """A scan with frames. Its points: ``reference.ply`` (posed RGB-D), the benchmark mesh's vertices (ScanNet /
    ScanNet++; no label tables needed), else a cloud fused from every 10th depth frame at 2.5 cm.
    Cheap checks now (folders, frame lists, intrinsics); each frame is checked when it is read."""
    from gcseg.predict import detect_source, mesh_path, read_cloud_ply
    from gcseg.readers import _io

    path = Path(path)
    if source not in FRAME_SOURCES:
        raise InputError(f"unknown source {source!r} for segment", fix=f"use one of {', '.join(FRAME_SOURCES)}")
    if source == "auto":
        source = detect_source(path, supported=NEEDS_FRAMES)  # InputError: missing path, unreadable folder
    if source == "ply":
        raise InputError("a point cloud has no frames to track", path=path,
                         fix=f"give {NEEDS_FRAMES}; a bare point cloud needs a trained model: `gcseg predict "
                             "--input CLOUD.ply --checkpoint data/models/stage3/model.pt`")
    if not path.is_dir():
        raise InputError(f"a {source} scan must be a folder", path=path, fix=f"give {NEEDS_FRAMES}")
    sid = scene_id or path.name
    if source == "posed_rgbd":
        from gcseg.readers.posed_rgbd import open_posed_rgbd

        return open_posed_rgbd(path, scene_id=sid)
    if source == "scannet":
        from gcseg.readers.posed_rgbd import open_posed_rgbd

        scene = open_posed_rgbd(path, scene_id=sid, source="scannet", skip_nonfinite_poses=True)
    else:
        from gcseg.readers.scannetpp import open_scannetpp

        scene = open_scannetpp(path.parent, path.name)
        scene.scene_id = sid
    mesh = mesh_path(path, source)
    scene.load_reference = _io.once(lambda: read_cloud_ply(mesh))
    return scene


def segment_scene(scene: Scene, proposer: Callable[[Frame], Proposals], propagator: Propagator,
                  policy: TrackingPolicy, settings: TrackSettings | None = None, *,
                  progress: bool = False) -> Segmentation:
    """Track `scene`, lift the tracked ids onto its points and score each instance as the lift-only row
    does (its points' vote shares, discounted where few views voted: gcseg.eval.ablation.lift_only_predictions).
    An rgbd proposer without an up of its own gets the scene's (gcseg.proposals.factory.for_scene), as the
    stages give it."""
    from gcseg.eval.ablation import lift_only_predictions
    from gcseg.proposals.factory import for_scene
    from gcseg.tracking.run import track_and_lift

    settings = settings or TrackSettings()
    result, cloud, labels, shares, votes, _ = track_and_lift(
        scene, for_scene(proposer, scene), propagator, policy, keyframe_stride=settings.keyframe_stride,
        tau_contain=settings.tau_contain, min_area=settings.min_area, lift=settings.lift, merge=settings.merge,
        save_every=max(1, scene.num_frames),  # the id maps are voted as they stream; none is kept
        progress=progress)
    pred = lift_only_predictions(labels, shares, votes)
    stats = {**{k: result.stats[k] for k in sorted(result.stats)},
             "reference_points": len(cloud), "labelled_points": int((labels >= 0).sum())}
    return Segmentation(cloud=cloud, masks=np.asarray(pred.masks, bool), scores=np.asarray(pred.scores, np.float32),
                        stats=stats)


def preview_png(path: str | Path, cloud: PointCloud, instance: np.ndarray, up: np.ndarray, *, title: str,
                max_points: int = 80_000) -> Path:
    """The scan's colours beside its instances (the instance PLY's colours), seen obliquely from above with
    the world's `up` (gcseg.upright) pointing up; deterministic bytes."""
    from gcseg.report.static import cloud_pair_png
    from gcseg.upright import to_upright, upright_rotation

    coord = to_upright(np.asarray(cloud.coord, np.float32), upright_rotation(up))
    return cloud_pair_png(path, coord, cloud.color, np.asarray(instance, np.int64), title=title,
                          max_points=max_points)
