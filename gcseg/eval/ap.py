"""Class-agnostic instance AP with the exact semantics of ScanNet's benchmark script, vectorised.

Reference: ScanNet/ScanNet@3830fce ``BenchmarkScripts/3d_evaluation/evaluate_semantic_instance.py`` (a
CityScapes-style AP) and the ScanNet++ copy (scannetpp/scannetpp@f3b4712 ``semantic/eval/eval_instance.py``),
which adds a per-vertex ignore mask. Every GT instance whose label is in the GT set counts, all of them in one
class; every prediction is of that class. What the script does, and this module reproduces:

* IoU thresholds ``np.append(np.arange(0.5, 0.95, 0.05), 0.25)``; AP = nanmean over the nine values
  0.50..0.90 (``arange`` stops before 0.95), AP50 at 0.5, AP25 at 0.25. IoU must be *strictly* greater.
* GT instances (ids >= 1000 whose label ``id // 1000`` is in the set) with fewer than ``min_region_size``
  vertices are not GT; predicted masks with fewer vertices are dropped before anything else.
* Matching, per threshold: GT instances in ascending id order; for each, its overlapping predictions in input
  (file) order; the first one not yet matched elsewhere with IoU > t matches it (TP). Every later one with
  IoU > t on the same GT is a FP, and the GT keeps the *higher* of the two confidences (so the TP carries the
  maximum confidence of all its candidates, the FPs the others). Such a duplicate is not marked as used, so at
  t = 0.25 (where one mask can exceed the threshold on several GTs) it may still match a later GT.
  "File order" is the Python-3 ports' order (ScanNet++ ``eval_instance.py``, Mask3D); the original Python-2
  script iterates a dict, i.e. hash order. Order matters only at t = 0.25 when a mask has several candidates.
* A prediction with IoU > t on no GT instance of the set (small ones included) is a FP unless its share of
  ignored vertices exceeds t: ``(void + vertices of small GT instances) / |pred| > t``. Void = vertices whose
  label is outside the set (value < 1000 included). A prediction with IoU > t on a *small* GT is neither.
* Unmatched GT are "hard false negatives" (they lower recall at every confidence).
* AP = precision . step widths of the recall curve over unique confidences, with an artificial (recall 0,
  precision 1) end point and the script's ``np.convolve(recall, [-0.5, 0, 0.5], 'valid')`` integration.
  No GT in any scene -> NaN; GT but no prediction (after the size filter) -> 0.
* ScanNet++ ignore mask: vertices with ``valid == False`` are removed from GT and predictions first.

One deliberate difference: when there is GT and there are predictions but none is a TP or counted FP (all
ignored), the script raises ``IndexError`` (``cumsum[-1]`` of an empty array); here AP is 0.0, which is what its
formula gives with no positives.

Heavy part: the GT x prediction intersection counts are one sparse matrix product per scene; matching then only
visits the (few) pairs above a threshold, vectorised wherever a mask is a candidate for one GT only (always
the case for t >= 0.5, since IoU > 0.5 with one of two disjoint GTs excludes the other).

Head / common / tail (ScanNet200): a class-agnostic model has no class to split *predictions* by, so each
subset is scored as if the script's class list were that subset: GT = instances of the subset's classes, all
predictions pooled, and every other vertex (including objects of the other two subsets) is *void*. A mask on
a tail object is therefore ignored when scoring head (not a FP): the subset AP measures how well the model
finds that subset's objects, and a perfect segmentation scores 1.0 on every subset.

``use_scores=False`` gives every mask confidence 1.0, reproducing Open3DIS's class-agnostic evaluator: a
known mistake (AP then ignores the ranking), available only to reproduce their numbers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from gcseg.errors import ConfigError, InputError

# The script's thresholds, built the same way so that the floats are bit-identical.
OVERLAPS: np.ndarray = np.append(np.arange(0.5, 0.95, 0.05), 0.25)
_I50 = int(np.flatnonzero(np.isclose(OVERLAPS, 0.5))[0])
_I25 = int(np.flatnonzero(np.isclose(OVERLAPS, 0.25))[0])
_AP_RANGE = np.flatnonzero(~np.isclose(OVERLAPS, 0.25))


@dataclass(frozen=True, kw_only=True)
class SceneEval:
    """One scene: GT per vertex and the predicted masks over the same vertices.

    gt_ids: int[N], ``label * 1000 + instance``; values < 1000 are void.
    valid: bool[N] or None; False = vertex removed from evaluation (ScanNet++ ignore mask).
    pred_masks: bool[K, N], dense or scipy sparse; rows in the prediction file's order.
    pred_scores: float[K] confidences.
    """

    scene_id: str
    gt_ids: np.ndarray
    pred_masks: Any
    pred_scores: np.ndarray
    valid: np.ndarray | None = None


@dataclass(frozen=True)
class PRCurve:
    """The script's precision/recall points, ascending confidence, then the artificial (r=0, p=1) point."""

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray  # confidence of each point except the artificial last one


