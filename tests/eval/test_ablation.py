"""The ablation rows: GT from the reference cloud, lift-only predictions with vote-share confidences, model rows,
the table and the PR CSVs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from gcseg.eval.ablation import (RowPrediction, ablation_markdown, evaluate_rows, gt_ids_from_cloud,
                                 lift_only_predictions, metrics_json, model_predictions, pr_csv,
                                 val_scene_from_cloud, write_ablation_markdown)
from gcseg.errors import InputError
from gcseg.scene import PointCloud


def vote_shares(coord, labels, views, *, max_dist, voxel):
    """Each point's vote share of its label, voted as sam2_track votes (VoteAccumulator.label_shares)."""
    from gcseg.lifting import VoteAccumulator

    acc = VoteAccumulator(coord, max_dist=max_dist, voxel=voxel, association="point")
    for frame, id_map in views:
        acc.add(frame, id_map)
    return acc.label_shares(labels)


def _data():
    name = "gcseg_tests_eval_ablation_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "ablation_data.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]




@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("abl")
    _data().write_scene(root / "scene_v")
    return root


def _open(scene_dir):
    from gcseg.readers import open_scene

    scene = open_scene("synth", scene_dir, "scene_v")
    return scene, val_scene_from_cloud("scene_v", scene.reference())


def test_gt_ids_void_and_encoding():
    cloud = PointCloud(coord=np.zeros((5, 3), np.float32), instance=np.array([0, 1, 1, 2, 3]),
                       segment=np.array([4, 2, 2, 0, 5]))
    assert gt_ids_from_cloud(cloud, "s").tolist() == [0, 2001, 2001, 0, 5003]
    big = PointCloud(coord=np.zeros((3, 3), np.float32), instance=np.array([1500, 7, 1500]),
                     segment=np.array([1, 2, 1]))
    assert gt_ids_from_cloud(big, "s").tolist() == [1002, 2001, 1002]  # renumbered, no collision
    no_seg = PointCloud(coord=np.zeros((2, 3), np.float32), instance=np.array([0, 4]))
    assert gt_ids_from_cloud(no_seg, "s").tolist() == [0, 1004]
    with pytest.raises(InputError, match="no GT instance"):
        gt_ids_from_cloud(PointCloud(coord=np.zeros((2, 3), np.float32)), "s")


def test_lift_only_scores_are_mean_vote_share():
    labels = np.array([5, 5, 5, 9, 9, -1])
    shares = np.array([1.0, 0.5, 0.6, 0.9, 0.7, 0.0])
    pred = lift_only_predictions(labels, shares)
    assert pred.masks.shape == (2, 6)
    assert pred.scores.tolist() == pytest.approx([0.8, 0.7])  # id 9 first: higher confidence
    assert pred.masks[0].tolist() == [False, False, False, True, True, False]
    assert pred.vote_share.tolist() == pytest.approx([0.8, 0.7])


def test_lift_only_confidence_discounts_few_votes():
    """With vote counts, a fragment whose every point one view saw (share 1.0) ranks below an object ten views
    saw at share 0.8; the mean vote shares stay beside the confidences."""
    labels = np.array([3, 3, 8, 8, -1])
    shares = np.array([1.0, 1.0, 0.8, 0.8, 0.0])
    votes = np.array([1, 1, 10, 10, 4])
    pred = lift_only_predictions(labels, shares, votes)
    assert pred.masks[0].tolist() == [False, False, True, True, False]
    assert pred.scores[0] > pred.scores[1] and 0 < pred.scores[1] < 0.5
    assert pred.vote_share.tolist() == pytest.approx([0.8, 1.0])
    with pytest.raises(InputError, match="vote counts"):
        lift_only_predictions(labels, shares, votes[:-1])


