"""`gcseg evaluate` on benchmark folders: table, metrics JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gcseg.eval.benchmark_io import write_gt, write_predictions
from gcseg.eval.classes import SCANNET200_CLASSES, SCANNETPP_84
from stages.evaluate import app

runner = CliRunner()


@pytest.fixture
def folders(tmp_path):
    """Two scenes: 'a' predicted perfectly, 'b' with one of its two objects found."""
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_a = np.repeat([1001, 2002, 0], [200, 150, 50]).astype(np.int64)
    gt_b = np.repeat([1001, 1002], [300, 300]).astype(np.int64)
    write_gt(gt_dir / "a.txt", gt_a)
    write_gt(gt_dir / "b.txt", gt_b)
    write_predictions(pred_dir, "a", np.stack([gt_a == 1001, gt_a == 2002]), [0.9, 0.8])
    write_predictions(pred_dir, "b", (gt_b == 1001)[None], [0.7])
    return gt_dir, pred_dir


def test_evaluate_prints_table_and_writes_metrics(folders, tmp_path):
    gt_dir, pred_dir = folders
    out, curves = tmp_path / "metrics.json", tmp_path / "pr.csv"
    res = runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out),
                              "--pr-curves", str(curves)])
    assert res.exit_code == 0, res.output
    # Confidences 0.9, 0.8, 0.7 all TPs: recall 1/4, 2/4, 3/4 at precision 1, plus the artificial (0, 1).
    points = [f"{r:.6f},1.000000" for r in (0, 0.25, 0.5, 0.75)]
    assert curves.read_text().splitlines() == (["iou,recall,precision"] + [f"0.50,{p}" for p in points]
                                                + [f"0.25,{p}" for p in points])
    assert "AP50" in res.output and "2 scenes" in res.output
    metrics = json.loads(out.read_text())
    # 4 GT, 3 exact masks: p 1 at recall 3/4 -> steps [3/8, 3/8] -> AP 3/4 at every threshold.
    assert metrics["ap"] == pytest.approx(0.75) and metrics["ap50"] == pytest.approx(0.75)
    assert metrics["num_gt"] == 4 and metrics["num_pred_masks"] == {"a": 2, "b": 1}
    assert metrics["gt_classes"] == "synthetic" and metrics["use_scores"] is True
    first = out.read_bytes()
    runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out)])
    assert out.read_bytes() == first  # deterministic


def test_missing_prediction_scene(folders, tmp_path):
    gt_dir, pred_dir = folders
    write_gt(gt_dir / "c.txt", np.full(300, 1001, np.int64))
    res = runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir)])
    assert res.exit_code == 2 and "no prediction file for scene c" in res.output
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir), "--allow-missing", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["num_pred_masks"]["c"] == 0


def test_prediction_without_gt_and_bad_options(folders):
    gt_dir, pred_dir = folders
    write_predictions(pred_dir, "zz", np.zeros((0, 5), bool), [])
    res = runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir)])
    assert res.exit_code == 2 and "prediction file(s) without GT: zz" in res.output
    res = runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir), "--gt-classes", "nyu40"])
    assert res.exit_code == 2 and "--gt-classes 'nyu40'" in res.output
    res = runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir), "--gt-classes", "scannetpp_84"])
    assert res.exit_code == 2 and "label list" in res.output


def test_scannet200_mode_reports_subsets(tmp_path):
    ids = dict((n, i) for i, n in SCANNET200_CLASSES)
    gt = np.repeat([ids["chair"] * 1000 + 1, ids["paper"] * 1000 + 2, 1 * 1000 + 3], 200).astype(np.int64)
    write_gt(tmp_path / "gt" / "s.txt", gt)
    write_predictions(tmp_path / "pred", "s", np.stack([gt == ids["chair"] * 1000 + 1]), [0.5])
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                              "--gt-classes", "scannet200", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "head" in res.output and "tail" in res.output
    m = json.loads(out.read_text())
    assert m["num_gt"] == 2  # wall (id 1) is not an instance class
    assert m["subsets"]["head"]["ap"] == pytest.approx(1.0) and m["subsets"]["tail"]["ap"] == 0.0
    assert m["subsets"]["common"]["ap"] is None  # no common GT: NaN -> null


def test_scannetpp_mode_maps_names_with_the_label_list(tmp_path):
    # A label list holding the 84 benchmark names after three non-instance ones: table -> 3, door -> 4.
    labels = ["wall", "floor", "ceiling", *SCANNETPP_84]
    assert labels.index("table") == 3 and labels.index("door") == 4
    (tmp_path / "classes.txt").write_text("\n".join(labels) + "\n")
    # table and door are benchmark classes; ceiling (2) is not -> void.
    gt = np.repeat([3001, 4002, 2003], 200).astype(np.int64)
    write_gt(tmp_path / "gt" / "s.txt", gt)
    write_predictions(tmp_path / "pred", "s", np.stack([gt == 3001, gt == 4002, gt == 2003]), [0.5, 0.6, 0.9])
    (tmp_path / "ign").mkdir()
    (tmp_path / "ign" / "s.txt").write_text("\n".join(map(str, range(200, 330))) + "\n")  # door -> 70 left
    res = runner.invoke(app, ["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--gt-classes",
                              "scannetpp_84", "--label-list", str(tmp_path / "classes.txt"),
                              "--ignore-dir", str(tmp_path / "ign"), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["num_gt"] == 1 and m["ap"] == pytest.approx(1.0)
    # Without the ignore file the door counts and is found too.
    res = runner.invoke(app, ["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--gt-classes",
                              "scannetpp_84", "--label-list", str(tmp_path / "classes.txt"),
                              "--out", str(tmp_path / "m.json")])
    assert json.loads((tmp_path / "m.json").read_text())["num_gt"] == 2
    # A label list lacking the benchmark names is refused.
    (tmp_path / "short.txt").write_text("wall\ntable\n")
    res = runner.invoke(app, ["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--gt-classes",
                              "scannetpp_84", "--label-list", str(tmp_path / "short.txt")])
    assert res.exit_code == 2 and "not in the dataset's label list" in res.output


def test_perfect_ranking_reports_what_the_confidences_cost(folders, tmp_path):
    gt_dir, pred_dir = folders
    # scene b: a union of its two objects ranked above the exact mask of one of them
    gt_b = np.repeat([1001, 1002], [300, 300]).astype(np.int64)
    write_predictions(pred_dir, "b", np.stack([np.ones(600, bool), gt_b == 1001]), [0.95, 0.1])
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir), "--perfect-ranking", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "perfect ranking" in res.output
    metrics = json.loads(out.read_text())
    # given: the union (an FP at IoU 0.5) ranks first; perfect: three exact masks first -> 3/4 at every threshold
    assert metrics["perfect_ranking"]["ap"] == pytest.approx(0.75)
    assert metrics["ap"] < metrics["perfect_ranking"]["ap"]
    plain = tmp_path / "plain.json"
    runner.invoke(app, ["--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(plain)])
    assert "perfect_ranking" not in json.loads(plain.read_text())
