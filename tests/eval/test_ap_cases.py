"""Hand-computed cases of the ScanNet AP protocol (gcseg.eval.ap), arithmetic in the comments.

Reminder of the script's integration: with points sorted by ascending confidence plus the artificial
(recall 0, precision 1) point, ``rc = [r0, r0, r1, ..., r_last, 0]`` and ``step_i = (rc[i] - rc[i+2]) / 2``;
AP = sum_i precision_i * step_i.
"""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import ConfigError, InputError
from gcseg.eval.ap import OVERLAPS, SceneEval, average_precision, evaluate_scenes
from gcseg.eval.classes import SCANNET200_CLASSES, SCANNET200_IDS, SCANNET200_SUBSETS


ONE = pytest.approx(1.0)  # the script's sums of steps are exact only up to rounding


def ranges(*sizes_and_values: tuple[int, int]) -> np.ndarray:
    """GT built from consecutive blocks (size, value)."""
    return np.concatenate([np.full(s, v, dtype=np.int64) for s, v in sizes_and_values])


def block(start: int, stop: int) -> np.ndarray:
    return np.arange(start, stop)


def ap_at(result, t: float) -> float:
    return float(result.ap_per_threshold[int(np.flatnonzero(np.isclose(OVERLAPS, t))[0])])


def test_thresholds_are_the_scripts():
    assert OVERLAPS.shape == (10,)
    assert np.allclose(OVERLAPS[:9], [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9]) and OVERLAPS[9] == 0.25


def test_perfect_prediction_is_one(scene_builder):
    gt = ranges((200, 1001), (200, 1002), (300, 2003), (100, 0))
    s = scene_builder(gt, [block(0, 200), block(200, 400), block(400, 700)], [0.2, 0.9, 0.5])
    r = evaluate_scenes([s])
    assert (r.ap, r.ap50, r.ap25) == pytest.approx((1.0, 1.0, 1.0))
    assert np.allclose(r.ap_per_threshold, 1.0)
    assert r.num_gt == 3 and r.num_pred_masks == {"s": 3} and r.num_pred_kept == {"s": 3}


def test_empty_predictions_are_zero_and_no_gt_is_nan(scene_builder):
    gt = ranges((200, 1001), (200, 1002))
    r = evaluate_scenes([scene_builder(gt, [], [])])
    assert r.ap == r.ap50 == r.ap25 == 0.0
    no_gt = evaluate_scenes([scene_builder(np.zeros(300, np.int64), [block(0, 200)], [0.5])])
    assert np.isnan(no_gt.ap) and np.isnan(no_gt.ap50) and np.isnan(no_gt.ap25)
    assert no_gt.to_dict()["ap"] is None  # JSON-safe


def test_gt_split_in_half_by_two_predictions(scene_builder):
    # One GT of 400 vertices, two masks of 200 (its halves): IoU = 200/400 = 0.5 each.
    # t >= 0.5: IoU must be > t, so no match; both masks lie on GT (ignored share 0) -> 2 FPs, 1 FN -> AP 0.
    # t = 0.25: the first mask (file order) matches; the second is a duplicate FP and the GT keeps the higher
    #   confidence: y = {TP 0.9, FP 0.8}. Ascending: 0.8 -> tp 1, fp 1: p 1/2, r 1; 0.9 -> tp 1, fp 0: p 1, r 1.
    #   precision [1/2, 1, 1], recall [1, 1, 0], rc [1, 1, 1, 0, 0], steps [0, 1/2, 1/2] -> AP25 = 1.
    gt = ranges((400, 1001), (100, 0))
    r = evaluate_scenes([scene_builder(gt, [block(0, 200), block(200, 400)], [0.8, 0.9])])
    assert r.ap == 0.0 and r.ap50 == 0.0
    assert r.ap25 == pytest.approx(1.0)