@dataclass(frozen=True)
class EvalResult:
    """AP figures of one GT set. ``ap_per_threshold[i]`` belongs to ``OVERLAPS[i]``."""

    ap: float
    ap50: float
    ap25: float
    ap_per_threshold: np.ndarray
    pr_curves: dict[float, PRCurve]
    num_gt: int
    num_pred_masks: dict[str, int]
    num_pred_kept: dict[str, int]
    subsets: dict[str, EvalResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN -> None so that the file is valid JSON), curves excluded."""

        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        out: dict[str, Any] = {
            "ap": num(self.ap), "ap50": num(self.ap50), "ap25": num(self.ap25),
            "ap_per_threshold": {f"{t:.2f}": num(a) for t, a in zip(OVERLAPS, self.ap_per_threshold)},
            "num_gt": self.num_gt,
            "num_pred_masks": dict(sorted(self.num_pred_masks.items())),
            "num_pred_kept": dict(sorted(self.num_pred_kept.items())),
        }
        if self.subsets:
            out["subsets"] = {k: v.to_dict() for k, v in sorted(self.subsets.items())}
        return out

    def pr_rows(self, threshold: float) -> list[dict[str, float]]:
        """Rows for a DVC plot of the PR curve at 0.5 or 0.25, sorted by recall."""
        c = self.pr_curves[threshold]
        order = np.lexsort((-c.precision, c.recall))
        return [{"recall": float(c.recall[i]), "precision": float(c.precision[i])} for i in order]


@dataclass(frozen=True)
class _SceneStats:
    """What matching needs from a scene, independent of the GT class set."""

    gt_counts: np.ndarray   # int64[G] vertex count per GT id (ids >= 1000, ascending)
    gt_labels: np.ndarray   # int64[G] id // 1000
    pred_counts: np.ndarray  # int64[K'] vertex count of each kept mask
    kept: np.ndarray        # int64[K'] each kept mask's index among the scene's given masks
    scores: np.ndarray      # float64[K']
    pair_gt: np.ndarray     # int64[P] GT index of each (GT, mask) pair with intersection > 0
    pair_pred: np.ndarray   # int64[P] mask index, pairs sorted by (GT, mask)
    pair_inter: np.ndarray  # int64[P] intersection size


def _dense_to_csr(arr: np.ndarray) -> sparse.csr_matrix:
    """bool[K, N] -> csr; one flat scan (3x faster than csr_matrix(dense), which goes through 2-D nonzero)."""
    k, n = arr.shape
    flat = np.flatnonzero(arr)
    indptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(arr, axis=1), out=indptr[1:])
    return sparse.csr_matrix((np.ones(flat.shape[0], dtype=bool), flat % max(n, 1), indptr), shape=(k, n))


def _as_csr(masks: Any, n: int, scene_id: str) -> sparse.csr_matrix:
    if sparse.issparse(masks):
        m = sparse.csr_matrix(masks)
    else:
        arr = np.asarray(masks)
        if arr.ndim != 2:
            if arr.size == 0:
                arr = arr.reshape(0, n)
            else:
                raise InputError(f"scene {scene_id}: pred_masks must be 2-D [K, N], got shape {arr.shape}")
        m = _dense_to_csr(arr.astype(bool, copy=False))
    if m.shape[1] != n:
        raise InputError(f"scene {scene_id}: pred_masks cover {m.shape[1]} vertices, GT has {n}",
                         fix="write one mask value per GT vertex")
    m.sum_duplicates()
    m.data = m.data != 0
    m.eliminate_zeros()
    return m


def _scene_stats(scene: SceneEval, min_region_size: int, use_scores: bool) -> tuple[_SceneStats, int]:
    gt = np.asarray(scene.gt_ids)
    if gt.ndim != 1 or not np.issubdtype(gt.dtype, np.integer):
        raise InputError(f"scene {scene.scene_id}: gt_ids must be a 1-D integer array, got {gt.dtype} {gt.shape}")
    if gt.size and gt.min() < 0:
        raise InputError(f"scene {scene.scene_id}: negative GT id {int(gt.min())}",
                         fix="GT ids are label * 1000 + instance, >= 0")
    gt = gt.astype(np.int64, copy=False)
    masks = _as_csr(scene.pred_masks, gt.shape[0], scene.scene_id)
    scores = np.asarray(scene.pred_scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != masks.shape[0]:
        raise InputError(f"scene {scene.scene_id}: {masks.shape[0]} masks but {scores.shape[0]} scores")
    if not np.all(np.isfinite(scores)):
        raise InputError(f"scene {scene.scene_id}: non-finite confidence", fix="give every mask a finite score")
    n_given = masks.shape[0]
    if scene.valid is not None:
        valid = np.asarray(scene.valid, dtype=bool)
        if valid.shape != gt.shape:
            raise InputError(f"scene {scene.scene_id}: valid mask has shape {valid.shape}, GT {gt.shape}")
        if not valid.all():
            keep = np.flatnonzero(valid)
            gt = gt[keep]
            masks = masks[:, keep].tocsr()
    if not use_scores:
        scores = np.ones_like(scores)

    pred_counts = np.diff(masks.indptr).astype(np.int64)
    kept = np.flatnonzero(pred_counts >= min_region_size)
    masks = masks[kept]
    pred_counts = pred_counts[kept]
    scores = scores[kept]

    # GT instances = every id >= 1000 (label >= 1); the class set is applied later on gt_labels.
    inst_vertices = np.flatnonzero(gt >= 1000)
    ids, inv = np.unique(gt[inst_vertices], return_inverse=True)
    gt_counts = np.bincount(inv, minlength=ids.shape[0]).astype(np.int64)
    onehot = sparse.csr_matrix((np.ones(inst_vertices.shape[0], dtype=np.int64), (inv, inst_vertices)),
                               shape=(ids.shape[0], gt.shape[0]))
    # The heavy part: |GT_g & mask_k| for every pair at once.
    inter = (onehot @ masks.astype(np.int64).T).tocoo()
    order = np.lexsort((inter.col, inter.row))
    stats = _SceneStats(
        gt_counts=gt_counts, gt_labels=ids // 1000, pred_counts=pred_counts, kept=kept.astype(np.int64),
        scores=scores,
        pair_gt=inter.row[order].astype(np.int64), pair_pred=inter.col[order].astype(np.int64),
        pair_inter=inter.data[order].astype(np.int64),
    )
    return stats, n_given


def _match_scene(st: _SceneStats, selected: np.ndarray, min_region_size: int
                 ) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Per threshold: (y_true, y_score, hard false negatives) of one scene for the GT set `selected`."""
    counted = selected & (st.gt_counts >= min_region_size)
    small = selected & (st.gt_counts < min_region_size)
    in_set = selected[st.pair_gt]
    pg, pp, pi = st.pair_gt[in_set], st.pair_pred[in_set], st.pair_inter[in_set]
    denom = st.gt_counts[pg] + st.pred_counts[pp] - pi
    iou = pi.astype(np.float64) / denom
    k = st.pred_counts.shape[0]
    # Ignored share of each mask: void (outside the set) + small GT of the set.
    in_set_inter = np.bincount(pp, weights=pi, minlength=k)
    small_inter = np.bincount(pp, weights=np.where(small[pg], pi, 0), minlength=k)
    num_ignore = (st.pred_counts - in_set_inter) + small_inter
    proportion_ignore = num_ignore / st.pred_counts if k else np.zeros(0)
    n_counted = int(counted.sum())

    out = []
    for th in OVERLAPS:
        above = iou > th
        found_gt = np.zeros(k, dtype=bool)
        found_gt[pp[above]] = True
        cand = above & counted[pg]
        cg, cp = pg[cand], pp[cand]
        conf = st.scores[cp]
        if np.unique(cp).shape[0] == cp.shape[0]:
            # Each mask is a candidate of one GT: the TP takes the top confidence, the rest are FPs.
            order = np.lexsort((-conf, cg))
            first = np.ones(order.shape[0], dtype=bool)
            first[1:] = cg[order][1:] != cg[order][:-1]
            tp_true, tp_score = first.astype(np.float64), conf[order]
            matched = int(first.sum())
        else:
            tp_true, tp_score, matched = _match_sequential(cg, cp, conf)
        fp = ~found_gt & (proportion_ignore <= th)
        y_true = np.concatenate([tp_true, np.zeros(int(fp.sum()))])
        y_score = np.concatenate([tp_score, st.scores[fp]])
        out.append((y_true, y_score, n_counted - matched))
    return out


