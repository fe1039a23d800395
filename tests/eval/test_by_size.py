"""Objects found by size: best IoU per GT object, binned by object size (gcseg.eval.by_size)."""

import numpy as np
import pytest

from gcseg.eval.ablation import RowPrediction, ValScene
from gcseg.eval.ap import SceneEval, best_match_per_gt
from gcseg.eval.by_size import bin_names, by_size_markdown, found_by_size, views_by_size, views_markdown


def _scene(sizes, sid="s0"):
    """GT objects of the given sizes (ids 1001, 1002, ...) then 50 void points."""
    gt = np.concatenate([np.full(n, 1001 + i) for i, n in enumerate(sizes)] + [np.zeros(50, np.int64)])
    coord = np.zeros((len(gt), 3), np.float32)
    return ValScene(scene_id=sid, coord=coord, color=np.zeros((len(gt), 3), np.uint8), gt_ids=gt.astype(np.int64))


def test_best_match_per_gt_counts_what_the_ap_counts():
    s = _scene([150, 400, 60])  # the third object is under min_region_size: not counted
    gt = s.gt_ids
    half = (gt == 1002) & (np.arange(len(gt)) < 150 + 200)  # half of object 2
    whole = gt == 1001
    tiny = np.zeros(len(gt), bool)
    tiny[:10] = True  # a mask under 100 points is left out, as the AP leaves it out
    masks = np.stack([whole, half, tiny])
    counts, best, size = best_match_per_gt(SceneEval(scene_id="s0", gt_ids=gt, pred_masks=masks,
                                                     pred_scores=np.ones(3)))
    assert counts.tolist() == [150, 400]
    assert best.tolist() == pytest.approx([1.0, 0.5])
    assert size.tolist() == [150, 200]  # the best mask's points (not the first overlapping one's)
    # class set: label 1 not in it -> nothing counted
    counts, best, size = best_match_per_gt(SceneEval(scene_id="s0", gt_ids=gt, pred_masks=masks[:1],
                                                     pred_scores=np.ones(1)), valid_labels=[2])
    assert len(counts) == 0


def test_found_by_size_bins_objects_and_rows():
    a, b = _scene([150, 400, 5000], "a"), _scene([250], "b")
    rows = {
        "good": {"a": RowPrediction(np.stack([a.gt_ids == g for g in (1001, 1002, 1003)]), np.ones(3)),
                 "b": RowPrediction(np.stack([b.gt_ids == 1001]), np.ones(1))},
        "large_only": {"a": RowPrediction(np.stack([a.gt_ids == 1003]), np.ones(1)),
                       "b": RowPrediction(np.zeros((0, len(b.gt_ids)), bool), np.zeros(0))},
    }
    t = found_by_size([a, b], rows)
    assert t["bins"] == bin_names() == ["100-300", "300-1000", "1000-3000", "3000+"]
    assert t["objects"] == [2, 1, 0, 1]
    assert t["rows"]["good"]["found"] == [1.0, 1.0, None, 1.0]
    assert t["rows"]["large_only"]["found"] == [0.0, 0.0, None, 1.0]
    assert t["rows"]["large_only"]["mean_best_iou"][0] == 0.0
    md = by_size_markdown(t, {"good": "Good row"})
    assert "| Good row | 100 (1.00) | 100 (1.00) | n/a | 100 (1.00) |" in md
    assert "| large_only | 0 (0.00) |" in md


def test_found_by_size_counts_objects_without_rows():
    t = found_by_size([_scene([150, 400, 5000], "a")], {})
    assert t["objects"] == [1, 1, 0, 1]
    assert t["rows"] == {}


def test_best_match_picks_the_best_of_several_masks_and_zero_without_overlap():
    s = _scene([200, 300])
    gt = s.gt_ids
    big = (gt == 1001) | (gt == 1002)  # 500 points: IoU 0.4 with object 1, 0.6 with object 2
    exact = gt == 1001
    counts, best, size = best_match_per_gt(SceneEval(scene_id="s0", gt_ids=gt, pred_masks=np.stack([big, exact]),
                                                     pred_scores=np.ones(2)))
    assert best.tolist() == pytest.approx([1.0, 0.6])
    assert size.tolist() == [200, 500]
    counts, best, size = best_match_per_gt(SceneEval(scene_id="s0", gt_ids=gt, pred_masks=exact[None],
                                                     pred_scores=np.ones(1)))
    assert best.tolist() == pytest.approx([1.0, 0.0]) and size.tolist() == [200, 0]


def test_found_by_size_says_why_objects_are_missed():
    s = _scene([150, 250, 200])
    gt = s.gt_ids
    merged = (gt == 1001) | (gt == 1002)  # object 1 (150) inside a 400-point mask: IoU 0.375, larger
    part = (gt == 1003) & (np.cumsum(gt == 1003) <= 100)  # half of object 3: IoU 0.5, not found, smaller
    rows = {"r": {"s0": RowPrediction(np.stack([merged, part]), np.ones(2))}}
    t = found_by_size([s], rows)
    r = t["rows"]["r"]
    # bin 100-300 holds all three; object 2 (250 points, IoU 0.625 with the merged mask) is found
    assert t["objects"][0] == 3
    assert r["found"][0] == pytest.approx(1 / 3)
    assert r["merged"][0] == pytest.approx(1 / 3) and r["partial"][0] == pytest.approx(1 / 3)
    md = by_size_markdown(t, {})
    assert "| r | 33 / 33 | n/a | n/a | n/a |" in md


def test_views_by_size_pools_scenes_per_bin():
    a = {"instance": np.array([1, 2, 3]), "points": np.array([50, 120, 5000]), "views": np.array([4, 2, 3]),
         "hits_proposals": np.array([4, 2, 3]), "hits_kept": np.array([4, 1, 3])}
    b = {"instance": np.array([4]), "points": np.array([280]), "views": np.array([2]),
         "hits_proposals": np.array([1]), "hits_kept": np.array([0])}
    t = views_by_size([a, b])
    # the 50-point object is under the first bin; 120 and 280 points share 100-300: 4 views, 3 / 1 matched
    assert t["pairs"] == [4, 0, 0, 3] and t["objects"] == [2, 0, 0, 1]
    assert t["rows"]["proposals"]["found"] == [0.75, None, None, 1.0]
    assert t["rows"]["kept"]["found"] == [0.25, None, None, 1.0]
    md = views_markdown(t, min_area_px=20)
    assert "| 100-300 pts (4 views) |" in md and "| 75 | n/a | n/a | 100 |" in md and "| 25 | n/a | n/a | 100 |" in md
    assert ">= 20 px" in md
    assert views_by_size([])["pairs"] == [0, 0, 0, 0]
