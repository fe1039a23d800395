"""The containment filter of Stage 1 (and of new-object proposals in Stage 2).

SAM proposes every object at several granularities; a mask lying mostly inside a larger one is redundant
for one consistent labelling. Following the paper's spec (and Segment3D, which keeps the large mask), masks
are visited from the largest to the smallest and a mask ``n`` is dropped when
``|n & m| / |n| > tau_contain`` for an already kept larger mask ``m``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp


def processing_order(areas: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Area descending, ties by score descending, then by index ascending (deterministic)."""
    idx = np.arange(len(areas))
    return np.lexsort((idx, -np.asarray(scores, np.float64), -np.asarray(areas, np.int64)))


def intersection_counts(masks: np.ndarray) -> np.ndarray:
    """Pairwise |a & b| (K, K) int64, via a sparse product (cost ~ sum over pixels of masks-per-pixel^2)."""
    k = masks.shape[0]
    flat = sp.csr_matrix(masks.reshape(k, -1).astype(np.int32))
    return np.asarray((flat @ flat.T).toarray(), np.int64)


def containment_filter(masks: np.ndarray, scores: np.ndarray, tau_contain: float, min_area: int = 0,
                       *, against: Literal["kept", "all"] = "kept") -> np.ndarray:
    """Indices (into `masks`, in processing order) of the masks that survive.

    masks: bool (K, H, W); scores: (K,). Masks with fewer than `min_area` pixels are dropped first.
    against="kept" (the spec): a mask is dropped if contained beyond `tau_contain` in an already *kept* mask
    earlier in the order. against="all": contained in *any* earlier mask of at least `min_area`, kept or not;
    this variant is monotone (a higher tau_contain keeps a superset), the greedy one is only monotone when the
    masks are nested or disjoint (a hierarchy), see tests/proposals/test_containment.py.
    """
    masks = np.asarray(masks, bool)
    scores = np.asarray(scores, np.float32)
    if masks.ndim != 3 or scores.shape != (masks.shape[0],):
        raise ValueError(f"masks (K,H,W) and scores (K,) expected, got {masks.shape} and {scores.shape}")
    if not 0.0 <= tau_contain <= 1.0:
        raise ValueError(f"tau_contain must lie in [0, 1], got {tau_contain}")
    k = masks.shape[0]
    if k == 0:
        return np.zeros((0,), np.int64)
    areas = masks.reshape(k, -1).sum(1)
    order = processing_order(areas, scores)
    order = order[areas[order] >= max(int(min_area), 1)]  # empty masks never survive
    if len(order) == 0:
        return np.zeros((0,), np.int64)
    inter = intersection_counts(masks[order])
    ratio = inter / areas[order][:, None].astype(np.float64)  # ratio[i, j] = |i & j| / |i|
    kept: list[int] = []
    for i in range(len(order)):
        earlier = np.asarray(kept, np.int64) if against == "kept" else np.arange(i)
        if len(earlier) and np.any(ratio[i, earlier] > tau_contain):
            continue
        kept.append(i)
    return order[np.asarray(kept, np.int64)]
