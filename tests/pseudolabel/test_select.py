import numpy as np

from gcseg.pseudolabel.select import select_masks


def _masks(sizes, n=400):
    masks = np.zeros((len(sizes), n), dtype=bool)
    for k, s in enumerate(sizes):
        masks[k, :s] = True
    return masks


def test_order_topk_threshold_and_size():
    scores = np.array([0.5, 0.9, 0.7, 0.95, 0.65], np.float32)
    masks = _masks([200, 200, 50, 200, 200])
    assert select_masks(masks, scores, top_k=0, tau_conf=0.0, min_points=0).tolist() == [3, 1, 2, 4, 0]
    assert select_masks(masks, scores, top_k=2, tau_conf=0.0, min_points=0).tolist() == [3, 1]
    assert select_masks(masks, scores, top_k=0, tau_conf=0.6, min_points=0).tolist() == [3, 1, 2, 4]
    # size is checked last: mask 2 (50 points) goes, the others stay
    assert select_masks(masks, scores, top_k=0, tau_conf=0.6, min_points=100).tolist() == [3, 1, 4]
    # top-k applies to queries before the threshold (Segment3D: k < 150 and score > 0.6)
    assert select_masks(masks, scores, top_k=3, tau_conf=0.8, min_points=0).tolist() == [3, 1]


def test_higher_tau_conf_keeps_a_subset():
    rng = np.random.default_rng(0)
    masks = rng.random((60, 300)) < 0.5
    scores = rng.random(60).astype(np.float32)
    previous = None
    for tau in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        kept = set(select_masks(masks, scores, top_k=150, tau_conf=tau, min_points=100).tolist())
        assert all(scores[k] > tau for k in kept)
        if previous is not None:
            assert kept <= previous
        previous = kept
    assert previous == set()


def test_ties_are_deterministic():
    masks = _masks([10, 10, 10])
    scores = np.array([0.7, 0.7, 0.7])
    assert select_masks(masks, scores, top_k=2, tau_conf=0.5, min_points=1).tolist() == [0, 1]
