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
* ``views`` (:class:`ViewCounts`): the same per GT object and keyframe, for every object shown on >= ``min_area``
  pixels (the ceiling's objects), with the object's size on the reference cloud, so that eval bins it like the
  rows: what the proposer finds view by view, against what survives the vote across views.

:class:`DiagnosticsAccumulator` collects them keyframe by keyframe, so that `sam2_track` computes them inside
its one tracking pass from the very proposals the tracker sees (no second proposer run; memory bounded by the
vote tables, not by the number of keyframes). :func:`scene_diagnostics` runs the same accumulation over a
scene's keyframes on its own (scratch studies, tests).

Confidence of a lifted id = the lift-only row's (mean vote share discounted for few votes,
gcseg.eval.ablation.lift_only_predictions): never a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gcseg.lifting import LiftConfig, VoteAccumulator
from gcseg.proposals.base import Proposals
from gcseg.proposals.containment import containment_filter
from gcseg.proposals.coverage import instance_best_iou
from gcseg.scene import Frame, PointCloud, Scene

if TYPE_CHECKING:  # the evaluator is imported lazily: sam2_track accumulates without it
    from gcseg.eval.ablation import RowPrediction

DIAGNOSTIC_ROWS: tuple[str, ...] = ("ceiling", "perfect_identity")  # use the GT
POLICY_ROWS: tuple[str, ...] = ("no_policy",)  # no GT: the policy ablation (gcseg.tracking.no_policy)
DIAGNOSTIC_TITLES: dict[str, str] = {
    "ceiling": "Ceiling: GT 2D masks on the keyframes, lifted",
    "perfect_identity": "Proposals with perfect identity, lifted",
    "no_policy": "Tracking without the policy, lifted",
}
FRESH_ID_BASE = 1 << 20  # ids of proposals without a GT match: above any GT instance id


