import numpy as np
import pytest

from gcseg.ids import compact_ids, compact_labels


def _unique_ranks(ids):
    return np.unique(ids, return_inverse=True)[1].reshape(np.shape(ids))


def _unique_labels(labels):  # what the training data path computed with np.unique before
    ids, inv = np.unique(labels, return_inverse=True)
    return np.where(ids >= 0, np.cumsum(ids >= 0) - 1, -1)[inv.reshape(-1)].reshape(np.shape(labels))


@pytest.mark.parametrize("ids", [
    np.random.default_rng(0).integers(0, 5_000, 20_000),  # superpoints of a crop: a subset of a scene's ids
    np.array([7, 7, 3, 9]), np.array([0]),
    np.random.default_rng(1).integers(0, 3, (4, 5)).astype(np.int32),
    np.array([3, 1 << 30, 3]),  # wider than the count table: ranked by sorting
])
def test_compact_ids_equal_np_unique_inverse(ids):
    got = compact_ids(ids)
    assert got.dtype == np.int64 and np.array_equal(got, _unique_ranks(ids))


@pytest.mark.parametrize("labels", [
    np.random.default_rng(2).integers(-3, 40, 30_000),  # every negative label is unlabelled
    np.array([-1, -1]), np.array([5, 5, 2]), np.array([4, -1, 1 << 30, -7]),
    np.random.default_rng(3).integers(-1, 3, (4, 5)).astype(np.int32), np.zeros(0, np.int64),
])
def test_compact_labels_equal_the_np_unique_renumbering(labels):
    got = compact_labels(labels)
    assert got.dtype == np.int64 and np.array_equal(got, _unique_labels(labels))


def test_compact_ids_reject_negative_or_float_ids():
    with pytest.raises(ValueError, match=">= 0"):
        compact_ids(np.array([0, -1]))
    with pytest.raises(ValueError, match="integer"):
        compact_ids(np.array([0.5]))
    with pytest.raises(ValueError, match="integer"):
        compact_labels(np.array([0.5]))