def test_three_predictions_computed_on_paper(scene_builder):
    # GT G1, G2, G3 of 200 vertices. P1 (0.9) = G1, P2 (0.8) = half of G2 + half of G3, P3 (0.7) = G2.
    # P2's IoU with G2 and with G3 = 100 / (200 + 200 - 100) = 1/3.
    #
    # t in 0.50..0.90: P1, P3 TPs, P2 a FP (IoU 1/3 <= t, nothing ignored), G3 a hard FN (3 GT in all).
    #   ascending y = [0.7 T, 0.8 F, 0.9 T]:
    #   0.7: tp 2, fp 1, fn 1 -> p 2/3, r 2/3;  0.8: tp 1, fp 1, fn 2 -> p 1/2, r 1/3;  0.9: tp 1, fp 0 -> p 1, r 1/3
    #   precision [2/3, 1/2, 1, 1], recall [2/3, 1/3, 1/3, 0]; rc [2/3, 2/3, 1/3, 1/3, 0, 0]
    #   steps [1/6, 1/6, 1/6, 1/6] -> AP = (2/3 + 1/2 + 1 + 1) / 6 = 19/36.
    # t = 0.25: GTs in id order, masks in file order. G1 <- P1. G2: P2 (1/3 > 0.25) matches first and is
    #   marked used; P3 (IoU 1) is then a duplicate: FP with min(0.8, 0.7) = 0.7, G2 keeps 0.8.
    #   G3: its only candidate P2 is used -> hard FN. y = [0.7 F, 0.8 T, 0.9 T], 1 FN:
    #   0.7: tp 2, fp 1 -> p 2/3, r 2/3;  0.8: tp 2, fp 0 -> p 1, r 2/3;  0.9: tp 1 -> p 1, r 1/3
    #   precision [2/3, 1, 1, 1], recall [2/3, 2/3, 1/3, 0]; rc [2/3, 2/3, 2/3, 1/3, 0, 0]
    #   steps [0, 1/6, 1/3, 1/6] -> AP25 = 1/6 + 1/3 + 1/6 = 2/3.
    gt = ranges((200, 1001), (200, 1002), (200, 1003))
    masks = [block(0, 200), np.concatenate([block(200, 300), block(400, 500)]), block(200, 400)]
    r = evaluate_scenes([scene_builder(gt, masks, [0.9, 0.8, 0.7])])
    assert r.ap50 == pytest.approx(19 / 36)
    assert r.ap == pytest.approx(19 / 36)
    assert r.ap25 == pytest.approx(2 / 3)
    curve = r.pr_curves[0.5]
    assert np.allclose(curve.precision, [2 / 3, 1 / 2, 1, 1]) and np.allclose(curve.recall, [2 / 3, 1 / 3, 1 / 3, 0])


def test_ranking_follows_confidence(scene_builder):
    # GT of 400; mask A covers 240 of it (IoU 0.6), mask B the other 160 (IoU 0.4). At t = 0.5: A TP, B FP.
    # conf A > B: ascending [B F, A T] -> precision [1/2, 1, 1], recall [1, 1, 0] -> AP50 = 1.
    # conf A < B: ascending [A T, B F]: A: tp 1, fp 1 -> p 1/2, r 1; B: tp 0, fp 1 -> p 0, r 0.
    #   precision [1/2, 0, 1], recall [1, 0, 0], rc [1, 1, 0, 0, 0], steps [1/2, 1/2, 0] -> AP50 = 1/4.
    # Every confidence 1.0 (use_scores=False): one threshold, tp 1, fp 1 -> p 1/2, r 1;
    #   precision [1/2, 1], recall [1, 0], steps [1/2, 1/2] -> AP50 = 3/4 whatever the model's ranking.
    gt = ranges((400, 1001), (50, 0))
    masks = [block(0, 240), block(240, 400)]
    high = evaluate_scenes([scene_builder(gt, masks, [0.9, 0.3])])
    low = evaluate_scenes([scene_builder(gt, masks, [0.3, 0.9])])
    assert high.ap50 == pytest.approx(1.0) and low.ap50 == pytest.approx(0.25)
    for scores in ([0.9, 0.3], [0.3, 0.9]):
        const = evaluate_scenes([scene_builder(gt, masks, scores)], use_scores=False)
        assert const.ap50 == pytest.approx(0.75)


def test_prediction_on_void_is_not_a_false_positive(scene_builder):
    # G1 = 0..199 (label 1), void 200..499 (value 0), 500..599 label 9 (outside the set {1}: void too).
    gt = ranges((200, 1001), (300, 0), (100, 9001))
    perfect = block(0, 200)
    on_void = block(200, 450)
    on_other_label = block(500, 600)
    r = evaluate_scenes([scene_builder(gt, [perfect, on_void, on_other_label], [0.5, 0.9, 0.95])],
                        valid_labels={1})
    assert (r.ap, r.ap50, r.ap25) == pytest.approx((1.0, 1.0, 1.0))
    # Without a class set label 9 is a GT instance: the 0.95 mask is now its TP, the 0.9 one still ignored.
    r_all = evaluate_scenes([scene_builder(gt, [perfect, on_void, on_other_label], [0.5, 0.9, 0.95])])
    assert r_all.ap == ONE and r_all.num_gt == 2


