"""Fixed colour palettes for viewing labelled point clouds (MeshLab, CloudCompare)."""

from __future__ import annotations

import numpy as np

VOID_COLOR = np.array([128, 128, 128], dtype=np.uint8)  # grey for -1 / 0 (no instance)


def _hash_u32(x: np.ndarray) -> np.ndarray:
    """A fixed integer hash (lowbias32) so that neighbouring ids get unrelated colours, on any machine."""
    x = x.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    return x


def instance_palette(ids: np.ndarray) -> np.ndarray:
    """Colour per id: uint8 (N, 3). Ids <= 0 (void / no instance) are grey; ids >= 1 get a saturated colour
    that depends only on the id (same id -> same colour in every file)."""
    ids = np.asarray(ids).astype(np.int64).reshape(-1)
    h = _hash_u32(ids)
    # hue from the hash, saturation/value kept high and away from grey so instances never look void
    hue = (h % np.uint64(3600)).astype(np.float64) / 3600.0
    sat = 0.55 + 0.45 * ((h >> np.uint64(12)) % np.uint64(256)).astype(np.float64) / 255.0
    val = 0.65 + 0.35 * ((h >> np.uint64(20)) % np.uint64(256)).astype(np.float64) / 255.0
    i = np.floor(hue * 6).astype(np.int64) % 6
    f = hue * 6 - np.floor(hue * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    r = np.choose(i, [val, q, p, p, t, val])
    g = np.choose(i, [t, val, val, q, p, p])
    b = np.choose(i, [p, p, t, val, val, q])
    rgb = np.round(np.stack([r, g, b], axis=1) * 255).astype(np.uint8)
    rgb[ids <= 0] = VOID_COLOR
    return rgb
