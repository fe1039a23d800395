"""Perfect ranking (gcseg.eval.ranking): the same masks in the order the GT gives them."""

import numpy as np
import pytest

from gcseg.eval.ap import SceneEval, evaluate_scenes
from gcseg.eval.ranking import perfect_ranking_scores, with_perfect_ranking


def _scene():
    # two objects of 200 vertices and 100 void vertices
    gt = np.repeat([1001, 1002, 0], [200, 200, 100]).astype(np.int64)
    a, b = gt == 1001, gt == 1002
    part = a.copy()
    part[100:200] = False  # half of object a: IoU 0.5
    union = a | b  # both objects: IoU 0.5 with each
    near_b = b.copy()
    near_b[200:210] = False  # object b less 10 vertices: IoU 0.95
    tiny = np.zeros_like(a)
    tiny[0:50] = True  # under min_region_size
    masks = np.stack([union, part, a, near_b, b, tiny])
    # confidences that rank the union and the part first: the given order loses
    return SceneEval(scene_id="s", gt_ids=gt, pred_masks=masks, pred_scores=np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.95]))


def test_each_objects_best_mask_gets_its_iou_and_the_rest_zero():
    scores = perfect_ranking_scores(_scene())
    # object a's best mask: the exact one (2); object b's: the exact one (4), not its near copy; the union, the
    # part, the near copy and the tiny mask (ignored by the evaluation) rank after them
    np.testing.assert_allclose(scores, [0, 0, 1, 0, 1, 0])


def test_perfect_ranking_scores_at_least_the_given_order():
    scene = _scene()
    given = evaluate_scenes([scene])
    ranked = evaluate_scenes(with_perfect_ranking([scene]))
    assert ranked.ap == pytest.approx(1.0) and given.ap < ranked.ap
    assert with_perfect_ranking([scene])[0].pred_masks is scene.pred_masks  # the masks themselves untouched


def test_valid_vertices_classes_and_size_count_as_the_evaluation_counts_them():
    scene = _scene()
    # object b under the size limit once vertices 200-399 are left out: only object a counts
    valid = np.ones(500, bool)
    valid[200:399] = False
    scores = perfect_ranking_scores(SceneEval(scene_id="s", gt_ids=scene.gt_ids, pred_masks=scene.pred_masks,
                                              pred_scores=scene.pred_scores, valid=valid))
    np.testing.assert_allclose(scores, [0, 0, 1, 0, 0, 0])
    # a class set without label 1: no counted object, every mask 0
    assert not perfect_ranking_scores(scene, valid_labels=[2]).any()
    empty = SceneEval(scene_id="e", gt_ids=scene.gt_ids, pred_masks=np.zeros((0, 500), bool), pred_scores=np.zeros(0))
    assert perfect_ranking_scores(empty).shape == (0,)


def test_perfect_ranking_block_scores_each_row_beside_its_given_order():
    """The eval stage's diagnostic: each row's masks in the perfect order beside its given AP, as a JSON block and
    a Markdown table of what the order costs."""
    from gcseg.eval.ablation import RowPrediction, ValScene, evaluate_rows
    from gcseg.eval.ranking import perfect_ranking_block, perfect_ranking_markdown

    scene = _scene()
    n = scene.gt_ids.shape[0]
    val = ValScene(scene_id="s", coord=np.zeros((n, 3), np.float32), color=np.zeros((n, 3), np.uint8), gt_ids=scene.gt_ids)
    rows = {"bad_order": {"s": RowPrediction(scene.pred_masks, scene.pred_scores)},
            "good_order": {"s": RowPrediction(scene.pred_masks, np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.0]))}}
    given = evaluate_rows([val], rows)
    block = perfect_ranking_block([val], rows, given)
    assert list(block["rows"]) == ["bad_order", "good_order"] and "uses GT" in block["source"]
    for name, r in block["rows"].items():
        assert r["AP"] == pytest.approx(1.0)
        assert r["given"] == {k: given[name].metrics()[k] for k in ("AP", "AP50", "AP25")}
    assert block["rows"]["bad_order"]["given"]["AP"] < 1.0
    assert block["rows"]["good_order"]["given"]["AP"] == pytest.approx(1.0)
    text = perfect_ranking_markdown(block, {"bad_order": "Bad order"})
    lost = 100 * (1.0 - block["rows"]["bad_order"]["given"]["AP"])
    assert f"| Bad order | {100 * block['rows']['bad_order']['given']['AP']:.1f} | 100.0 | {lost:.1f} |" in text
    assert "| good_order | 100.0 | 100.0 | 0.0 |" in text
