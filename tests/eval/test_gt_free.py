"""GT-free statistics (gcseg.eval.gt_free): covering / agreement on hand-made labellings, per-row statistics, the
summary over scenes and its Markdown."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gcseg.eval.ablation import RowPrediction, ValScene
from gcseg.eval.gt_free import (agreement, covering, gt_free_markdown, gt_free_stats, has_gt, instance_labels,
                                no_gt_metrics, scene_stats, unlabelled_scene)
from gcseg.scene import PointCloud


def _pred(labels: np.ndarray, scores: list[float] | None = None) -> RowPrediction:
    """Disjoint masks, one per label >= 0 (ascending), with the given scores."""
    labels = np.asarray(labels)
    ids = np.unique(labels[labels >= 0])
    masks = labels[None, :] == ids[:, None]
    return RowPrediction(masks=masks, scores=np.asarray(scores if scores is not None else [0.5] * len(ids),
                                                        np.float32))


def _scene(n: int, sid: str = "s", gt: np.ndarray | None = None) -> ValScene:
    return ValScene(scene_id=sid, coord=np.zeros((n, 3), np.float32), color=np.zeros((n, 3), np.uint8),
                    gt_ids=np.zeros(n, np.int64) if gt is None else gt)


def test_covering_and_agreement_by_hand():
    a = np.array([0] * 100 + [-1] * 20)
    assert covering(a, a) == agreement(a, a) == 1.0
    split = np.array([0] * 50 + [1] * 50 + [-1] * 20)  # the same object cut in two halves
    assert covering(a, split) == pytest.approx(0.5)  # each half has IoU 0.5 with the whole
    assert covering(split, a) == pytest.approx(0.5)
    assert agreement(a, split) == pytest.approx(0.5)
    relabelled = np.where(a >= 0, a + 7, -1)  # ids themselves do not matter
    assert agreement(a, relabelled) == 1.0
    none = np.full(120, -1)
    assert covering(none, a) is None and covering(a, none) == 0.0
    assert agreement(a, none) == 0.0 and agreement(none, none) is None
    # size weighting: a big object matched exactly, a small one missed
    b = np.array([0] * 90 + [1] * 10 + [-1] * 20)
    c = np.array([0] * 90 + [-1] * 30)
    assert covering(b, c) == pytest.approx(0.9)
    assert covering(c, b) == 1.0


def test_instance_labels_resolve_overlaps_and_drop_small():
    masks = np.zeros((3, 10), bool)
    masks[0, :6] = True  # score 0.9
    masks[1, 4:10] = True  # score 0.5: loses points 4, 5 to mask 0
    masks[2, 9] = True  # score 0.95, one point
    pred = RowPrediction(masks=masks, scores=np.array([0.9, 0.5, 0.95], np.float32))
    lab = instance_labels(pred, 10, min_points=2)  # mask 2 too small: point 9 goes back to mask 1
    assert lab.tolist() == [0] * 6 + [1] * 4
    assert instance_labels(RowPrediction(np.zeros((0, 10), bool), np.zeros(0, np.float32)), 10, 1).tolist() == [-1] * 10


def test_scene_stats_vote_share_is_point_weighted():
    lab = np.array([0] * 30 + [1] * 10 + [-1] * 10)
    preds = {"lift_only": _pred(lab, [0.9, 0.5]), "stage1": _pred(np.array([0] * 40 + [-1] * 10))}
    st = scene_stats(_scene(50), preds, min_points=5)
    lift = st["rows"]["lift_only"]
    assert lift == {"masks": 2, "instances": 2, "labelled_fraction": 0.8, "vote_share": 0.8}  # (27 + 5) / 40
    assert "vote_share" not in st["rows"]["stage1"]
    # covering(lift_only, stage1) = (30 * 0.75 + 10 * 0.25) / 40 = 0.625; covering(stage1, lift_only) = 0.75
    assert st["agreement"] == {"lift_only": {"stage1": pytest.approx((0.625 + 0.75) / 2)}}


def test_summary_over_scenes_and_markdown():
    a = _scene(50, "a")
    b = _scene(40, "b", gt=np.array([1001] * 20 + [0] * 20))
    rows = {
        "lift_only": {"a": _pred(np.array([0] * 50), [1.0]), "b": _pred(np.array([0] * 20 + [-1] * 20), [0.5])},
        "stage1": {"a": _pred(np.array([0] * 25 + [1] * 25)), "b": _pred(np.array([-1] * 40), [])},
    }
    st = gt_free_stats([a, b], rows, min_points=10)
    assert st["scenes"] == 2 and st["scenes_with_gt"] == 1 and st["min_points"] == 10
    assert st["rows"]["lift_only"] == {"masks_per_scene": 1.0, "instances_per_scene": 1.0,
                                       "labelled_fraction": 0.75, "vote_share": 0.75}
    assert st["rows"]["stage1"] == {"masks_per_scene": 1.0, "instances_per_scene": 1.0, "labelled_fraction": 0.5}
    # scene a: one object vs its two halves -> 0.5; scene b: stage1 has nothing -> 0
    assert st["agreement"] == {"lift_only": {"stage1": 0.25}}
    assert list(st["per_scene"]) == ["a", "b"]
    md = gt_free_markdown(st)
    assert "(2 scene(s), 1 with GT" in md
    assert "| Stage 2 tracked labels, lifted (no 3D model) | 1.0 | 1.0 | 75.0 | 75.0 |" in md
    assert "| Stage 1 | 1.0 | 1.0 | 50.0 | n/a |" in md
    assert "| Stage 2 tracked labels, lifted (no 3D model) | 25.0 |" in md
    assert no_gt_metrics(st) == {"lift_only": {"AP": None, "AP50": None, "AP25": None, "masks_per_scene": 1.0},
                                 "stage1": {"AP": None, "AP50": None, "AP25": None, "masks_per_scene": 1.0}}


def test_rows_that_cover_some_scenes_only():
    a, b = _scene(20, "a"), _scene(20, "b")
    rows = {"lift_only": {"a": _pred(np.zeros(20, int), [1.0]), "b": _pred(np.zeros(20, int), [1.0])},
            "diagnostic": {"a": _pred(np.zeros(20, int))}}
    st = gt_free_stats([a, b], rows, min_points=1)
    assert st["rows"]["diagnostic"]["instances_per_scene"] == 1.0
    assert st["agreement"]["lift_only"]["diagnostic"] == 1.0
    assert "diagnostic" not in st["per_scene"]["b"]["rows"]


def test_unlabelled_scene():
    cloud = PointCloud(coord=np.zeros((5, 3), np.float32))
    s = unlabelled_scene("x", cloud)
    assert s.gt_ids.tolist() == [0] * 5 and s.color.shape == (5, 3) and not has_gt(s)
    # ids under 1000 are void (label * 1000 + instance): no object AP would count
    assert not has_gt(replace(s, gt_ids=np.array([0, 3, 999, 0, 0]))) and has_gt(replace(s, gt_ids=np.array([0, 1001, 0, 0, 0])))
