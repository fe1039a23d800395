"""Connected pieces of predicted masks (gcseg.models.fragments)."""

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.cluster import DBSCAN

from gcseg.models.config import FragmentConfig
from gcseg.models.fragments import add_fragments, element_adjacency, fragment_masks


def _grid(x0: float, n: int = 10, step: float = 0.02) -> np.ndarray:
    """An n x n patch of points `step` apart in the z = 0 plane, starting at x = x0."""
    g = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) * step
    return np.column_stack([g[:, 0] + x0, g[:, 1], np.zeros(len(g))])


def _scene():
    """Three patches of 100 points: A and B touch (2 cm apart), C is 30 cm away. Elements: 6 halves of patches."""
    coord = np.concatenate([_grid(0.0), _grid(0.2), _grid(0.8)])  # A ends at x = 0.18, B starts at 0.20
    to_element = np.repeat(np.arange(6), 50)
    return coord, to_element


def test_adjacency_links_elements_with_points_within_eps():
    coord, to_el = _scene()
    adj = element_adjacency(coord, to_el, 6, 0.05).toarray()
    assert (adj == adj.T).all() and not adj.diagonal().any()
    assert adj[0, 1] and adj[1, 2] and adj[2, 3] and adj[4, 5]  # halves of a patch; A's edge touches B
    assert not adj[3, 4] and not adj[0, 4]  # C is 30 cm away from everything


def test_a_mask_that_falls_apart_adds_its_pieces_under_it():
    coord, to_el = _scene()
    weight = np.bincount(to_el).astype(float)
    binary = np.array([[1, 1, 0, 0, 1, 1],   # A + C: two pieces
                       [1, 1, 1, 1, 0, 0],   # A + B: connected
                       [0, 0, 0, 0, 1, 0]], dtype=bool)
    scores = np.array([0.8, 0.9, 0.4], np.float32)
    out, s = add_fragments(binary, scores, coord, to_el, weight, FragmentConfig(eps=0.05, score_factor=0.5))
    assert s.tolist() == pytest.approx([0.9, 0.8, 0.4, 0.4, 0.4])
    assert out[:3].tolist() == [binary[1].tolist(), binary[0].tolist(), binary[2].tolist()]
    assert out[3].tolist() == [1, 1, 0, 0, 0, 0] and out[4].tolist() == [0, 0, 0, 0, 1, 1]  # first element's order


def test_pieces_under_min_points_do_not_count():
    coord, to_el = _scene()
    weight = np.bincount(to_el).astype(float)  # 50 points per element
    binary = np.array([[1, 1, 0, 0, 1, 0]], dtype=bool)  # A (100 points) + half of C (50)
    pieces, parent = fragment_masks(binary, element_adjacency(coord, to_el, 6, 0.05), weight, min_points=100)
    assert pieces.shape == (0, 6) and parent.shape == (0,)  # one piece left: the mask stays as it is
    pieces, parent = fragment_masks(binary, element_adjacency(coord, to_el, 6, 0.05), weight, min_points=50)
    assert pieces.shape == (2, 6) and parent.tolist() == [0, 0]


def test_pieces_equal_dbscan_components_on_points():
    """With every element internally connected, the pieces are DBSCAN's clusters at min_samples 1."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        coord = np.concatenate([_grid(x, n=6) for x in rng.choice(np.arange(0, 3, 0.13), 6, replace=False)])
        to_el = np.repeat(np.arange(12), 18)  # halves of 6 patches
        binary = rng.random((5, 12)) < 0.5
        pieces, parent = fragment_masks(binary, element_adjacency(coord, to_el, 12, 0.05), np.full(12, 18.0), 1)
        for k in range(5):
            pts = np.flatnonzero(binary[k][to_el])
            if pts.size == 0:
                continue
            labels = DBSCAN(eps=0.05, min_samples=1).fit(coord[pts]).labels_
            want = sorted(sorted(pts[labels == c].tolist()) for c in np.unique(labels)) if labels.max() > 0 else []
            got = sorted(sorted(np.flatnonzero(p[to_el]).tolist()) for p in pieces[parent == k])
            assert got == want


def test_deterministic_and_empty_inputs():
    coord, to_el = _scene()
    weight = np.bincount(to_el).astype(float)
    binary = np.array([[1, 1, 0, 0, 1, 1]], dtype=bool)
    a = add_fragments(binary, np.ones(1, np.float32), coord, to_el, weight, FragmentConfig())
    b = add_fragments(binary, np.ones(1, np.float32), coord, to_el, weight, FragmentConfig())
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    out, s = add_fragments(np.zeros((0, 6), bool), np.zeros(0, np.float32), coord, to_el, weight, FragmentConfig())
    assert out.shape == (0, 6) and s.shape == (0,)


def test_config_rejects_out_of_range_values():
    for bad in ({"eps": 0}, {"score_factor": 0}, {"score_factor": 1.5}, {"min_points": 0}, {"other": 1}):
        with pytest.raises(ValidationError):
            FragmentConfig(**bad)
