"""`gcseg unseen`: a tiny model on the rooms of two fresh synth seeds, beside a val figure; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stages.unseen import app

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(backend="torch", voxel_size=0.08, planes=(8, 8, 8, 8, 8, 8, 8, 8), hidden_dim=16, num_queries=8,
            num_heads=2, ffn_dim=32, test_queries=16)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """params.yaml with tiny rooms (2 a seed), a randomly initialised tiny checkpoint (this checks the plumbing and
    the record, not segmentation quality) and an eval metrics file with its val row."""
    import torch

    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint

    base = tmp_path_factory.mktemp("unseen")
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["synth"].update({"num_scenes": 2, "num_val": 1, "num_frames": 4, "height": 32, "width": 48,
                       "max_furniture": 2, "point_spacing": 0.08})
    p["eval"]["min_region_size"] = 5
    p["sam2_track"].update({"keyframe_stride": 2, "min_new_area_frac": 0.0033, "lift": {"min_points": 5}})
    p["sam_keyframes"].update({"min_area_frac": 0.0033})
    params = base / "params.yaml"
    params.write_text(yaml.safe_dump(p))
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY)
    ckpt = base / "model.pt"
    save_checkpoint(ckpt, build_model(cfg), cfg, epoch=0)
    metrics = base / "eval.json"
    metrics.write_text(json.dumps({"stage3": {"AP": 0.1, "AP50": 0.2, "AP25": 0.3, "masks_per_scene": 4.0},
                                   "lift_only": {"AP": 0.4, "AP50": 0.5, "AP25": 0.6, "masks_per_scene": 2.0}}))
    return {"base": base, "params": params, "ckpt": ckpt, "metrics": metrics}


def _run(setup, *extra: str, out: Path):
    args = ["--checkpoint", str(setup["ckpt"]), "--params", str(setup["params"]), "--val-metrics",
            str(setup["metrics"]), "--out", str(out), *extra]
    return CliRunner().invoke(app, args)


def test_two_fresh_seeds_pooled_beside_val_deterministic(setup, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        r = _run(setup, "--seed", "7", "--seed", "9", out=out)
        assert r.exit_code == 0, r.output
    rec = json.loads((outs[0] / "unseen.json").read_text())
    assert list(rec["seeds"]) == ["7", "9"] and all(s["rooms"] == 2 for s in rec["seeds"].values())
    assert rec["pooled"]["rooms"] == 4
    assert rec["pooled"]["objects"] == sum(s["objects"] for s in rec["seeds"].values()) > 0
    assert rec["val"] == {"AP": 0.1, "AP50": 0.2, "AP25": 0.3}
    assert rec["ap50_gap"] == pytest.approx(rec["pooled"]["AP50"] - 0.2, abs=1e-6)
    assert rec["within_tolerance"] == (abs(rec["ap50_gap"]) <= 0.1)
    # the tracked labels of the same rooms beside the model, and their val row
    lab = rec["labels"]
    assert list(lab["seeds"]) == ["7", "9"] and lab["val"] == {"AP": 0.4, "AP50": 0.5, "AP25": 0.6}
    assert lab["pooled"]["objects"] == rec["pooled"]["objects"] and lab["pooled"]["AP50"] is not None
    text = (outs[0] / "unseen.md").read_text()
    assert "| pooled, 4 rooms |" in text and "labels AP50" in text and "points against theirs on val" in text
    # identical inputs, identical bytes (the rooms, the model's masks and the scores are deterministic)
    for name in ("unseen.json", "unseen.md"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


@pytest.mark.parametrize("extra, message", [
    (["--seed", "0"], "is the params file's seed"),
    (["--seed", "7", "--seed", "7"], "must be given and distinct"),
    (["--seed", "7", "--row", "stage9"], "no row 'stage9'"),
    (["--seed", "7", "--tolerance", "0"], "--tolerance must be in"),
])
def test_bad_arguments_fail_before_any_room(setup, tmp_path, extra, message):
    out = tmp_path / "out"
    r = _run(setup, *extra, out=out)
    assert r.exit_code == 2 and message in r.output, r.output
    assert not out.exists()


def test_without_labels_the_model_alone(setup, tmp_path):
    r = _run(setup, "--seed", "7", "--no-labels", "--no-compare", out=tmp_path / "m")
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "m" / "unseen.json").read_text())
    assert "labels" not in rec and "val" not in rec and rec["pooled"]["rooms"] == 2
    assert "labels AP" not in (tmp_path / "m" / "unseen.md").read_text()


def test_missing_or_broken_inputs_are_named(setup, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["--checkpoint", str(tmp_path / "none.pt"), "--params", str(setup["params"]),
                                 "--seed", "7", "--out", str(out)])
    assert r.exit_code == 2 and "checkpoint not found" in r.output and "none.pt" in r.output
    broken = tmp_path / "eval.json"
    broken.write_text("{not json")
    r = CliRunner().invoke(app, ["--checkpoint", str(setup["ckpt"]), "--params", str(setup["params"]), "--seed",
                                 "7", "--val-metrics", str(broken), "--out", str(out)])
    assert r.exit_code == 2 and "not valid JSON" in r.output and "eval.json" in r.output
    assert not out.exists()
