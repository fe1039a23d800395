"""Label-quality diagnostics on scenes with GT: where, between the 2D masks and the 3D labels, quality is lost.

These are **diagnostics, not methods**: each uses the GT to remove one source of error, so that the ablation's
method rows can be read against what was reachable. All of them run on the keyframes `sam2_track` proposes on
(every ``keyframe_stride``-th frame) and lift with exactly its lifting settings (:class:`LiftSettings` mirrors
``sam2_track.lift``), and are scored by the same evaluator as the ablation rows.

* ``ceiling``: the GT instance maps of those keyframes, each instance under ``min_area`` pixels in a frame
  removed there (what a perfect 2D segmenter plus perfect tracking could give, at the pipeline's keyframe, size
  and lifting settings). If this is low, the default's resolution / strides / thresholds hide objects.
* ``perfect_identity``: the proposer's containment-filtered masks, each mask given the id of the GT instance it
  overlaps at IoU >= ``match_iou`` (the best one), every other mask a fresh id of its own (no identity across
  frames). What the proposals are worth with a perfect tracker: the gap to the ceiling is the proposer's, the gap
  from here to the lift-only row is the tracker's.
* ``coverage``: the fraction of GT instances (>= ``coverage_min_area`` pixels on a keyframe, counted per
  keyframe) that some proposal matches at IoU >= ``coverage_iou``, before and after the containment filter.

Confidence of a lifted id = its mean vote share (as the lift-only row): never a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from gcseg.eval.ablation import RowPrediction, lift_only_predictions
from gcseg.lifting import VoteAccumulator
from gcseg.proposals.base import Proposals
from gcseg.proposals.containment import containment_filter
from gcseg.proposals.coverage import best_iou_per_instance
from gcseg.scene import Frame, PointCloud, Scene

DIAGNOSTIC_ROWS: tuple[str, ...] = ("ceiling", "perfect_identity")
DIAGNOSTIC_TITLES: dict[str, str] = {
    "ceiling": "Diagnostic: GT 2D masks on the keyframes, lifted (ceiling)",
    "perfect_identity": "Diagnostic: proposals with perfect identity, lifted",
}
FRESH_ID_BASE = 1 << 20  # ids of proposals without a GT match: above any GT instance id


@dataclass(frozen=True)
class LiftSettings:
    """The lifting settings of `sam2_track` (``sam2_track.lift``), shared so that diagnostics lift identically."""

    association: str = "point"
    max_dist: float = 0.05
    voxel: float | None = 0.01
    min_share: float = 0.5
    min_points: int = 100


@dataclass
class Coverage:
    """GT instances on keyframes (>= the minimum size) and how many some mask matches, before / after the filter."""

    instances: int = 0
    hits_proposals: int = 0
    hits_kept: int = 0

    def add(self, other: Coverage) -> None:
        self.instances += other.instances
        self.hits_proposals += other.hits_proposals
        self.hits_kept += other.hits_kept

    def to_json(self) -> dict[str, float | int | None]:
        n = self.instances
        return {"gt_instances": n,
                "before_containment": round(self.hits_proposals / n, 6) if n else None,
                "after_containment": round(self.hits_kept / n, 6) if n else None}


@dataclass
class SceneDiagnostics:
    """One scene's diagnostic predictions (on its reference cloud) and proposal coverage."""

    scene_id: str
    rows: dict[str, RowPrediction] = field(default_factory=dict)
    coverage: Coverage = field(default_factory=Coverage)


def ceiling_id_map(instance: np.ndarray, min_area: int) -> np.ndarray:
    """GT instance map with instances under `min_area` pixels (in this frame) set to 0; int64 (H, W)."""
    inst = np.asarray(instance, np.int64)
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    small = ids[counts < max(int(min_area), 1)]
    return np.where(np.isin(inst, small), 0, inst) if small.size else inst.copy()


