"""The `baselines` stage on tiny synthetic scenes, and `eval --baselines` turning its files into ablation rows."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from gcseg.baselines.artifact import ROW_TITLES, read_baselines, write_baselines
from gcseg.baselines.views import Instances
from gcseg.synth import write_dataset
from stages._common import param_keys
from stages.baselines import PARAMS_MODEL, Params, app

ROOT = Path(__file__).resolve().parents[2]


def _ablation_data():
    name = "gcseg_tests_eval_ablation_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "eval" / "ablation_data.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _params(tmp_path: Path, rows=("maskclustering",)) -> Path:
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["sam2_track"].update({"keyframe_stride": 2, "min_new_area_frac": 0.0033, "split": "val",
                            "lift": {"min_points": 10}})
    p["sam_keyframes"].update({"backend": "gt_sim", "min_area_frac": 0.0033})
    p["baselines"]["rows"] = list(rows)
    p["baselines"]["maskclustering"]["min_mask_points"] = 5
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    from stages.sam2_track import app as track_app

    base = tmp_path_factory.mktemp("baselines")
    scenes = base / "scenes"
    write_dataset(scenes, num_scenes=2, num_val=1, seed=3, progress=False, num_frames=8, height=48, width=64,
                  orbit_degrees=40.0, max_furniture=3, point_spacing=0.04)
    tracks = base / "tracks"
    r = CliRunner().invoke(track_app, ["--scenes", str(scenes), "--params", str(_params(base)), "--out", str(tracks),
                                       "--metrics", str(base / "track.json")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    from stages.superpoints import app as sp_app

    r = CliRunner().invoke(sp_app, ["--scenes", str(scenes), "--params", str(_params(base)), "--out",
                                    str(base / "superpoints")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return {"scenes": scenes, "tracks": tracks, "superpoints": base / "superpoints"}


def _run(params: Path, data: dict[str, Path], out: Path, tracks: Path | None = None, superpoints: Path | None = None):
    return CliRunner().invoke(app, ["--params", str(params), "--scenes", str(data["scenes"]), "--tracks",
                                    str(tracks or data["tracks"]), "--superpoints",
                                    str(superpoints or data["superpoints"]), "--out", str(out)])


def test_params_keys_and_repository_params():
    from stages._common import load_params
    from stages.baselines import baselines_config

    assert PARAMS_MODEL is Params
    assert param_keys(Params) == ("seed", "tau_contain", "data", "sam_keyframes", "sam2_track", "baselines")
    cfg = baselines_config(load_params(ROOT / "params.yaml", Params))
    assert cfg.rows == ("maskclustering", "sai3d_keyframes", "sai3d_tracked")
    assert cfg.sai3d.thresholds == (0.9, 0.8, 0.7, 0.6, 0.5) and cfg.maskclustering.view_consensus_threshold == 0.9


def test_stage_writes_the_val_scenes_rows_deterministically(tmp_path, data):
    out = tmp_path / "out"
    r = _run(_params(tmp_path), data, out)
    assert r.exit_code == 0, r.output
    assert [p.name for p in out.glob("*.h5")] == ["synth_001.h5"]  # the val scene only
    assert "maskclustering" in r.output and "instances in" in r.output
    rows = read_baselines(out / "synth_001.h5")
    assert list(rows) == ["maskclustering"]
    title, indptr, points, scores = rows["maskclustering"]
    assert title == ROW_TITLES["maskclustering"] and indptr.size == scores.size + 1
    assert scores.size > 0 and np.all((scores > 0) & (scores <= 1)) and np.all(np.diff(scores) <= 0)
    again = tmp_path / "again"
    assert _run(_params(tmp_path), data, again).exit_code == 0
    assert (again / "synth_001.h5").read_bytes() == (out / "synth_001.h5").read_bytes()


def test_worker_processes_write_the_same_bytes(tmp_path, data):
    """--jobs 2 (a worker process per scene, gcseg.parallel) writes what one process writes."""
    from stages.sam2_track import app as track_app

    p = yaml.safe_load(_params(tmp_path, rows=("maskclustering", "sai3d_tracked")).read_text())
    p["sam2_track"]["split"] = p["baselines"]["split"] = "all"
    params = tmp_path / "all.yaml"
    params.write_text(yaml.safe_dump(p))
    tracks = tmp_path / "tracks"
    r = CliRunner().invoke(track_app, ["--scenes", str(data["scenes"]), "--params", str(params), "--out", str(tracks),
                                       "--metrics", str(tmp_path / "track.json")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    outs = {}
    for jobs in ("1", "2"):
        outs[jobs] = tmp_path / f"out{jobs}"
        r = CliRunner().invoke(app, ["--params", str(params), "--scenes", str(data["scenes"]), "--tracks", str(tracks),
                                     "--superpoints", str(data["superpoints"]), "--out", str(outs[jobs]),
                                     "--jobs", jobs])
        assert r.exit_code == 0, r.output
        assert r.output.index("synth_000: maskclustering") < r.output.index("synth_001: maskclustering")
    names = ["synth_000.h5", "synth_001.h5"]
    assert sorted(f.name for f in outs["2"].iterdir()) == names
    assert all((outs["1"] / n).read_bytes() == (outs["2"] / n).read_bytes() for n in names)


def test_missing_tracks_are_named(tmp_path, data):
    r = _run(_params(tmp_path), data, tmp_path / "out", tracks=tmp_path / "none")
    assert r.exit_code == 2
    assert "synth_001" in r.output and "sam2_track.split" in r.output
    assert not (tmp_path / "out").exists()


def test_every_row(tmp_path, data):
    rows = ("maskclustering", "sai3d_keyframes", "sai3d_tracked")
    out = tmp_path / "out"
    r = _run(_params(tmp_path, rows=rows), data, out)
    assert r.exit_code == 0, r.output
    got = read_baselines(out / "synth_001.h5")
    assert list(got) == list(rows)
    for name, (title, indptr, points, scores) in got.items():
        assert title == ROW_TITLES[name] and scores.size > 0 and np.all((scores >= 0) & (scores <= 1))


def test_sai3d_rows_need_the_superpoints(tmp_path, data):
    r = _run(_params(tmp_path, rows=("sai3d_tracked",)), data, tmp_path / "out", superpoints=tmp_path / "nosp")
    assert r.exit_code == 2 and "superpoints" in r.output and "dvc repro superpoints" in r.output


def test_bad_rows_are_rejected(tmp_path, data):
    p = yaml.safe_load(_params(tmp_path).read_text())
    p["baselines"]["rows"] = ["maskclustering", "open3dis"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(p))
    r = _run(tmp_path / "bad.yaml", data, tmp_path / "out")
    assert r.exit_code == 2 and "baselines.rows" in r.output


# --- eval --baselines ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def eval_data(tmp_path_factory) -> dict[str, Path]:
    d = _ablation_data()
    base = tmp_path_factory.mktemp("evalbaselines")
    scenes = d.write_dataset(base / "scenes", ids=("scene_a", "scene_b"), val=("scene_b",))
    tracks = base / "tracks"
    for sid in ("scene_a", "scene_b"):
        d.write_tracks(tracks / f"{sid}.h5", sid, d.perfect_id_maps(2))
    models = base / "models"
    for i, row in enumerate(("stage1", "stage2", "stage3")):
        d.save_tiny_model(models / row / "model.pt", seed=i)
    coord, _ = d.reference_points()
    inst, _ = d.gt_images()
    inst = inst.reshape(-1)
    perfect = Instances.from_lists(len(coord), [np.flatnonzero(inst == 1), np.flatnonzero(inst == 2)], [0.9, 0.8])
    half = Instances.from_lists(len(coord), [np.flatnonzero(inst == 1)[::2]], [0.5])
    write_baselines(base / "baselines" / "scene_b.h5", "scene_b", coord,
                    {"maskclustering": perfect, "sai3d_tracked": half})
    return {"scenes": scenes, "tracks": tracks, "models": models, "baselines": base / "baselines", "base": base}


def _eval(tmp_path: Path, ed: dict[str, Path], baselines: Path):
    from stages.eval import app as eval_app

    p = {"seed": 0, "data": {"source": "synth", "root": "unused"},
         "eval": {"gt_classes": "synthetic", "min_region_size": 100, "use_scores": True, "split": "val"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    out = tmp_path / "metrics"
    return out, CliRunner().invoke(eval_app, [
        "--params", str(tmp_path / "params.yaml"), "--scenes", str(ed["scenes"]), "--tracks", str(ed["tracks"]),
        "--models", str(ed["models"]), "--out", str(out / "eval.json"), "--table", str(out / "ablation.md"),
        "--plots", str(out / "pr"), "--baselines", str(baselines)])


def test_eval_adds_the_baseline_rows_with_their_sources(tmp_path, eval_data):
    out, r = _eval(tmp_path, eval_data, eval_data["baselines"])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "eval.json").read_text())
    assert set(m) - {"diagnostics"} == {"lift_only", "stage1", "stage2", "stage3", "maskclustering", "sai3d_tracked"}
    assert m["maskclustering"]["AP"] == 1.0 and m["maskclustering"]["masks_per_scene"] == 2.0
    # half of one of the two objects: IoU 0.5 passes only the 0.25 threshold, at recall 1/2
    assert m["sai3d_tracked"]["AP50"] == 0.0 and m["sai3d_tracked"]["AP25"] == 0.5
    table = (out / "ablation.md").read_text()
    assert f"| {ROW_TITLES['maskclustering']} | 100.0 |" in table and ROW_TITLES["sai3d_tracked"] in table
    assert "PKU-EPIC/MaskClustering" in table and "yd-yin/SAI3D" in table
    assert (out / "pr" / "maskclustering.csv").is_file()


def test_eval_refuses_missing_or_foreign_baseline_files(tmp_path, eval_data):
    _, r = _eval(tmp_path, eval_data, tmp_path / "none")
    assert r.exit_code == 2 and "scene_b" in r.output and "dvc repro baselines" in r.output
    foreign = tmp_path / "foreign"
    write_baselines(foreign / "scene_b.h5", "scene_b", np.zeros((5, 3), np.float32),
                    {"maskclustering": Instances.from_lists(5, [np.arange(3)], [1.0])})
    _, r = _eval(tmp_path, eval_data, foreign)
    assert r.exit_code == 2 and "another reference cloud" in r.output
