"""The full_scene_pseudolabel stage end to end on tiny scenes with a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from gcseg.io.samples import read_point_samples
from stages._common import param_keys
from stages.full_scene_pseudolabel import PARAMS_MODEL, Params, app


def _params(tmp_path: Path, model: dict, **overrides) -> Path:
    p = {"seed": 0, "tau_conf": 0.0, "data": {"source": "synth", "root": "unused"}, "model": model,
         "full_scene_pseudolabel": {"top_k": 150, "dbscan": {"enabled": True, "eps": 0.1, "min_samples": 5},
                                    "min_points": 100, "split": "train"},
         "unrelated_stage": {"x": 1}}
    p.update(overrides)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def _run(params, scenes, ckpt, out, metrics, *extra):
    return CliRunner().invoke(app, ["--params", str(params), "--scenes", str(scenes), "--model", str(ckpt),
                                    "--out", str(out), "--metrics", str(metrics), *extra])


def test_params_keys():
    assert PARAMS_MODEL is Params
    assert param_keys(Params) == ("seed", "tau_conf", "data", "model", "full_scene_pseudolabel")


def test_repository_params_yaml_validates():
    from stages._common import load_params

    root = Path(__file__).resolve().parents[2]
    p = load_params(root / "params.yaml", Params)
    assert p.full_scene_pseudolabel.top_k == 150 and 0 <= p.tau_conf <= 1


def test_sharded_run_then_rerun_skips(tmp_path, tiny_scenes, tiny_checkpoint, tiny_model_cfg):
    params = _params(tmp_path, tiny_model_cfg)
    out, metrics = tmp_path / "pl", tmp_path / "metrics" / "fsp.json"
    r0 = _run(params, tiny_scenes, tiny_checkpoint, out, metrics, "--shard", "0/2")
    assert r0.exit_code == 0, r0.output
    assert sorted(p.name for p in out.glob("*.h5")) == ["scene_a.h5"]  # train split only, this worker's share
    assert not metrics.exists()  # scene_b is not finished yet
    r1 = _run(params, tiny_scenes, tiny_checkpoint, out, metrics, "--shard", "1/2")
    assert r1.exit_code == 0, r1.output
    assert sorted(p.name for p in out.glob("*.h5")) == ["scene_a.h5", "scene_b.h5"]
    m = json.loads(metrics.read_text())
    assert m["scenes"] == 2 and set(m["per_scene"]) == {"scene_a", "scene_b"}
    assert m["masks_kept"] == sum(s["num_kept"] for s in m["per_scene"].values())
    assert m["scenes_without_instances"] == sorted(k for k, s in m["per_scene"].items() if s["num_kept"] == 0)
    for sid in ("scene_a", "scene_b"):
        [(name, sample)] = list(read_point_samples(out / f"{sid}.h5"))
        assert name == "scene" and sample["coord"].shape == (500, 3)
        assert sample["instance"].min() >= -1 and sample["instance"].max() < max(m["per_scene"][sid]["num_kept"], 1)

    before = {p.name: p.read_bytes() for p in out.glob("*.h5")}
    metrics_before = metrics.read_bytes()
    r2 = _run(params, tiny_scenes, tiny_checkpoint, out, metrics)
    assert r2.exit_code == 0 and "skipping 2 finished" in r2.output
    assert {p.name: p.read_bytes() for p in out.glob("*.h5")} == before
    assert metrics.read_bytes() == metrics_before

    # a fresh unsharded run gives the same bytes (per-scene seeds: sharding does not change results)
    out2, metrics2 = tmp_path / "pl2", tmp_path / "m2.json"
    assert _run(params, tiny_scenes, tiny_checkpoint, out2, metrics2).exit_code == 0
    assert {p.name: p.read_bytes() for p in out2.glob("*.h5")} == before
    assert metrics2.read_bytes() == metrics_before


def test_bad_params_and_wrong_architecture(tmp_path, tiny_scenes, tiny_checkpoint, tiny_model_cfg):
    out, metrics = tmp_path / "pl", tmp_path / "m.json"
    r = _run(_params(tmp_path, tiny_model_cfg, tau_conf=1.5), tiny_scenes, tiny_checkpoint, out, metrics)
    assert r.exit_code == 2 and "tau_conf" in r.output
    other = {**tiny_model_cfg, "hidden_dim": 32}
    r = _run(_params(tmp_path, other), tiny_scenes, tiny_checkpoint, out, metrics)
    assert r.exit_code == 2 and "another architecture" in r.output and "hidden_dim" in r.output
    assert not list(out.glob("*.h5"))


def test_tau_conf_one_keeps_nothing_and_says_so(tmp_path, tiny_scenes, tiny_checkpoint, tiny_model_cfg):
    out, metrics = tmp_path / "pl", tmp_path / "m.json"
    r = _run(_params(tmp_path, tiny_model_cfg, tau_conf=1.0), tiny_scenes, tiny_checkpoint, out, metrics)
    assert r.exit_code == 0, r.output
    m = json.loads(metrics.read_text())
    assert m["masks_kept"] == 0 and m["scenes_without_instances"] == ["scene_a", "scene_b"]
    assert "kept no instance" in r.output
    for _, sample in read_point_samples(out / "scene_a.h5"):
        assert (sample["instance"] == -1).all()
