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

from gcseg.eval.ap import SceneEval, _scene_stats, _selector


def perfect_ranking_scores(scene: SceneEval, *, min_region_size: int = 100,
                           valid_labels: Collection[int] | None = None) -> np.ndarray:
    """Confidences in the perfect order for `scene`'s masks: a mask that is some counted GT object's best mask
    (highest IoU among the masks of >= `min_region_size` vertices, the first such mask on ties) gets that IoU (the
    highest one if it is best for several), every other mask 0. Counted GT objects are those of `valid_labels`
    (None = every label >= 1) with at least `min_region_size` vertices, on the scene's valid vertices, as the
    evaluation counts them."""
    st, n_given = _scene_stats(scene, min_region_size, use_scores=False)  # the evaluation's counting
    scores = np.zeros(n_given)
    counted = _selector(valid_labels)(st.gt_labels) & (st.gt_counts >= min_region_size)
    pairs = counted[st.pair_gt]  # masks below min_region_size are gone already: nobody's best
    if not pairs.any():
        return scores
    pg, pp, pi = st.pair_gt[pairs], st.pair_pred[pairs], st.pair_inter[pairs]
    iou = pi / (st.gt_counts[pg] + st.pred_counts[pp] - pi)
    # each GT object's best mask (the first on ties): pairs are sorted by (GT, mask), so a stable sort by
    # descending IoU within each GT puts it first
    order = np.lexsort((-iou, pg))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = pg[order][1:] != pg[order][:-1]
    best = order[first]
    np.maximum.at(scores, st.kept[pp[best]], iou[best])
    return scores


def with_perfect_ranking(scenes: Sequence[SceneEval], *, min_region_size: int = 100,
                         valid_labels: Collection[int] | None = None) -> list[SceneEval]:
    """The same scenes and masks with perfect_ranking_scores as their confidences."""
    return [replace(s, pred_scores=perfect_ranking_scores(s, min_region_size=min_region_size,
                                                          valid_labels=valid_labels)) for s in scenes]
