"""Small helpers on boolean masks shared by proposals, tracking, lifting and the training metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between bool masks a (K, ...) and b (T, ...) (images or point sets, flattened) -> float64 (K, T);
    0 where both masks are empty."""
    inter = mask_intersections(a, b)
    fa = np.asarray(a).reshape(len(a), -1).sum(1, dtype=np.int64)
    fb = np.asarray(b).reshape(len(b), -1).sum(1, dtype=np.int64)
    union = fa[:, None] + fb[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def mask_intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel counts |a_k & b_t| of bool masks a (K, ...) and b (T, ...) -> int64 (K, T), one float32 matmul
    (exact: every count < 2**24, i.e. masks up to 16 M pixels)."""
    fa = np.asarray(a).reshape(len(a), -1)
    fb = np.asarray(b).reshape(len(b), -1)
    if fa.shape[1] >= 1 << 24:
        raise ValueError(f"masks of {fa.shape[1]} pixels: float32 counts are exact only below 2**24")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"masks of different sizes: {np.asarray(a).shape[1:]} and {np.asarray(b).shape[1:]}")
    return np.rint(fa.astype(np.float32) @ fb.astype(np.float32).T).astype(np.int64)


def masks_to_id_map(masks: np.ndarray | Mapping[int, np.ndarray], hw: tuple[int, int] | None = None, *,
                    order: Sequence[int] | np.ndarray | None = None, dtype: type = np.int32) -> np.ndarray:
    """Paint overlapping masks into one id map (0 = no mask); where masks overlap, the one painted last wins.

    masks: a (K, H, W) array (mask k gets id k + 1) or a mapping id -> (H, W) mask (then `hw` is the map size).
    Paint order: by descending area, ties by ascending id, so smaller masks stay visible on top of larger ones
    (deterministic); `order` gives an explicit one (mask indices for an array, ids for a mapping; first painted
    first). Ids must fit `dtype`."""
    if isinstance(masks, Mapping):
        if hw is None:
            raise ValueError("hw is needed for a mapping of masks")
        ids = [int(i) for i in masks]
        stack = [np.asarray(masks[i], bool) for i in masks]
        shape = (int(hw[0]), int(hw[1]))
    else:
        arr = np.asarray(masks, dtype=bool)
        if arr.ndim != 3:
            raise ValueError(f"masks must be (K, H, W), got {arr.shape}")
        ids = list(range(1, arr.shape[0] + 1))
        stack = list(arr)
        shape = arr.shape[1:]
    if ids and max(ids) > np.iinfo(dtype).max:
        raise ValueError(f"id {max(ids)} does not fit {np.dtype(dtype).name}")
    out = np.zeros(shape, dtype)
    if order is None:
        areas = [int(np.count_nonzero(m)) for m in stack]
        seq = sorted(range(len(ids)), key=lambda k: (-areas[k], ids[k]))
    elif isinstance(masks, Mapping):
        where = {i: k for k, i in enumerate(ids)}
        seq = [where[int(i)] for i in order]
    else:
        seq = [int(k) for k in np.asarray(order, np.int64)]
    for k in seq:
        out[stack[k]] = ids[k]
    return out
