"""Give every point to at most one mask: the highest-scoring mask that covers it."""

from __future__ import annotations

import numpy as np

from gcseg.pseudolabel.select import score_order


def assign_points(masks: np.ndarray, scores: np.ndarray, *, min_points: int = 1
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Resolve overlaps and report which mask each label id came from.

    Masks are visited best score first (ties: lower mask index); each takes the points no better mask has
    taken, and is kept if that leaves it at least `min_points` points. A mask under `min_points` is removed and
    its points stay free for the next masks covering them. One pass decides: a mask's points depend only on the
    better masks kept, so removing a small mask can rescue a worse one that shares its points, never a better one
    (removing every small mask at once, as this did before, also dropped the worse masks it would have rescued).

    Returns:
        labels int32 (N,): label id per point, -1 where no kept mask covers it. Ids are 0..M-1 in
        descending score order.
        source int64 (M,): the index into `masks` of label id m.
    """
    masks = np.asarray(masks, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if masks.ndim != 2 or masks.shape[0] != scores.shape[0]:
        raise ValueError(f"masks (K, N) and scores (K,) disagree: {masks.shape} vs {scores.shape}")
    labels = np.full(masks.shape[1], -1, dtype=np.int32)
    free = np.ones(masks.shape[1], dtype=bool)
    kept: list[int] = []
    need = max(min_points, 1)
    for k in score_order(scores):
        take = masks[k] & free
        if np.count_nonzero(take) >= need:
            labels[take] = len(kept)
            free[take] = False
            kept.append(int(k))
    return labels, np.asarray(kept, dtype=np.int64)


def resolve_overlaps(masks: np.ndarray, scores: np.ndarray, *, min_points: int = 1) -> np.ndarray:
    """Label id per point (int32 (N,), -1 = none): the highest-scoring covering mask, ids 0..M-1 in score
    order (masks that keep no point get no id). See `assign_points`."""
    return assign_points(masks, scores, min_points=min_points)[0]
