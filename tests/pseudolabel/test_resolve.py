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


def test_empty_input():
    labels, source = assign_points(np.zeros((0, 4), bool), np.zeros(0))
    assert labels.tolist() == [-1] * 4 and source.size == 0
