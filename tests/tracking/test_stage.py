"""The `sam2_track` stage command on tiny synthetic scenes written to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gcseg.synth import write_dataset
from stages.sam2_track import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "scenes"
    write_dataset(root, num_scenes=2, num_val=0, seed=3, progress=False, num_frames=8, height=48, width=64,
                  orbit_degrees=40.0, max_furniture=3, point_spacing=0.04)
    return root


def params_file(tmp_path: Path, **track) -> Path:
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["sam2_track"].update({"keyframe_stride": 2, "min_new_area": 10, "split": "all", "lift": {"min_points": 10}})
    p["sam_keyframes"].update({"backend": "gt_sim", "min_area": 10})
    p["sam_keyframes"]["gt_sim"].update({"boundary_noise_px": 0.3, "p_part": 0.3, "p_merge": 0.2})
    p["sam2_track"].update(track)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_stage_writes_scenes_and_metrics(scenes, tmp_path):
    out, met = tmp_path / "out", tmp_path / "m.json"
    r = invoke("--scenes", str(scenes), "--params", str(params_file(tmp_path)), "--out", str(out), "--metrics", str(met))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["synth_000.h5", "synth_001.h5"]
    m = json.loads(met.read_text())
    assert m["scenes"] == 2 and m["track_stats"]["objects_created"] > 0 and m["track_stats"]["frames"] == 16
    c = m["consistency"]
    assert c["tracked_keyframes"]["instances"] > 0
    assert c["tracked_keyframes"]["consistency"] > c["stage1_keyframes"]["consistency"]
    assert c["tracked_keyframes"]["ids_per_instance"] < c["stage1_keyframes"]["ids_per_instance"]
    assert c["gain_over_stage1"] > 0
    first = (out / "synth_000.h5").read_bytes()
    # rerun: finished scenes are skipped; forcing a rewrite gives identical bytes
    r = invoke("--scenes", str(scenes), "--params", str(params_file(tmp_path)), "--out", str(out), "--metrics", str(met))
    assert "skipping 2 finished" in r.output
    (out / "synth_000.h5").unlink()
    invoke("--scenes", str(scenes), "--params", str(params_file(tmp_path)), "--out", str(out), "--metrics", str(met))
    assert (out / "synth_000.h5").read_bytes() == first


def test_shards_split_the_scenes(scenes, tmp_path):
    out, met = tmp_path / "out", tmp_path / "m.json"
    pf = str(params_file(tmp_path))
    r = invoke("--scenes", str(scenes), "--params", pf, "--out", str(out), "--metrics", str(met), "--shard", "1/2")
    assert r.exit_code == 0 and [p.name for p in out.glob("*.h5")] == ["synth_001.h5"] and not met.exists()
    r = invoke("--scenes", str(scenes), "--params", pf, "--out", str(out), "--metrics", str(met), "--shard", "0/2")
    assert r.exit_code == 0 and met.exists()


def test_missing_sam2_checkpoint_is_one_line(scenes, tmp_path):
    pf = params_file(tmp_path, backend="sam2", sam2={"checkpoint": str(tmp_path / "nope.pt"),
                                                      "config": "configs/sam2.1/sam2.1_hiera_t.yaml",
                                                      "image_size": 128})
    r = CliRunner().invoke(app, ["--scenes", str(scenes), "--params", str(pf), "--out", str(tmp_path / "o"),
                                 "--metrics", str(tmp_path / "m.json")])
    assert r.exit_code == 2
    assert "SAM2 checkpoint not found" in r.output and "sam2_track.backend=reprojection" in r.output


def test_bad_params_are_config_errors(scenes, tmp_path):
    pf = params_file(tmp_path, backend="magic")
    r = CliRunner().invoke(app, ["--scenes", str(scenes), "--params", str(pf), "--out", str(tmp_path / "o"),
                                 "--metrics", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "sam2_track.backend" in r.output
