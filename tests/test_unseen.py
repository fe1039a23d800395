"""gcseg.unseen: the GT files of fresh rooms, the record's gap to val and its table."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.eval.ap import SceneEval, evaluate_scenes
from gcseg.unseen import markdown, summarize, write_gt_files


def _result(found: int, objects: int = 4, size: int = 150):
    """An EvalResult of one scene with `objects` GT objects of `size` points, `found` of them predicted exactly."""
    gt = np.repeat(np.arange(1, objects + 1) + 1000, size).astype(np.int64)
    masks = np.stack([gt == 1000 + k for k in range(1, found + 1)]) if found else np.zeros((0, gt.size), bool)
    return evaluate_scenes([SceneEval(scene_id="s", gt_ids=gt, valid=None, pred_masks=masks,
                                      pred_scores=np.linspace(1.0, 0.5, found))])


def test_summarize_pools_and_measures_the_gap_to_val():
    per_seed = {1234: _result(4), 77: _result(2)}
    pooled = _result(3)  # a stand-in pooled result: 3 of 4 found
    out = summarize(per_seed, pooled, {77: 8, 1234: 8}, val={"AP": 0.5, "AP50": 0.70, "AP25": 0.8}, tolerance=0.1)
    assert list(out["seeds"]) == ["77", "1234"]  # sorted by seed
    assert out["seeds"]["1234"]["AP50"] == pytest.approx(1.0) and out["seeds"]["77"]["AP50"] == pytest.approx(0.5)
    assert out["seeds"]["77"]["objects"] == 4 and out["pooled"]["rooms"] == 16
    assert out["ap50_gap"] == pytest.approx(0.75 - 0.70) and out["within_tolerance"] is True
    far = summarize(per_seed, _result(1), {77: 8, 1234: 8}, val={"AP": 0.5, "AP50": 0.70, "AP25": 0.8})
    assert far["ap50_gap"] == pytest.approx(0.25 - 0.70) and far["within_tolerance"] is False
    # no val figures: the fresh rooms' figures only
    alone = summarize(per_seed, pooled, {77: 8, 1234: 8}, val=None)
    assert "ap50_gap" not in alone and "within_tolerance" not in alone and alone["pooled"]["AP50"] == pytest.approx(0.75)


def test_markdown_lists_val_seeds_pooled_and_the_verdict():
    per_seed = {77: _result(2), 1234: _result(4)}
    out = summarize(per_seed, _result(1), {77: 8, 1234: 8}, val={"AP": 0.5, "AP50": 0.70, "AP25": 0.8})
    text = markdown(out, "model.pt", "stage3")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert rows[1].startswith("| the eval stage's val rooms (row `stage3`) |") and "| 70.0 |" in rows[1]
    assert rows[2].startswith("| synth seed 77, 8 rooms | 4 | ") and rows[3].startswith("| synth seed 1234, 8 rooms")
    assert rows[4].startswith("| pooled, 16 rooms | 4 | ")
    assert "Pooled AP50 -45.0 points against val: outside the tolerance of 10." in text


def test_tracked_labels_beside_the_model():
    per_seed = {77: _result(2), 1234: _result(4)}
    out = summarize(per_seed, _result(3), {77: 8, 1234: 8}, val={"AP": 0.5, "AP50": 0.70, "AP25": 0.8},
                    labels=({77: _result(1), 1234: _result(3)}, _result(2)),
                    labels_val={"AP": 0.6, "AP50": 0.9, "AP25": 0.95, "masks_per_scene": 3.0})
    lab = out["labels"]
    assert lab["seeds"]["77"]["AP50"] == pytest.approx(0.25) and lab["pooled"]["AP50"] == pytest.approx(0.5)
    assert lab["val"] == {"AP": 0.6, "AP50": 0.9, "AP25": 0.95}  # the figures only
    text = markdown(out, "model.pt", "stage3")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert rows[0].endswith("labels AP | labels AP50 | labels AP25 |")
    assert rows[1].startswith("| the eval stage's val rooms (row `stage3`; labels: `lift_only`) |")
    assert rows[1].endswith("| 60.0 | 90.0 | 95.0 |") and rows[4].startswith("| pooled, 16 rooms | 4 | ")
    assert "The tracked labels of the same rooms: -40.0 points against theirs on val." in text


def test_gt_files_are_the_eval_stages_gt(tmp_path):
    from gcseg.eval.ablation import gt_ids_from_cloud
    from gcseg.eval.benchmark_io import read_gt
    from gcseg.readers import open_scene
    from gcseg.synth import write_dataset

    scenes = tmp_path / "scenes"
    write_dataset(scenes, num_scenes=2, num_val=1, seed=5, progress=False, num_frames=4, height=32, width=48,
                  max_furniture=2, point_spacing=0.08)
    names = write_gt_files(scenes, ["synth_000", "synth_001"], tmp_path / "gt", "seed5_")
    assert names == ["seed5_synth_000", "seed5_synth_001"]
    for sid, name in zip(["synth_000", "synth_001"], names):
        cloud = open_scene("synth", scenes, sid).reference()
        gt = read_gt(tmp_path / "gt" / f"{name}.txt")
        np.testing.assert_array_equal(gt, gt_ids_from_cloud(cloud, name))
        assert len(gt) == len(cloud.coord) and (gt >= 1000).any()
