"""The `sam2_track` stage command on tiny synthetic scenes written to disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from gcseg.errors import ArtifactError
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
    # pixel areas at 64x48 (3,072 px): 10 px masks and new objects
    p["sam2_track"].update({"keyframe_stride": 2, "min_new_area_frac": 0.0033, "split": "all",
                            "lift": {"min_points": 10}})
    p["sam_keyframes"].update({"backend": "gt_sim", "min_area_frac": 0.0033})
    p["sam_keyframes"]["gt_sim"].update({"boundary_noise": 0.05, "p_part": 0.3, "p_merge": 0.2})
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


def test_diagnosed_scenes_carry_diagnostics_and_the_no_policy_row(scenes, tmp_path):
    """sam2_track.diagnostics.split: those scenes get, from the same pass, the GT ceiling, the proposals with
    perfect identity, coverage and the no-policy row, lifted like the tracked labels; the others none."""
    from gcseg.tracking.artifact import read_lifted

    out, met = tmp_path / "out", tmp_path / "m.json"
    pf = params_file(tmp_path, diagnostics={"split": "all", "match_iou": 0.5, "no_policy": True})
    r = invoke("--scenes", str(scenes), "--params", str(pf), "--out", str(out), "--metrics", str(met))
    assert r.exit_code == 0, r.output
    for sid in ("synth_000", "synth_001"):
        art = read_lifted(out / f"{sid}.h5")
        n = art["coord"].shape[0]
        assert art["shares"].shape == (n,) and (art["shares"][art["labels"] < 0] == 0).all()
        assert (art["shares"][art["labels"] >= 0] >= 0.5).all()  # a label is a majority (min_share 0.5)
        diag = art["diagnostics"]
        assert set(diag["rows"]) == {"ceiling", "perfect_identity", "no_policy"}
        s = diag["settings"]
        assert s["proposer"] == "gt_sim" and s["propagator"] == "reprojection" and s["keyframe_stride"] == 2
        assert s["min_area_px"] == 10 and s["coverage_min_area_px"] == 3  # 0.0033 and 0.001 of 64x48
        assert s["keyframes_with_gt"] == 4 and s["no_policy_objects"] > 0
        cov = diag["coverage"]
        assert 0 < cov["hits_kept"] <= cov["hits_proposals"] <= cov["gt_instances"]
        v = diag["views"]  # per GT object: size on the cloud, keyframes showing it, matched ones
        assert v["points"].sum() <= n
        assert (v["points"] > 0).all() and (np.diff(v["instance"]) > 0).all()
        assert (v["hits_kept"] <= v["hits_proposals"]).all() and (v["hits_proposals"] <= v["views"]).all()
        assert 0 < v["hits_kept"].sum() and v["views"].max() <= 4  # 4 keyframes with GT
        ceiling, identity, no_policy = (diag["rows"][k][0] for k in ("ceiling", "perfect_identity", "no_policy"))
        # GT masks label about what the proposals do (gt_sim's boundary noise spills a little past the objects,
        # and a point seen once inside and once outside a mask is labelled: background never wins a tie)
        assert (ceiling >= 0).sum() >= 0.95 * (identity >= 0).sum() > 0
        assert (no_policy >= 0).sum() < (art["labels"] >= 0).sum()  # identity lost between keyframes
    # per-view arrays of different lengths (a damaged file): an error naming the group, not a silent misread
    bad = tmp_path / "bad.h5"
    shutil.copy(out / "synth_000.h5", bad)
    with h5py.File(bad, "r+") as f:
        hits = f["diagnostics/views/hits_kept"][()]
        del f["diagnostics/views/hits_kept"]
        f["diagnostics/views/hits_kept"] = hits[:-1]
    with pytest.raises(ArtifactError, match="diagnostics/views"):
        read_lifted(bad)
    # off: no diagnostics group, the tracked labels unchanged
    out2 = tmp_path / "out2"
    pf = params_file(tmp_path, diagnostics={"split": "none"})
    assert invoke("--scenes", str(scenes), "--params", str(pf), "--out", str(out2), "--metrics",
                  str(tmp_path / "m2.json")).exit_code == 0
    art2 = read_lifted(out2 / "synth_000.h5")
    assert art2["diagnostics"] is None and np.array_equal(art2["labels"], read_lifted(out / "synth_000.h5")["labels"])
    # resuming into that folder with diagnostics on: the scenes lacking them are not "finished"
    pf = params_file(tmp_path, diagnostics={"split": "all"})
    r = invoke("--scenes", str(scenes), "--params", str(pf), "--out", str(out2), "--metrics", str(tmp_path / "m2.json"))
    assert r.exit_code == 0 and "skipping" not in r.output
    assert (out2 / "synth_000.h5").read_bytes() == (out / "synth_000.h5").read_bytes()


def test_no_val_scenes_means_no_diagnostics(scenes, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["--scenes", str(scenes), "--params", str(params_file(tmp_path)), "--out", str(out),
                                 "--metrics", str(tmp_path / "m.json")])
    assert r.exit_code == 0 and "no 'val' scenes: no diagnostics" in r.stderr
