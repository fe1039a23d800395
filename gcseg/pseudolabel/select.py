"""Which predicted masks become pseudo-labels: the top-k by score, then a confidence and a size threshold.

Segment3D (``datasets/utils_stage2.py::get_instance_masks``) keeps mask k iff ``score_k > use_masks_score``
(0.6) and ``k < use_masks_th`` (150) in the score-sorted list; we add a minimum size (its ``remove_small_group``
/ the evaluator's 100-vertex minimum region).
"""

from __future__ import annotations

import numpy as np


def score_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting `scores` descending; ties keep the lower index first (deterministic)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    return np.argsort(-scores, kind="stable")


def select_masks(masks: np.ndarray, scores: np.ndarray, *, top_k: int, tau_conf: float, min_points: int
                 ) -> np.ndarray:
    """Indices (int64, best score first) of the masks to keep.

    Arguments:
        masks: bool (K, N), one row per predicted mask.
        scores: float (K,) confidence per mask.
        top_k: keep at most this many of the highest-scoring masks (<= 0: no limit).
        tau_conf: then keep those with score strictly greater than tau_conf.
        min_points: then keep those covering at least min_points points.
    """
    masks = np.asarray(masks, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if masks.ndim != 2 or masks.shape[0] != scores.shape[0]:
        raise ValueError(f"masks (K, N) and scores (K,) disagree: {masks.shape} vs {scores.shape}")
    order = score_order(scores)
    if top_k > 0:
        order = order[:top_k]
    order = order[scores[order] > tau_conf]
    if min_points > 0 and order.size:
        order = order[masks[order].sum(axis=1) >= min_points]
    return order.astype(np.int64)
