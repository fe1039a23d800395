"""The quick AP50 used as a training sanity metric."""

import numpy as np

from gcseg.train.quick_metrics import average_precision, mask_iou


def test_perfect_and_empty_predictions():
    gt = np.array([0, 0, 1, 1, -1])
    perfect = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], bool)
    assert average_precision([(perfect, np.array([0.9, 0.8]), gt)]) == 1.0
    assert average_precision([(np.zeros((0, 5), bool), np.zeros(0), gt)]) == 0.0


def test_false_positive_ranked_first_lowers_ap_and_duplicates_do_not_count():
    gt = np.array([0, 0, 1, 1])
    masks = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], bool)
    ap = average_precision([(masks, np.array([0.9, 0.8, 0.7, 0.6]), gt)])
    # ranks: FP, TP, FP(duplicate), TP -> precision at recall 0.5 = 0.5, at 1.0 = 0.5
    assert abs(ap - 0.5) < 1e-9
    assert np.allclose(mask_iou(masks[:2], masks[1:2]), [[0.5], [1.0]])
