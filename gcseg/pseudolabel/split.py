"""Split spatially disconnected masks into connected fragments with DBSCAN (as Mask3D/Segment3D do at
inference: ``DBSCAN(eps, min_samples).fit(coords[mask])``, each cluster a new mask with the parent's score,
DBSCAN noise dropped)."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN


def split_disconnected(masks: np.ndarray, coord: np.ndarray, *, scores: np.ndarray, eps: float,
                       min_samples: int, min_points: int = 1
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut every mask into its DBSCAN clusters.

    Arguments:
        masks: bool (K, N).
        coord: float (N, 3) point positions in metres.
        scores: float (K,); every fragment inherits its parent's score.
        eps: DBSCAN neighbourhood radius in metres (points closer than eps are connected).
        min_samples: DBSCAN core-point count (1 = plain connected components at radius eps, no noise).
        min_points: fragments smaller than this are dropped.

    Returns:
        (masks bool (M, N), scores float32 (M,), parent int64 (M,) index of the source mask). Fragments
        follow their parent's order, and within a parent DBSCAN's cluster order (the order in which clusters
        are first met along the point list), so the output is deterministic.
    """
    masks = np.asarray(masks, dtype=bool)
    coord = np.asarray(coord, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if masks.ndim != 2 or coord.shape != (masks.shape[1], 3) or scores.shape[0] != masks.shape[0]:
        raise ValueError(f"shapes disagree: masks {masks.shape}, coord {coord.shape}, scores {scores.shape}")
    if eps <= 0 or min_samples < 1:
        raise ValueError(f"need eps > 0 and min_samples >= 1, got eps={eps}, min_samples={min_samples}")
    out_masks: list[np.ndarray] = []
    out_parent: list[int] = []
    for k in range(masks.shape[0]):
        idx = np.flatnonzero(masks[k])
        if idx.size < max(min_points, 1):
            continue
        labels = DBSCAN(eps=eps, min_samples=min_samples).fit(coord[idx]).labels_
        clusters, sizes = np.unique(labels[labels >= 0], return_counts=True)
        for c, size in zip(clusters, sizes, strict=True):
            if size < min_points:
                continue
            frag = np.zeros(masks.shape[1], dtype=bool)
            frag[idx[labels == c]] = True
            out_masks.append(frag)
            out_parent.append(k)
    parent = np.asarray(out_parent, dtype=np.int64)
    new_masks = np.stack(out_masks) if out_masks else np.zeros((0, masks.shape[1]), dtype=bool)
    return new_masks, scores[parent].astype(np.float32), parent