def test_vote_shares_count_background_votes(scene_dir):
    d = _data()
    scene, val = _open(scene_dir)
    maps = d.perfect_id_maps(2)
    maps[1][:, :4] = 0  # second view: the first 4 columns of object 3 seen as "no object"
    labels = maps[0].reshape(-1).astype(np.int64)
    views = [(scene.frame(i), maps[i]) for i in range(2)]
    share = vote_shares(val.coord, labels, views, max_dist=0.05, voxel=None)
    grid = share.reshape(d.H, d.W)
    assert np.allclose(grid[:, :4], 0.5) and np.allclose(grid[:, 4:d.W // 2], 1.0)
    assert np.allclose(grid[: d.H // 2, d.W // 2:], 1.0) and np.allclose(grid[d.H // 2:, d.W // 2:], 0.0)


def test_lift_only_perfect_labels_score_ap_one(scene_dir):
    d = _data()
    scene, val = _open(scene_dir)
    maps = d.perfect_id_maps(2)
    labels = maps[0].reshape(-1).astype(np.int64)
    labels[labels == 0] = -1
    share = vote_shares(val.coord, labels, [(scene.frame(i), maps[i]) for i in range(2)], max_dist=0.05, voxel=0.01)
    res = evaluate_rows([val], {"lift_only": {"scene_v": lift_only_predictions(labels, share)}})
    m = metrics_json(res)["lift_only"]
    assert m == {"AP": 1.0, "AP50": 1.0, "AP25": 1.0, "masks_per_scene": 2.0}


def test_lift_only_merged_objects_score_lower(scene_dir):
    d = _data()
    scene, val = _open(scene_dir)
    maps = d.perfect_id_maps(1)
    maps[maps == 7] = 3  # an under-segmentation: both objects one track
    labels = maps[0].reshape(-1).astype(np.int64)
    labels[labels == 0] = -1
    share = vote_shares(val.coord, labels, [(scene.frame(0), maps[0])], max_dist=0.05, voxel=None)
    res = evaluate_rows([val], {"lift_only": {"scene_v": lift_only_predictions(labels, share)}})
    # one mask of 576 points: IoU 384/576 = 0.667 with object 1 -> TP at 0.25..0.65, object 2 missed
    r = res["lift_only"].result
    assert r.ap50 == pytest.approx(0.5) and r.ap25 == pytest.approx(0.5)
    assert 0 < r.ap < 0.5


def test_model_rows_real_numbers(scene_dir, tmp_path):
    from gcseg.models.mask_model import load_model

    d = _data()
    scene, val = _open(scene_dir)
    rows = {}
    for i, row in enumerate(("stage1", "stage2", "stage3")):
        net, _ = load_model(d.save_tiny_model(tmp_path / row / "model.pt", seed=i))
        pred = model_predictions(net, val)
        assert pred.masks.shape[1] == len(val.coord) and pred.masks.dtype == bool
        assert np.all(np.diff(pred.scores) <= 0)
        rows[row] = {"scene_v": pred}
    res = evaluate_rows([val], rows, min_region_size=10)
    for row, m in metrics_json(res).items():
        for key in ("AP", "AP50", "AP25"):
            assert m[key] is not None and 0.0 <= m[key] <= 1.0, (row, key, m)
        assert m["masks_per_scene"] == rows[row]["scene_v"].masks.shape[0]
    csv = pr_csv(res["stage1"]).splitlines()
    assert csv[0] == "recall,precision" and len(csv) >= 2
    recall = [float(line.split(",")[0]) for line in csv[1:]]
    assert recall == sorted(recall)


def test_rows_must_cover_every_scene(scene_dir):
    _, val = _open(scene_dir)
    with pytest.raises(InputError, match="no prediction for scene"):
        evaluate_rows([val], {"stage1": {}})


def test_markdown_table_order_and_paper_note(scene_dir, tmp_path):
    _, val = _open(scene_dir)
    gt = val.gt_ids
    perfect = RowPrediction(masks=np.stack([gt == 2001, gt == 3002]), scores=np.array([0.9, 0.8]))
    empty = RowPrediction(masks=np.zeros((0, gt.shape[0]), bool), scores=np.zeros(0))
    res = evaluate_rows([val], {"lift_only": {"scene_v": perfect}, "stage1": {"scene_v": empty},
                                "stage3": {"scene_v": perfect}})
    path = tmp_path / "t" / "ablation.md"
    write_ablation_markdown(path, res, num_scenes=1)
    text = path.read_text()
    assert text == ablation_markdown(res, num_scenes=1)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| Stage 1 | 0.0 | 0.0 | 0.0 |")
    assert table[2].startswith("| Stage 1 + 2 + 3 | 100.0 | 100.0 | 100.0 |")
    assert table[3].startswith("| Stage 2 tracked labels")
    assert "11.4" not in "".join(table) and "16.3" not in "".join(table)
    assert "Stage 1 11.4 AP" in text and "16.3 AP" in text
