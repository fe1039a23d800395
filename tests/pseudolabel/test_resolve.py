import numpy as np

from gcseg.pseudolabel.resolve import assign_points, resolve_overlaps


def test_overlaps_go_to_the_higher_score_and_ids_follow_score_order():
    masks = np.zeros((3, 10), bool)
    masks[0, 0:6] = True  # score 0.5
    masks[1, 4:10] = True  # score 0.9: wins points 4, 5
    masks[2, 8:10] = True  # score 0.2: fully covered by mask 1 -> no id
    labels, source = assign_points(masks, np.array([0.5, 0.9, 0.2]))
    assert labels.dtype == np.int32
    assert labels.tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert source.tolist() == [1, 0]
    assert (resolve_overlaps(masks, np.array([0.5, 0.9, 0.2])) == labels).all()


def test_uncovered_points_are_minus_one_and_small_leftovers_fall_through():
    masks = np.zeros((2, 12), bool)
    masks[0, 0:5] = True  # score 0.8
    masks[1, 3:10] = True  # score 0.9
    # mask 0 keeps only 3 points (0, 1, 2) -> below min_points 4, removed; its points go to nobody else
    labels, source = assign_points(masks, np.array([0.8, 0.9]), min_points=4)
    assert labels.tolist() == [-1, -1, -1, 0, 0, 0, 0, 0, 0, 0, -1, -1]
    assert source.tolist() == [1]
    # a removed winner hands its points to the next covering mask
    masks2 = np.zeros((2, 12), bool)
    masks2[0, 0:2] = True  # score 0.9, only 2 points
    masks2[1, 0:10] = True  # score 0.5
    labels2, source2 = assign_points(masks2, np.array([0.9, 0.5]), min_points=4)
    assert labels2.tolist() == [0] * 10 + [-1, -1] and source2.tolist() == [1]


def test_a_removed_small_winner_rescues_a_worse_mask_sharing_its_points():
    masks = np.zeros((3, 8), bool)
    masks[0, 0:2] = True  # score 0.9: 2 points, under min_points 4 -> removed
    masks[1, 0:5] = True  # score 0.8: 3 points beside mask 0, 5 once mask 0 is gone -> kept
    masks[2, 6:8] = True  # score 0.7: 2 points of its own -> removed
    labels, source = assign_points(masks, np.array([0.9, 0.8, 0.7]), min_points=4)
    assert labels.tolist() == [0, 0, 0, 0, 0, -1, -1, -1]
    assert source.tolist() == [1]


def test_every_kept_mask_keeps_min_points_and_no_removed_mask_could_have():
    rng = np.random.default_rng(0)
    masks = rng.random((30, 200)) < rng.uniform(0.01, 0.3, size=(30, 1))
    scores = rng.random(30)
    labels, source = assign_points(masks, scores, min_points=10)
    counts = np.bincount(labels[labels >= 0], minlength=source.size)
    assert (counts >= 10).all()
    assert (np.diff(scores[source]) <= 0).all()  # ids in score order
    kept = set(source.tolist())
    for k in range(30):  # a removed mask had < 10 points left by the better kept masks
        if k not in kept:
            better = [j for j in source if scores[j] > scores[k]]
            taken = masks[better].any(0) if better else np.zeros(200, bool)
            assert (masks[k] & ~taken).sum() < 10


def test_empty_input():
    labels, source = assign_points(np.zeros((0, 4), bool), np.zeros(0))
    assert labels.tolist() == [-1] * 4 and source.size == 0
