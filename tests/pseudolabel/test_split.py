import numpy as np
import pytest

from gcseg.pseudolabel.split import split_disconnected


def _grid(origin, n=6, step=0.05):
    g = np.stack(np.meshgrid(*[np.arange(n) * step] * 3, indexing="ij"), -1).reshape(-1, 3)
    return g + np.asarray(origin)


def test_two_blob_mask_is_split_and_fragments_inherit_score():
    coord = np.concatenate([_grid([0, 0, 0]), _grid([2, 0, 0]), _grid([0, 2, 0], n=3)]).astype(np.float32)
    n = len(coord)
    blob_a, blob_b = np.arange(216), np.arange(216, 432)
    masks = np.zeros((2, n), bool)
    masks[0, np.concatenate([blob_a, blob_b])] = True  # one mask over two distant blobs
    masks[1, blob_b] = True  # a connected mask stays whole
    out, scores, parent = split_disconnected(masks, coord, scores=np.array([0.9, 0.4]), eps=0.08, min_samples=1)
    assert out.shape == (3, n)
    assert parent.tolist() == [0, 0, 1]
    np.testing.assert_allclose(scores, [0.9, 0.9, 0.4])
    assert set(np.flatnonzero(out[0])) == set(blob_a)
    assert set(np.flatnonzero(out[1])) == set(blob_b)
    assert (out[2] == masks[1]).all()


def test_small_fragments_are_dropped_and_output_deterministic():
    coord = np.concatenate([_grid([0, 0, 0]), _grid([2, 0, 0], n=2)]).astype(np.float32)  # 216 + 8 points
    masks = np.ones((1, len(coord)), bool)
    a = split_disconnected(masks, coord, scores=np.array([0.8]), eps=0.08, min_samples=1, min_points=10)
    b = split_disconnected(masks, coord, scores=np.array([0.8]), eps=0.08, min_samples=1, min_points=10)
    assert a[0].shape == (1, len(coord)) and a[0][0, :216].all() and not a[0][0, 216:].any()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_no_masks_and_bad_arguments():
    coord = np.zeros((5, 3), np.float32)
    out, scores, parent = split_disconnected(np.zeros((0, 5), bool), coord, scores=np.zeros(0), eps=0.1,
                                             min_samples=1)
    assert out.shape == (0, 5) and scores.shape == (0,) and parent.shape == (0,)
    with pytest.raises(ValueError):
        split_disconnected(np.ones((1, 5), bool), coord, scores=np.ones(1), eps=0.0, min_samples=1)