def perfect_identity_id_map(instance: np.ndarray, masks: np.ndarray, *, match_iou: float = 0.5,
                            fresh_start: int = FRESH_ID_BASE) -> tuple[np.ndarray, int]:
    """Masks (K, H, W), painted largest first (smaller masks on top, as Stage 1's id maps), each with the id of
    the GT instance it overlaps best if that IoU >= `match_iou`, else a fresh id counting from `fresh_start`.
    Returns (id map int64 (H, W), next fresh id)."""
    inst = np.asarray(instance, np.int64)
    masks = np.asarray(masks, bool)
    out = np.zeros(inst.shape, np.int64)
    k = masks.shape[0]
    if k == 0:
        return out, fresh_start
    gt_ids = np.unique(inst[inst > 0])
    ids = np.empty(k, np.int64)
    if gt_ids.size:
        flat = masks.reshape(k, -1).astype(np.float32)
        gt = (inst.reshape(-1)[None, :] == gt_ids[:, None]).astype(np.float32)
        inter = flat @ gt.T
        union = flat.sum(1)[:, None] + gt.sum(1)[None, :] - inter
        iou = inter / np.maximum(union, 1.0)
        best = iou.argmax(1)
        matched = iou[np.arange(k), best] >= match_iou
    else:
        best = np.zeros(k, np.int64)
        matched = np.zeros(k, bool)
    nxt = int(fresh_start)
    for i in range(k):
        if matched[i]:
            ids[i] = gt_ids[best[i]]
        else:
            ids[i] = nxt
            nxt += 1
    areas = masks.reshape(k, -1).sum(1)
    for i in np.lexsort((np.arange(k), -areas)):  # largest first, ties by index: deterministic
        out[masks[i]] = ids[i]
    return out, nxt


def lift_views(coord: np.ndarray, views: Iterable[tuple[Frame, np.ndarray]], lift: LiftSettings) -> RowPrediction:
    """Vote id maps onto the reference points exactly as `sam2_track` does; one mask per surviving id with its
    mean vote share as confidence."""
    acc = VoteAccumulator(np.asarray(coord, np.float32), max_dist=lift.max_dist, voxel=lift.voxel,
                          association=lift.association)
    for frame, id_map in views:
        acc.add(frame, id_map)
    labels = acc.result(min_share=lift.min_share, min_points=lift.min_points).astype(np.int64)
    point, ids, count = acc.votes()
    shares = np.zeros(labels.shape[0], np.float64)
    if point.size:
        total = np.bincount(point, weights=count, minlength=labels.shape[0])
        mine = (ids > 0) & (labels[point] == ids)
        shares[point[mine]] = count[mine] / total[point[mine]]
    return lift_only_predictions(labels, shares)


def scene_diagnostics(scene: Scene, proposer: Callable[[Frame], Proposals] | None, keyframes: Iterable[int], *,
                      tau_contain: float, min_area: int, lift: LiftSettings, coverage_min_area: int,
                      coverage_iou: float = 0.5, match_iou: float = 0.5,
                      cloud: PointCloud | None = None) -> SceneDiagnostics:
    """The diagnostics of one scene with per-frame GT (`Frame.instance`). `proposer` None: ceiling only.

    Each keyframe is read once; the proposer runs once per keyframe (the same masks feed coverage and the
    perfect-identity row)."""
    cloud = cloud if cloud is not None else scene.reference()
    if cloud is None or len(cloud) == 0:
        from gcseg.errors import InputError

        raise InputError(f"scene {scene.scene_id} has no reference cloud to lift onto",
                         fix="diagnostics need a scene with a reference cloud and GT")
    out = SceneDiagnostics(scene.scene_id)
    ceiling_views: list[tuple[Frame, np.ndarray]] = []
    identity_views: list[tuple[Frame, np.ndarray]] = []
    fresh = FRESH_ID_BASE
    for i in keyframes:
        frame = scene.frame(int(i))
        if frame.instance is None:
            continue
        gt = np.asarray(frame.instance)
        ceiling_views.append((frame, ceiling_id_map(gt, min_area)))
        if proposer is None:
            continue
        props = proposer(frame)
        kept = containment_filter(props.masks, props.scores, tau_contain, min_area)
        masks = props.masks[np.sort(kept)]
        before = best_iou_per_instance(gt, props.masks, coverage_min_area)
        after = best_iou_per_instance(gt, masks, coverage_min_area)
        out.coverage.add(Coverage(len(before), int((before >= coverage_iou).sum()),
                                  int((after >= coverage_iou).sum())))
        id_map, fresh = perfect_identity_id_map(gt, masks, match_iou=match_iou, fresh_start=fresh)
        identity_views.append((frame, id_map))
    if ceiling_views:
        out.rows["ceiling"] = lift_views(cloud.coord, ceiling_views, lift)
    if proposer is not None and identity_views:
        out.rows["perfect_identity"] = lift_views(cloud.coord, identity_views, lift)
    return out
