"""Compact integer ids: each id's rank among the distinct ids present (np.unique's inverse), by counting.

The training data path renumbers every crop's instance and superpoint ids once per step; np.unique sorts all of
a scene's points to do it (19 ms for 300 k instance labels), a bincount over the id range in 4 ms."""

from __future__ import annotations

import numpy as np

_MAX_RANGE = 1 << 24  # ids spread wider than this are ranked by sorting (a count table that size is 128 MB)


def compact_ids(ids: np.ndarray) -> np.ndarray:
    """Rank of every id among the distinct ids (int64, same shape): equal to ``np.unique(ids,
    return_inverse=True)[1]``. Ids must be integers >= 0."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return np.zeros(ids.shape, np.int64)
    if not np.issubdtype(ids.dtype, np.integer) or int(ids.min()) < 0:
        raise ValueError("compact_ids takes integer ids >= 0")
    if int(ids.max()) >= _MAX_RANGE:
        return np.unique(ids, return_inverse=True)[1].reshape(ids.shape).astype(np.int64, copy=False)
    present = np.bincount(ids.reshape(-1)) > 0
    return (np.cumsum(present) - 1)[ids]


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """Instance labels renumbered 0..K-1 in the order of their ids, every negative label -1 (unlabelled)."""
    shifted = np.maximum(np.asarray(labels), -1) + 1  # 0 = unlabelled, ranked first when present
    if shifted.size == 0:
        return np.zeros(shifted.shape, np.int64)
    ranks = compact_ids(shifted)
    return ranks - 1 if int(shifted.min()) == 0 else ranks