def test_void_share_decides_per_threshold(scene_builder):
    # G1, G2 of 200 with exact masks (conf 0.5 each); mask X (conf 0.9) = 124 void + 76 vertices of G3 (1000).
    # X: IoU with G3 = 76/1124 -> no match; ignored share 124/200 = 0.62: ignored for t < 0.62
    # (0.25, 0.5, 0.55, 0.6) -> AP 1 there (G3 has an exact mask too, conf 0.5).
    # t >= 0.65: X is a FP. y = [0.5 T x3, 0.9 F]: 0.5: tp 3, fp 1 -> p 3/4, r 1; 0.9: tp 0 -> p 0, r 0.
    #   precision [3/4, 0, 1], recall [1, 0, 0], steps [1/2, 1/2, 0] -> AP = 3/8 at the six thresholds 0.65..0.9.
    # AP = (3 * 1 + 6 * 3/8) / 9 = 5.25 / 9.
    gt = ranges((200, 1001), (200, 1002), (124, 0), (1000, 1003))
    x = np.concatenate([block(400, 524), block(524, 600)])
    masks = [block(0, 200), block(200, 400), block(524, 1524), x]
    r = evaluate_scenes([scene_builder(gt, masks, [0.5, 0.5, 0.5, 0.9])])
    assert r.ap25 == ONE and r.ap50 == ONE and ap_at(r, 0.6) == ONE
    assert ap_at(r, 0.65) == pytest.approx(3 / 8) and ap_at(r, 0.9) == pytest.approx(3 / 8)
    assert r.ap == pytest.approx(5.25 / 9)


def test_hundred_vertex_rule(scene_builder):
    # G1 200 (exact mask, 0.5), S = 99-vertex GT, G2 300 (exact mask, 0.5).
    gt = ranges((200, 1001), (99, 1002), (300, 1003), (200, 0))
    base = [block(0, 200), block(299, 599)]
    # A perfect 99-vertex mask of S (conf 0.9) is dropped, and S is no GT: AP stays 1, S is no FN.
    r = evaluate_scenes([scene_builder(gt, base + [block(200, 299)], [0.5, 0.5, 0.9])])
    assert r.ap == ONE and r.num_gt == 2 and r.num_pred_kept == {"s": 2} and r.num_pred_masks == {"s": 3}
    # A 150-vertex mask = S + 51 void: IoU 99/150 with S, ignored share (99 + 51)/150 = 1 -> never a FP.
    r = evaluate_scenes([scene_builder(gt, base + [np.concatenate([block(200, 299), block(599, 650)])],
                                       [0.5, 0.5, 0.9])])
    assert r.ap == ONE
    # A 99-vertex mask inside G2 is dropped; the same with 100 vertices is a FP (IoU 1/3: duplicate at 0.25).
    assert evaluate_scenes([scene_builder(gt, base + [block(299, 398)], [0.5, 0.5, 0.9])]).ap == ONE
    r100 = evaluate_scenes([scene_builder(gt, base + [block(299, 399)], [0.5, 0.5, 0.9])])
    assert r100.ap < 1.0 and r100.ap25 < 1.0
    # With min_region_size=50, S is GT and has no mask -> a hard FN: y = [0.5 T, 0.5 T], 3 GT:
    # p 1, r 2/3; precision [1, 1], recall [2/3, 0], steps [1/3, 1/3] -> AP = 2/3.
    r50 = evaluate_scenes([scene_builder(gt, base, [0.5, 0.5])], min_region_size=50)
    assert r50.num_gt == 3 and r50.ap == pytest.approx(2 / 3)


def test_lower_confidence_duplicate_is_a_false_positive(scene_builder):
    # Two copies of the only GT's mask: TP carries the max (0.9), the copy is a FP at 0.6 ranked below it:
    # precision [1/2, 1, 1], recall [1, 1, 0] -> AP 1; a FP ranked *above* the TP costs: see ranking test.
    gt = ranges((200, 1001))
    r = evaluate_scenes([scene_builder(gt, [block(0, 200), block(0, 200)], [0.6, 0.9])])
    assert r.ap == ONE
    assert np.allclose(r.pr_curves[0.5].precision, [0.5, 1, 1])


def test_valid_mask_removes_vertices_before_counting(scene_builder):
    # G2 has 150 vertices, 60 of them outside the ScanNet++ valid mask -> 90 left < 100 -> not GT.
    gt = ranges((200, 1001), (150, 1002))
    valid = np.ones(350, dtype=bool)
    valid[200:260] = False
    masks, scores = [block(0, 200)], [0.5]
    assert evaluate_scenes([scene_builder(gt, masks, scores)]).ap50 == pytest.approx(0.5)
    assert evaluate_scenes([scene_builder(gt, masks, scores, valid=valid)]).ap50 == ONE