def best_match_per_gt(scene: SceneEval, *, min_region_size: int = 100, valid_labels: Collection[int] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size in points, best IoU of any mask, size of that best mask in points; 0 where no mask overlaps) of every
    GT object the AP counts in `scene` (ids >= 1000 of the class set with >= min_region_size points; masks under
    min_region_size points and points outside `valid` left out, as the AP does), ordered by GT id."""
    st, _ = _scene_stats(scene, min_region_size, True)
    counted = _selector(valid_labels)(st.gt_labels) & (st.gt_counts >= min_region_size)
    iou = st.pair_inter.astype(np.float64) / (st.gt_counts[st.pair_gt] + st.pred_counts[st.pair_pred]
                                              - st.pair_inter)
    best = np.zeros(st.gt_counts.shape[0])
    best_size = np.zeros(st.gt_counts.shape[0], np.int64)
    order = np.lexsort((iou, st.pair_gt))  # by GT, then IoU: the last pair of each GT is its best
    last = np.r_[st.pair_gt[order][1:] != st.pair_gt[order][:-1], True] if len(order) else np.zeros(0, bool)
    top = order[last]
    best[st.pair_gt[top]] = iou[top]
    best_size[st.pair_gt[top]] = st.pred_counts[st.pair_pred[top]]
    return st.gt_counts[counted], best[counted], best_size[counted]


def _match_sequential(cg: np.ndarray, cp: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The script's greedy loop over candidate pairs (sorted by GT, then mask) when a mask has several GTs."""
    used: set[int] = set()
    best: dict[int, float] = {}
    fps: list[float] = []
    for g, p, c in zip(cg.tolist(), cp.tolist(), conf.tolist()):
        if p in used:
            continue
        if g in best:
            fps.append(min(best[g], c))
            best[g] = max(best[g], c)
        else:
            best[g] = c
            used.add(p)
    y_true = np.concatenate([np.ones(len(best)), np.zeros(len(fps))])
    y_score = np.array(list(best.values()) + fps, dtype=np.float64)
    return y_true, y_score, len(best)


