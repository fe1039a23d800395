"""Exact cases of the containment filter (hand-made masks) and its monotonicity in tau_contain."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.proposals.containment import containment_filter, processing_order


def rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_nested_chain_keeps_only_the_largest():
    # 10x10 in 8x8 in 4x4: every smaller mask lies wholly in a kept larger one
    masks = np.stack([rect(10, 10, 2, 6, 2, 6), rect(10, 10, 0, 10, 0, 10), rect(10, 10, 1, 9, 1, 9)])
    kept = containment_filter(masks, np.array([0.9, 0.1, 0.5], np.float32), tau_contain=0.8)
    assert kept.tolist() == [1]


def test_partial_overlap_below_threshold_is_kept():
    a = rect(10, 10, 0, 10, 0, 5)  # 50 px
    b = rect(10, 10, 0, 10, 3, 8)  # 50 px, 20 inside a -> ratio 0.4
    kept = containment_filter(np.stack([a, b]), np.array([0.5, 0.5], np.float32), tau_contain=0.8)
    assert kept.tolist() == [0, 1]  # equal area and score: index order


def test_ratio_exactly_tau_is_kept_strict_inequality():
    big = rect(10, 10, 0, 10, 0, 10)
    n = np.zeros((10, 10), bool)
    n[0, :] = True  # 10 px
    big[0, 8:] = False  # n & big = 8 px -> ratio exactly 0.8
    kept = containment_filter(np.stack([big, n]), np.array([1.0, 1.0], np.float32), tau_contain=0.8)
    assert kept.tolist() == [0, 1]
    kept = containment_filter(np.stack([big, n]), np.array([1.0, 1.0], np.float32), tau_contain=0.79)
    assert kept.tolist() == [0]


def test_equal_area_ties_break_by_score_then_index():
    m = rect(6, 6, 1, 5, 1, 5)
    masks = np.stack([m, m, m])
    assert containment_filter(masks, np.array([0.2, 0.7, 0.7], np.float32), 0.8).tolist() == [1]
    assert processing_order(np.array([16, 16, 16]), np.array([0.2, 0.7, 0.7])).tolist() == [1, 2, 0]


def test_contained_in_a_dropped_mask_only_survives():
    # m (100 px) > m2 (85 px, 80 of them in m -> 0.94, dropped) > n (12 px, inside m2 but outside m)
    h, w = 20, 20
    m = rect(h, w, 0, 10, 0, 10)
    m2 = rect(h, w, 0, 10, 0, 8) | rect(h, w, 10, 11, 0, 5)
    n = rect(h, w, 10, 11, 0, 5)
    masks = np.stack([n, m2, m])
    kept = containment_filter(masks, np.ones(3, np.float32), 0.8)
    assert sorted(kept.tolist()) == [0, 2]
    # compared against all earlier masks, n goes too
    assert containment_filter(masks, np.ones(3, np.float32), 0.8, against="all").tolist() == [2]


def test_min_area_and_empty_masks_dropped():
    masks = np.stack([rect(8, 8, 0, 2, 0, 2), np.zeros((8, 8), bool), rect(8, 8, 4, 8, 4, 8)])
    assert containment_filter(masks, np.ones(3, np.float32), 0.8, min_area=5).tolist() == [2]
    assert containment_filter(masks, np.ones(3, np.float32), 0.8, min_area=0).tolist() == [2, 0]
    assert containment_filter(np.zeros((0, 8, 8), bool), np.zeros(0, np.float32), 0.8).tolist() == []


def test_bad_arguments():
    with pytest.raises(ValueError):
        containment_filter(np.zeros((2, 4, 4), bool), np.zeros(3, np.float32), 0.8)
    with pytest.raises(ValueError):
        containment_filter(np.zeros((2, 4, 4), bool), np.zeros(2, np.float32), 1.5)


def test_greedy_filter_is_not_monotone_in_general():
    """Documented counterexample: a higher tau keeps m2, which then drops n (kept at the lower tau)."""
    h, w = 20, 20
    m = rect(h, w, 0, 10, 0, 10)
    m2 = rect(h, w, 0, 10, 0, 8) | rect(h, w, 10, 11, 0, 5)
    n = rect(h, w, 10, 11, 0, 5)
    masks, scores = np.stack([m, m2, n]), np.ones(3, np.float32)
    low = set(containment_filter(masks, scores, 0.8).tolist())
    high = set(containment_filter(masks, scores, 0.99).tolist())
    assert low == {0, 2} and high == {0, 1}


def random_masks(rng: np.random.Generator, k: int, h: int = 24, w: int = 24, laminar: bool = False):
    if laminar:  # a hierarchy: recursive splits of rectangles (nested or disjoint)
        boxes = [(0, h, 0, w)]
        out = []
        while len(out) < k and boxes:
            y0, y1, x0, x1 = boxes.pop(int(rng.integers(len(boxes))))
            out.append(rect(h, w, y0, y1, x0, x1))
            if y1 - y0 >= 2 and (y1 - y0 >= x1 - x0):
                c = int(rng.integers(y0 + 1, y1))
                boxes += [(y0, c, x0, x1), (c, y1, x0, x1)]
            elif x1 - x0 >= 2:
                c = int(rng.integers(x0 + 1, x1))
                boxes += [(y0, y1, x0, c), (y0, y1, c, x1)]
        return np.stack(out), rng.random(len(out)).astype(np.float32)
    masks = []
    for _ in range(k):
        y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
        y1, x1 = rng.integers(y0 + 1, h + 1), rng.integers(x0 + 1, w + 1)
        masks.append(rect(h, w, y0, y1, x0, x1))
    return np.stack(masks), rng.random(k).astype(np.float32)


@pytest.mark.parametrize("seed", range(40))
def test_higher_tau_keeps_a_superset(seed):
    rng = np.random.default_rng(seed)
    taus = np.sort(rng.random(2))
    # against="all" is monotone for arbitrary masks
    masks, scores = random_masks(rng, 12)
    lo = set(containment_filter(masks, scores, taus[0], min_area=3, against="all").tolist())
    hi = set(containment_filter(masks, scores, taus[1], min_area=3, against="all").tolist())
    assert lo <= hi
    # the greedy spec filter is monotone on hierarchies (every pair nested or disjoint)
    masks, scores = random_masks(rng, 12, laminar=True)
    lo = set(containment_filter(masks, scores, taus[0], min_area=3).tolist())
    hi = set(containment_filter(masks, scores, taus[1], min_area=3).tolist())
    assert lo <= hi