def test_scores_pooled_over_scenes(scene_builder):
    # Scene a: exact mask (0.4). Scene b: a FP (0.9) on its GT's other half. Pooled at t=0.5:
    # y = [0.4 T, 0.9 F], 2 GT (b's is a FN): 0.4: tp 1, fp 1, fn 1 -> p 1/2, r 1/2; 0.9: tp 0 -> p 0, r 0.
    # precision [1/2, 0, 1], recall [1/2, 0, 0], rc [1/2, 1/2, 0, 0, 0], steps [1/4, 1/4, 0] -> AP50 = 1/8.
    gt = ranges((400, 1001))
    a = scene_builder(gt, [block(0, 400)], [0.4], scene_id="a")
    b = scene_builder(gt, [block(0, 150)], [0.9], scene_id="b")
    r = evaluate_scenes([a, b])
    assert r.ap50 == pytest.approx(1 / 8)
    assert r.num_pred_masks == {"a": 1, "b": 1}


def test_sparse_and_dense_masks_agree(scene_builder):
    from scipy import sparse

    gt = ranges((200, 1001), (200, 1002), (100, 0))
    s = scene_builder(gt, [block(0, 180), block(150, 400), block(400, 500)], [0.3, 0.6, 0.9])
    sp = SceneEval(scene_id="s", gt_ids=s.gt_ids, pred_masks=sparse.csr_matrix(s.pred_masks),
                   pred_scores=s.pred_scores)
    assert np.array_equal(evaluate_scenes([s]).ap_per_threshold, evaluate_scenes([sp]).ap_per_threshold)


def test_head_common_tail_subsets(scene_builder):
    ids = dict((n, i) for i, n in SCANNET200_CLASSES)
    chair, cushion, paper = ids["chair"], ids["cushion"], ids["paper"]
    assert chair in SCANNET200_SUBSETS["head"] and cushion in SCANNET200_SUBSETS["common"]
    assert paper in SCANNET200_SUBSETS["tail"]
    gt = ranges((200, chair * 1000 + 1), (200, cushion * 1000 + 2), (200, paper * 1000 + 3), (200, 1 * 1000 + 4))
    all_masks = [block(0, 200), block(200, 400), block(400, 600)]
    perfect = evaluate_scenes([scene_builder(gt, all_masks, [0.3, 0.5, 0.9])], valid_labels=SCANNET200_IDS,
                              subsets=SCANNET200_SUBSETS)
    # Wall (id 1) is not an instance class: 3 GT; every subset scores 1.0.
    assert perfect.num_gt == 3 and perfect.ap == ONE
    assert {k: v.ap for k, v in perfect.subsets.items()} == pytest.approx({"head": 1.0, "common": 1.0, "tail": 1.0})
    assert {k: v.num_gt for k, v in perfect.subsets.items()} == {"head": 1, "common": 1, "tail": 1}
    # Masks for the chair and the paper only, the paper's ranked first: for head the paper mask lies on void
    # (not a FP) -> 1.0; common: GT but every mask ignored -> 0.0; tail: 1.0.
    partial = evaluate_scenes([scene_builder(gt, [block(0, 200), block(400, 600)], [0.3, 0.9])],
                              valid_labels=SCANNET200_IDS, subsets=SCANNET200_SUBSETS)
    assert partial.subsets["head"].ap == ONE and partial.subsets["tail"].ap == ONE
    assert partial.subsets["common"].ap == 0.0
    assert partial.to_dict()["subsets"]["common"]["ap"] == 0.0


def test_average_precision_edge_cases():
    assert np.isnan(average_precision(np.zeros(0), np.zeros(0), 0, has_gt=False, has_pred=True)[0])
    assert average_precision(np.zeros(0), np.zeros(0), 3, has_gt=True, has_pred=False)[0] == 0.0
    # GT and (ignored) predictions but no example: the script would raise IndexError; 0.0 here.
    assert average_precision(np.zeros(0), np.zeros(0), 3, has_gt=True, has_pred=True)[0] == 0.0


def test_bad_inputs_raise(scene_builder):
    gt = ranges((200, 1001))
    with pytest.raises(InputError, match="non-finite"):
        evaluate_scenes([scene_builder(gt, [block(0, 200)], [float("nan")])])
    with pytest.raises(InputError, match="cover 100 vertices"):
        evaluate_scenes([SceneEval(scene_id="s", gt_ids=gt, pred_masks=np.zeros((1, 100), bool),
                                   pred_scores=np.ones(1))])
    with pytest.raises(InputError, match="duplicate scene"):
        evaluate_scenes([scene_builder(gt, [], []), scene_builder(gt, [], [])])
    with pytest.raises(ConfigError, match="label id 0"):
        evaluate_scenes([scene_builder(gt, [], [])], valid_labels={0, 1})
    with pytest.raises(InputError, match="negative"):
        evaluate_scenes([scene_builder(ranges((10, -1)), [], [])])