def average_precision(y_true: np.ndarray, y_score: np.ndarray, hard_false_negatives: int,
                      has_gt: bool, has_pred: bool) -> tuple[float, PRCurve]:
    """The script's step-integrated AP of one class at one threshold (and the curve it integrates)."""
    empty = PRCurve(np.array([1.0]), np.array([0.0]), np.zeros(0))
    if not has_gt:
        return float("nan"), empty
    if not has_pred or y_true.shape[0] == 0:
        return 0.0, empty
    order = np.argsort(y_score)
    ys, yt = y_score[order], y_true[order]
    cums = np.cumsum(yt)
    thresholds, uidx = np.unique(ys, return_index=True)
    num_examples, num_true = ys.shape[0], cums[-1]
    below = np.append(cums, 0.0)[uidx - 1]  # true examples strictly below each threshold
    tp = num_true - below
    fp = num_examples - uidx - tp
    fn = below + hard_false_negatives
    precision = np.append(tp / (tp + fp), 1.0)
    recall = np.append(tp / (tp + fn), 0.0)
    rc = np.concatenate([recall[:1], recall, [0.0]])
    steps = np.convolve(rc, [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, steps)), PRCurve(precision, recall, thresholds)


def _score(stats: Sequence[_SceneStats], selected: Sequence[np.ndarray], min_region_size: int
           ) -> tuple[np.ndarray, dict[float, PRCurve], int]:
    per_scene = [_match_scene(st, sel, min_region_size) for st, sel in zip(stats, selected)]
    has_gt = any(bool((sel & (st.gt_counts >= min_region_size)).any()) for st, sel in zip(stats, selected))
    has_pred = any(st.pred_counts.shape[0] > 0 for st in stats)
    num_gt = int(sum((sel & (st.gt_counts >= min_region_size)).sum() for st, sel in zip(stats, selected)))
    aps = np.empty(OVERLAPS.shape[0])
    curves: dict[float, PRCurve] = {}
    for oi, th in enumerate(OVERLAPS):
        y_true = np.concatenate([s[oi][0] for s in per_scene]) if per_scene else np.zeros(0)
        y_score = np.concatenate([s[oi][1] for s in per_scene]) if per_scene else np.zeros(0)
        hard_fn = sum(s[oi][2] for s in per_scene)
        aps[oi], curve = average_precision(y_true, y_score, hard_fn, has_gt, has_pred)
        if oi in (_I50, _I25):
            curves[round(float(th), 2)] = curve
    return aps, curves, num_gt


