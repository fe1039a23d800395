"""Perfect ranking: what a prediction set's confidences cost it (a diagnostic; uses GT).

AP rewards good masks only as far as the confidences rank them above the false positives (parts, unions,
duplicates). Scoring the same masks once more with their confidences replaced by an order that knows the GT
separates the two: each GT object's best mask (highest IoU) first, by that IoU, and every other mask after them
(confidence 0). The difference between that AP and the given one is what the ranking loses; what remains under
100 is the masks'. Not an exact maximum over all orders (the ScanNet protocol's greedy matching at nine IoU
thresholds has no single best order), a reference for how far any confidence could move the same masks
(docs/model_study.md "Round 22")."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

import numpy as np
from scipy import sparse

from gcseg.eval.ap import SceneEval, _as_csr, _selector


def perfect_ranking_scores(scene: SceneEval, *, min_region_size: int = 100,
                           valid_labels: Collection[int] | None = None) -> np.ndarray:
    """Confidences in the perfect order for `scene`'s masks: a mask that is some counted GT object's best mask
    (highest IoU among the masks of >= `min_region_size` vertices, the first such mask on ties) gets that IoU (the highest one if it is best for several), every
    other mask 0. Counted GT objects are those of `valid_labels` (None = every label >= 1) with at least
    `min_region_size` vertices, on the scene's valid vertices, as the evaluation counts them."""
    gt = np.asarray(scene.gt_ids, dtype=np.int64)
    masks = _as_csr(scene.pred_masks, gt.shape[0], scene.scene_id)
    if scene.valid is not None:
        keep = np.flatnonzero(np.asarray(scene.valid, dtype=bool))
        gt, masks = gt[keep], masks[:, keep].tocsr()
    scores = np.zeros(masks.shape[0])
    inst = np.flatnonzero(gt >= 1000)
    ids, inv = np.unique(gt[inst], return_inverse=True)
    counts = np.bincount(inv, minlength=ids.shape[0])
    counted = _selector(valid_labels)(ids // 1000) & (counts >= min_region_size)
    if not counted.any() or masks.shape[0] == 0:
        return scores
    onehot = sparse.csr_matrix((np.ones(inst.shape[0]), (inv, inst)), shape=(ids.shape[0], gt.shape[0]))
    inter = (onehot[counted] @ masks.astype(np.float64).T).toarray()  # [G, K]
    size = np.asarray(masks.sum(1)).ravel()
    iou = inter / np.maximum(counts[counted][:, None] + size[None, :] - inter, 1)
    iou[:, size < min_region_size] = -1.0  # masks the evaluation ignores are nobody's best
    best = iou.argmax(1)  # each GT object's best mask (first on ties)
    found = iou[np.arange(best.shape[0]), best] > 0
    np.maximum.at(scores, best[found], iou[found, best[found]])
    return scores


def with_perfect_ranking(scenes: Sequence[SceneEval], *, min_region_size: int = 100,
                         valid_labels: Collection[int] | None = None) -> list[SceneEval]:
    """The same scenes and masks with perfect_ranking_scores as their confidences."""
    return [replace(s, pred_scores=perfect_ranking_scores(s, min_region_size=min_region_size,
                                                          valid_labels=valid_labels)) for s in scenes]