@dataclass(frozen=True)
class LiftSettings(LiftConfig):
    """The lifting settings of `sam2_track` (``sam2_track.lift``: LiftConfig's fields), with the two steps the
    diagnostics take, so that they lift identically. The diagnostics vote every keyframe (``every`` unused)."""

    def accumulator(self, coord: np.ndarray) -> VoteAccumulator:
        return VoteAccumulator(np.asarray(coord, np.float32), max_dist=self.max_dist, voxel=self.voxel,
                               association=self.association)

    def lift(self, acc: VoteAccumulator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels int32 (N,), -1 = unlabelled; vote share of each point's label, float32 (N,); votes per point,
        int32 (N,))."""
        labels = acc.result(min_share=self.min_share, min_points=self.min_points, fine_share=self.fine_share)
        return labels, acc.label_shares(labels).astype(np.float32), acc.point_votes()


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


VIEW_FIELDS: tuple[str, ...] = ("instance", "points", "views", "hits_proposals", "hits_kept")


class ViewCounts:
    """Per GT object of a scene (ids >= 1 with points on the reference cloud): its points, the keyframes that show
    it on >= the ceiling's minimum area (`min_area` pixels), and on how many of those some proposal matches it at
    IoU >= coverage_iou, before / after the containment filter. Unlike the lifted rows this is per view: the gap
    from here to the perfect-identity row is what the vote across views loses (round 8, docs/model_study.md)."""

    def __init__(self, instance: np.ndarray, points: np.ndarray, views: np.ndarray | None = None,
                 hits_proposals: np.ndarray | None = None, hits_kept: np.ndarray | None = None):
        self.instance = np.asarray(instance, np.int64)  # (M,) GT instance ids, ascending
        self.points = np.asarray(points, np.int64)  # (M,) points of each on the reference cloud
        zero = np.zeros(len(self.instance), np.int64)
        self.views = zero.copy() if views is None else np.asarray(views, np.int64)
        self.hits_proposals = zero.copy() if hits_proposals is None else np.asarray(hits_proposals, np.int64)
        self.hits_kept = zero.copy() if hits_kept is None else np.asarray(hits_kept, np.int64)
        if self.instance.ndim != 1 or any(getattr(self, k).shape != self.instance.shape for k in VIEW_FIELDS):
            raise ValueError(f"view counts: {', '.join(VIEW_FIELDS)} must be 1-D, all with one entry per object")

    @classmethod
    def of_cloud(cls, instance: np.ndarray) -> ViewCounts:
        ids, counts = np.unique(np.asarray(instance, np.int64), return_counts=True)
        return cls(ids[ids > 0], counts[ids > 0])

    def add(self, ids: np.ndarray, raw_iou: np.ndarray, kept_iou: np.ndarray, iou: float) -> None:
        """One keyframe: the GT ids shown on >= the minimum area and each one's best IoU with the raw / kept masks
        (ids without points on the cloud are left out)."""
        if not len(self.instance):
            return
        pos = np.searchsorted(self.instance, ids)
        ok = (pos < len(self.instance)) & (self.instance[np.minimum(pos, len(self.instance) - 1)] == ids)
        pos = pos[ok]
        np.add.at(self.views, pos, 1)
        np.add.at(self.hits_proposals, pos, (np.asarray(raw_iou)[ok] >= iou).astype(np.int64))
        np.add.at(self.hits_kept, pos, (np.asarray(kept_iou)[ok] >= iou).astype(np.int64))

    def to_tree(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in VIEW_FIELDS}


@dataclass
class SceneDiagnostics:
    """One scene's diagnostic predictions (on its reference cloud), proposal coverage and, where the cloud has GT
    instances, the per-view counts."""

    scene_id: str
    rows: dict[str, RowPrediction] = field(default_factory=dict)
    coverage: Coverage = field(default_factory=Coverage)
    views: ViewCounts | None = None


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


class DiagnosticsAccumulator:
    """The diagnostics of one scene, accumulated keyframe by keyframe.

    Call :meth:`add` once per keyframe with the proposer's raw masks and the containment-filtered ones (or
    none: ceiling only); frames without GT (`Frame.instance` None) are skipped. Inside a tracking pass, wrap the
    proposer with :meth:`observe` and pass :meth:`on_keyframe` to ``gcseg.tracking.run.track_scene``: the
    filtered masks then are exactly those the tracker received. :meth:`lifted` / :meth:`result` give the rows.
    """

    def __init__(self, coord: np.ndarray, *, min_area: int, lift: LiftSettings, coverage_min_area: int,
                 coverage_iou: float = 0.5, match_iou: float = 0.5, instance: np.ndarray | None = None):
        self.lift = lift
        self.min_area = int(min_area)
        self.coverage_min_area = int(coverage_min_area)
        self.coverage_iou = float(coverage_iou)
        self.match_iou = float(match_iou)
        self.coverage = Coverage()
        self.keyframes = 0  # keyframes with GT seen
        self.keyframes_with_proposals = 0
        self._ceiling = lift.accumulator(coord)
        self._identity = lift.accumulator(coord)
        self._fresh = FRESH_ID_BASE
        self._raw: dict[int, Proposals] = {}
        # per-view counts need the cloud's GT instances (point counts = object sizes)
        self.views = ViewCounts.of_cloud(instance) if instance is not None else None

    def add(self, frame: Frame, proposals: Proposals | None = None, kept: np.ndarray | None = None) -> None:
        """One keyframe. `proposals`: the proposer's masks; `kept`: bool (K', H, W), those surviving the
        containment filter (and min area). Without proposals only the ceiling accumulates."""
        if frame.instance is None:
            return
        gt = np.asarray(frame.instance)
        self.keyframes += 1
        self._ceiling.add(frame, ceiling_id_map(gt, self.min_area))
        if proposals is None or kept is None:
            return
        self.keyframes_with_proposals += 1
        # one IoU pass per mask set serves both size thresholds (coverage, per-view counts)
        ids, counts, raw = instance_best_iou(gt, proposals.masks)
        _, _, after = instance_best_iou(gt, np.asarray(kept, bool))
        cov = counts >= self.coverage_min_area
        self.coverage.add(Coverage(int(cov.sum()), int((raw[cov] >= self.coverage_iou).sum()),
                                   int((after[cov] >= self.coverage_iou).sum())))
        if self.views is not None:
            shown = counts >= max(self.min_area, 1)
            self.views.add(ids[shown], raw[shown], after[shown], self.coverage_iou)
        id_map, self._fresh = perfect_identity_id_map(gt, kept, match_iou=self.match_iou, fresh_start=self._fresh)
        self._identity.add(frame, id_map)

    @property
    def view_counts(self) -> ViewCounts | None:
        """The per-view counts, or None without the cloud's GT or without a keyframe that had proposals."""
        return self.views if self.views is not None and self.keyframes_with_proposals else None

    def observe(self, proposer: Callable[[Frame], Proposals]) -> Callable[[Frame], Proposals]:
        """`proposer`, recording its raw output of each frame until :meth:`on_keyframe` consumes it."""

        def observed(frame: Frame) -> Proposals:
            props = proposer(frame)
            if frame.instance is not None:
                self._raw[frame.index] = props
            return props

        observed.name = getattr(proposer, "name", "proposer")  # type: ignore[attr-defined]
        return observed

    def on_keyframe(self, frame: Frame, kept: Proposals, step: Any = None) -> None:
        """A ``track_scene`` on_keyframe callback: `kept` = the filtered proposals the tracker received."""
        self.add(frame, self._raw.pop(frame.index, None), kept.masks)

    def lifted(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """row -> (labels int32 (N,), share float32 (N,), votes int32 (N,)) for the rows with data ({} without GT
        keyframes)."""
        out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if self.keyframes:
            out["ceiling"] = self.lift.lift(self._ceiling)
        if self.keyframes_with_proposals:
            out["perfect_identity"] = self.lift.lift(self._identity)
        return out

    def result(self, scene_id: str) -> SceneDiagnostics:
        from gcseg.eval.ablation import lift_only_predictions

        rows = {k: lift_only_predictions(*lifted) for k, lifted in self.lifted().items()}
        return SceneDiagnostics(scene_id, rows=rows, coverage=self.coverage, views=self.view_counts)


def lift_views(coord: np.ndarray, views: Iterable[tuple[Frame, np.ndarray]], lift: LiftSettings) -> RowPrediction:
    """Vote id maps onto the reference points exactly as `sam2_track` does; one mask per surviving id with the
    confidence of the lift-only row (gcseg.eval.ablation.lift_only_predictions)."""
    from gcseg.eval.ablation import lift_only_predictions

    acc = lift.accumulator(coord)
    for frame, id_map in views:
        acc.add(frame, id_map)
    return lift_only_predictions(*lift.lift(acc))


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
    acc = DiagnosticsAccumulator(cloud.coord, min_area=min_area, lift=lift, coverage_min_area=coverage_min_area,
                                 coverage_iou=coverage_iou, match_iou=match_iou, instance=cloud.instance)
    for i in keyframes:
        frame = scene.frame(int(i))
        if frame.instance is None:
            continue
        if proposer is None:
            acc.add(frame)
            continue
        props = proposer(frame)
        kept = containment_filter(props.masks, props.scores, tau_contain, min_area)
        acc.add(frame, props, props.masks[np.sort(kept)])
    return acc.result(scene.scene_id)


def setting_text(settings: list[dict[str, Any]], key: str) -> str:
    """A setting as text; several scenes with different values (e.g. pixel sizes of other image sizes): "a/b"."""
    vals = sorted({str(x[key]) for x in settings if key in x})
    return "/".join(vals) if vals else "?"


def row_source(name: str, settings: list[dict[str, Any]]) -> str:
    """Where a diagnostic row comes from, in words, from the settings sam2_track stored with it."""
    def g(k: str) -> str:
        return setting_text(settings, k)

    lift = "lifted with sam2_track.lift"
    if name == "ceiling":
        return (f"uses GT: GT instance maps of sam2_track's keyframes (every {g('keyframe_stride')}th frame), "
                f"instances under {g('min_area_px')} px dropped per frame; {lift}")
    if name == "perfect_identity":
        return (f"uses GT: {g('proposer')} proposals after containment (tau_contain {g('tau_contain')}, "
                f">= {g('min_area_px')} px) on the same keyframes, each given the id of the GT instance it overlaps "
                f"at IoU >= {g('match_iou')}, the others a fresh id; {lift}")
    if name == "no_policy":
        return (f"no GT: the same {g('proposer')} proposals and {g('propagator')} propagation as the tracked "
                "labels, every keyframe's proposals started as new objects (no matching, no gate; objects live "
                f"until the next keyframe); {lift}. Compare with the lift-only row")
    if name == "coverage":
        return (f"uses GT: GT instances >= {g('coverage_min_area_px')} px on sam2_track's keyframes matched at "
                f"IoU >= {g('coverage_iou')} by some {g('proposer')} proposal, before / after containment")
    raise ValueError(f"unknown diagnostic {name!r}")


def evaluate_diagnostics(val_scenes: Any, diagnosed: dict[str, dict[str, Any] | None],
                         **score: Any) -> dict[str, Any]:
    """The ``diagnostics`` block of metrics/eval.json: each row of :data:`DIAGNOSTIC_ROWS` and
    :data:`POLICY_ROWS` scored like the ablation rows (gcseg.eval.ablation.evaluate_rows with the same `score`
    options) over the val scenes that have it, plus the pooled proposal coverage; each entry names its source
    and number of scenes. `diagnosed`: scene id -> {"rows": {name: RowPrediction}, "coverage": counts,
    "settings": {...}} or None (scene without diagnostics)."""
    from gcseg.eval.ablation import evaluate_rows

    present = {k: v for k, v in diagnosed.items() if v is not None}
    settings = [present[k]["settings"] for k in sorted(present)]
    out: dict[str, Any] = {"note": "Diagnostics, not methods: ceiling, perfect_identity and coverage use the GT; "
                                   "no_policy is the policy ablation (no GT)."}
    for name in DIAGNOSTIC_ROWS + POLICY_ROWS:
        have = [v for v in val_scenes if v.scene_id in present and name in present[v.scene_id]["rows"]]
        if not have:
            continue
        res = evaluate_rows(have, {name: {v.scene_id: present[v.scene_id]["rows"][name] for v in have}}, **score)
        out[name] = {**res[name].metrics(), "scenes": len(have),
                     "source": row_source(name, [present[v.scene_id]["settings"] for v in have])}
    cov = [present[k]["coverage"] for k in sorted(present) if int(present[k]["coverage"]["gt_instances"]) > 0]
    if cov:
        total = Coverage(*(sum(int(c[k]) for c in cov) for k in ("gt_instances", "hits_proposals", "hits_kept")))
        out["coverage"] = {**total.to_json(), "scenes": len(cov), "source": row_source("coverage", settings)}
    return out


def _pct(x: Any) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * float(x):.1f}"