def _summary(aps: np.ndarray) -> tuple[float, float, float]:
    rng = aps[_AP_RANGE]
    ap = float(np.mean(rng[~np.isnan(rng)])) if (~np.isnan(rng)).any() else float("nan")
    return ap, float(aps[_I50]), float(aps[_I25])


def _selector(valid_labels: Collection[int] | None):
    if valid_labels is None:
        return lambda labels: labels >= 1
    ids = np.array(sorted(int(x) for x in valid_labels), dtype=np.int64)
    if ids.size and ids.min() < 1:
        raise ConfigError(f"GT label id {int(ids.min())} cannot be a class: ids < 1000 are void",
                          fix="valid_labels must hold label ids >= 1")
    return lambda labels: np.isin(labels, ids)


def evaluate_scenes(scenes: Sequence[SceneEval], *, min_region_size: int = 100,
                    valid_labels: Collection[int] | None = None, use_scores: bool = True,
                    subsets: Mapping[str, Collection[int]] | None = None) -> EvalResult:
    """Class-agnostic AP / AP50 / AP25 over `scenes`, pooled as the ScanNet script pools them.

    valid_labels: GT label ids that count (None = every label >= 1); other labels are void.
    subsets: extra GT sets scored with the same pooled predictions (e.g. ScanNet200 head/common/tail);
      each is intersected with `valid_labels` and reported in ``EvalResult.subsets``.
    use_scores: False = every confidence 1.0 (Open3DIS's mistake, for reproduction only).
    """
    if min_region_size < 1:
        raise ConfigError(f"min_region_size must be >= 1, got {min_region_size}", fix="the benchmark uses 100")
    ids = [s.scene_id for s in scenes]
    if len(set(ids)) != len(ids):
        raise InputError("duplicate scene ids in the evaluation", fix="evaluate each scene once")
    computed = [_scene_stats(s, min_region_size, use_scores) for s in scenes]
    stats = [c[0] for c in computed]
    num_masks = {s.scene_id: c[1] for s, c in zip(scenes, computed)}
    num_kept = {s.scene_id: int(c[0].pred_counts.shape[0]) for s, c in zip(scenes, computed)}

    def run(labels: Collection[int] | None) -> EvalResult:
        select = _selector(labels)
        aps, curves, num_gt = _score(stats, [select(st.gt_labels) for st in stats], min_region_size)
        ap, ap50, ap25 = _summary(aps)
        return EvalResult(ap, ap50, ap25, aps, curves, num_gt, num_masks, num_kept)

    main = run(valid_labels)
    subs: dict[str, EvalResult] = {}
    for name, labels in (subsets or {}).items():
        sub = set(int(x) for x in labels)
        if valid_labels is not None:
            sub &= set(int(x) for x in valid_labels)
        subs[name] = run(sub)
    return EvalResult(main.ap, main.ap50, main.ap25, main.ap_per_threshold, main.pr_curves, main.num_gt,
                      num_masks, num_kept, subs)
