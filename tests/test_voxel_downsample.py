"""gcseg.geometry.voxel_downsample: the first point of every occupied voxel, in input order."""

import numpy as np

from gcseg.geometry import voxel_downsample


def _reference(points: np.ndarray, voxel: float) -> np.ndarray:
    keys = np.floor(points / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)


def test_same_indices_as_row_unique():
    rng = np.random.default_rng(0)
    for n in (1, 7, 2000):
        p = (rng.normal(size=(n, 3)) * 3).astype(np.float32)
        p = np.concatenate([p, p[::-2], -p[: n // 3]])  # duplicates and negative coordinates
        for voxel in (0.005, 0.05, 2.0):
            assert np.array_equal(voxel_downsample(p, voxel), _reference(p, voxel))


def test_edge_cases():
    assert voxel_downsample(np.zeros((0, 3), np.float32), 0.1).shape == (0,)
    far = np.array([[0, 0, 0], [1e17, -1e17, 1e17], [0.01, 0, 0]], np.float64)  # key box beyond int64
    assert voxel_downsample(far, 1.0).tolist() == [0, 1]