def diagnostics_markdown(block: dict[str, Any], *, num_scenes: int | None = None) -> str:
    """The diagnostics block as Markdown: a "Diagnostics (use GT; not methods)" table with the coverage line,
    then the "tracking without the policy" row beside which the lift-only row is read; each with its source."""
    head = ["| Row | AP | AP50 | AP25 | masks / scene | scenes |", "|---|---:|---:|---:|---:|---:|"]

    def line(name: str) -> str:
        r = block[name]
        return (f"| {DIAGNOSTIC_TITLES[name]} | {_pct(r.get('AP'))} | {_pct(r.get('AP50'))} | {_pct(r.get('AP25'))} "
                f"| {float(r['masks_per_scene']):.1f} | {r['scenes']} |")

    of = f" of {num_scenes}" if num_scenes is not None else ""
    lines = ["## Diagnostics (use GT; not methods)", ""]
    diag = [n for n in DIAGNOSTIC_ROWS if n in block]
    if diag:
        lines += head + [line(n) for n in diag] + [""]
        lines += [f"* {DIAGNOSTIC_TITLES[n]}: {block[n]['source']}." for n in diag]
    else:
        lines.append("No diagnostic rows: sam2_track wrote none for these scenes (they need per-frame GT and "
                     "`sam2_track.diagnostics.split` covering them).")
    if "coverage" in block:
        c = block["coverage"]
        lines.append(f"* Proposal coverage: {_pct(c['before_containment'])} % of {c['gt_instances']} GT instances "
                     f"before containment, {_pct(c['after_containment'])} % after ({c['scenes']}{of} scene(s); "
                     f"{c['source']}).")
    lines += ["", "## Tracking without the policy (the policy ablation; no GT)", ""]
    if "no_policy" in block:
        lines += head + [line("no_policy"), "", f"* {block['no_policy']['source']}."]
    else:
        lines.append("Not computed (`sam2_track.diagnostics.no_policy` off or no diagnosed scene).")
    return "\n".join(lines) + "\n"
