"""`gcseg segment`: the training-free path on one scan (issue 21). Defaults are the pipeline's, the labels are
those of the sam2_track stage, the outputs those of `gcseg predict`, and bad input is one error, exit 2,
nothing written. The real capture is ../shared/data/hololens_000 cut to 8 frames (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from gcseg.errors import ConfigError, InputError
from stages.segment import DEFAULTS, OPTION_KEYS, SegmentParams, app, build_policy, resolve_params

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 8


def _run(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_defaults_are_the_pipelines():
    """Defined once: segment's typed defaults are the stages' sections, and its thresholds equal params.yaml's
    (only the stages' scene selection, `split`, has no meaning for one scan)."""
    from stages._common import load_params

    def flat(tree: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in tree.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    repo = flat(load_params(ROOT / "params.yaml", SegmentParams).model_dump())
    mine = flat(DEFAULTS.model_dump())
    differ = {k: (mine[k], repo[k]) for k in mine if mine[k] != repo[k] and not k.endswith(".split")}
    assert not differ, f"typed default vs params.yaml: {differ}"


def test_every_option_names_a_real_key_and_overrides_it():
    p = resolve_params(None, {"tau_iou": 0.5, "proposer": "sam", "min_points": 20, "keyframe_stride": 2,
                              "tracker": None})
    assert (p.tau_iou, p.sam_keyframes.backend, p.sam2_track.lift.min_points, p.sam2_track.keyframe_stride) == (
        0.5, "sam", 20, 2)
    assert p.sam2_track.backend == DEFAULTS.sam2_track.backend
    dumped = DEFAULTS.model_dump()
    for key in OPTION_KEYS.values():
        node = dumped
        for part in key.split("."):
            node = node[part]  # KeyError if an option pointed at nothing


def test_out_of_range_options_name_the_option():
    with pytest.raises(ConfigError, match="--tau-iou"):
        resolve_params(None, {"tau_iou": 1.5})
    with pytest.raises(ConfigError, match="--proposer"):
        resolve_params(None, {"proposer": "magic"})
    with pytest.raises(ConfigError, match="--keyframe-stride"):
        resolve_params(None, {"keyframe_stride": 0})


def test_params_file_is_read(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tau_iou"] = 0.55
    params["sam2_track"]["keyframe_stride"] = 3
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    p = resolve_params(path, {"tau_dorm": 7})
    assert (p.tau_iou, p.sam2_track.keyframe_stride, p.tau_dorm) == (0.55, 3, 7)


def test_policy_gets_every_policy_option_of_the_section():
    """As the sam2_track stage builds it (pixel areas from the section's fractions for the image size)."""
    import dataclasses

    p = resolve_params(None, {"tau_iou": 0.6, "tau_dorm": 4})
    hw = (360, 540)
    pol = build_policy(p, hw)
    cfg = p.sam2_track
    assert (pol.tau_iou, pol.tau_dorm) == (0.6, 4)
    for f in dataclasses.fields(pol):
        if f.init and f.name in type(cfg).model_fields:
            assert getattr(pol, f.name) == getattr(cfg, f.name), f.name
        elif f.init and f"{f.name}_frac" in type(cfg).model_fields:
            assert getattr(pol, f.name) == getattr(cfg, f"{f.name}_px")(hw), f.name


# ---------------------------------------------------------------- on the real capture

@pytest.fixture(scope="module")
def segmented(hololens_scans, tmp_path_factory) -> dict[str, Path]:
    """hololens_000 cut to 8 frames, segmented once with the defaults."""
    scan = hololens_scans(FRAMES) / "hololens_000"
    out = tmp_path_factory.mktemp("segment") / "out"
    r = _run("--input", scan, "--out", out)
    assert r.exit_code == 0, r.output
    return {"scan": scan, "out": out}


def test_writes_the_predict_outputs_and_a_preview(segmented):
    from PIL import Image

    from gcseg.eval.benchmark_io import read_predictions
    from gcseg.io.ply import read_ply

    out = segmented["out"]
    s = json.loads((out / "hololens_000_summary.json").read_text())
    assert s["scene_id"] == "hololens_000" and s["source"] == "posed_rgbd"
    assert s["method"].startswith("training-free") and s["settings"]["proposer"] == DEFAULTS.sam_keyframes.backend
    assert s["settings"]["min_area_px"] == DEFAULTS.sam_keyframes.min_area_px((360, 540))
    assert s["track_stats"]["frames"] == FRAMES and s["track_stats"]["keyframes"] == 2
    assert s["num_masks"] >= 1 and len(s["masks"]) == s["num_masks"]
    scores = [m["score"] for m in s["masks"]]
    assert scores == sorted(scores, reverse=True) and all(0 < x <= 1 for x in scores)  # mean vote shares
    ply = read_ply(out / "hololens_000_instances.ply")
    assert len(ply["coord"]) == s["num_points"] and ply["instance"].max() == s["num_masks"]
    assert int((ply["instance"] > 0).sum()) == s["labelled_points"]
    assert all(m["num_points"] >= DEFAULTS.sam2_track.lift.min_points for m in s["masks"])
    masks, conf = read_predictions(out, "hololens_000", s["num_points"])
    assert masks.shape == (s["num_masks"], s["num_points"])
    assert np.allclose(conf, scores, atol=1e-6)
    with Image.open(out / "hololens_000_preview.png") as im:
        assert im.width > 500 and im.height > 200
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # the preview was staged with the set


def test_labels_are_the_sam2_track_stages(segmented, tmp_path):
    """Same settings and scene id: the instances partition the points exactly as the sam2_track artifact."""
    from gcseg.eval.gt_free import agreement
    from gcseg.io.ply import read_ply
    from gcseg.tracking.artifact import read_lifted
    from stages.sam2_track import app as track_app

    params = {**DEFAULTS.model_dump(), "data": {"source": "posed_rgbd", "root": "unused"}}
    params["sam2_track"]["split"] = "all"
    pf = tmp_path / "params.yaml"
    pf.write_text(yaml.safe_dump(params))
    r = CliRunner().invoke(track_app, ["--params", str(pf), "--scenes", str(segmented["scan"].parent),
                                       "--out", str(tmp_path / "tracks"), "--metrics", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    stage = read_lifted(tmp_path / "tracks" / "hololens_000.h5")["labels"].astype(np.int64)
    mine = read_ply(segmented["out"] / "hololens_000_instances.ply")["instance"].astype(np.int64) - 1
    assert stage.shape == mine.shape and ((stage >= 0) == (mine >= 0)).all()
    assert agreement(stage, mine) == pytest.approx(1.0)


def test_same_input_same_bytes(segmented, tmp_path):
    out = tmp_path / "again"
    assert _run("--input", segmented["scan"], "--out", out).exit_code == 0
    for name in ("hololens_000_instances.ply", "hololens_000_summary.json", "hololens_000.txt",
                 "hololens_000_preview.png"):
        assert (out / name).read_bytes() == (segmented["out"] / name).read_bytes(), name


def test_checkpoint_gives_the_models_prediction(segmented, tmp_path):
    """--checkpoint: the trained model's masks on the same points (here a random tiny model: plumbing only)."""
    import torch

    from gcseg.io.ply import read_ply
    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint
    from gcseg.predict import predict_masks

    torch.manual_seed(0)
    cfg = ModelConfig(backend="torch", voxel_size=0.1, planes=(8,) * 8, hidden_dim=16, num_queries=8, num_heads=2,
                      ffn_dim=32)
    model = build_model(cfg)
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, model, cfg, epoch=0)
    out = tmp_path / "model_out"
    r = _run("--input", segmented["scan"], "--out", out, "--checkpoint", ckpt)
    assert r.exit_code == 0, r.output
    s = json.loads((out / "hololens_000_summary.json").read_text())
    free = json.loads((segmented["out"] / "hololens_000_summary.json").read_text())
    assert s["method"].startswith("trained model") and s["checkpoint"] == "model.pt"
    assert s["training_free"] == {"num_masks": free["num_masks"], "labelled_points": free["labelled_points"]}
    assert s["agreement_with_training_free"] is None or 0.0 <= s["agreement_with_training_free"] <= 1.0
    from gcseg.predict import load_checkpoint
    from gcseg.scene import PointCloud

    ply = read_ply(out / "hololens_000_instances.ply")
    fused = read_ply(segmented["out"] / "hololens_000_instances.ply")["coord"]
    assert np.array_equal(ply["coord"], fused)  # the same points
    net = load_checkpoint(ckpt)[0]
    from gcseg.segment import open_scan

    cloud = open_scan(segmented["scan"]).reference()
    from gcseg.models.config import FragmentConfig

    masks, _ = predict_masks(net, PointCloud(coord=cloud.coord, color=cloud.color), fragments=FragmentConfig())
    assert s["num_masks"] == masks.shape[0] and s["fragments"] == FragmentConfig().model_dump()  # as gcseg predict


# ---------------------------------------------------------------- bad input: one error, exit 2, nothing written

def _bad(make_scans, tmp_path: Path, scan_mutation, *extra: str, expect: str) -> None:
    scan = make_scans(6) / "hololens_000"
    if scan_mutation is not None:
        scan_mutation(scan)
    out = tmp_path / "out"
    r = _run("--input", scan, "--out", out, *extra)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.output.startswith("error: ")
    assert expect in r.output and " Fix: " in r.output
    assert not out.exists()


def test_missing_depth_frame(hololens_scans, tmp_path):
    _bad(hololens_scans, tmp_path, lambda s: (s / "depth" / "3.png").unlink(), expect="6 colour frames but 5 depth frames")


def test_broken_pose(hololens_scans, tmp_path):
    def nan_pose(s: Path) -> None:
        (s / "pose" / "4.txt").write_text("nan 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    _bad(hololens_scans, tmp_path, nan_pose, expect="pose/4.txt")


def test_missing_pose_file(hololens_scans, tmp_path):
    _bad(hololens_scans, tmp_path, lambda s: (s / "pose" / "2.txt").unlink(), expect="has no pose file")


def test_missing_checkpoint_fails_before_tracking(hololens_scans, tmp_path):
    _bad(hololens_scans, tmp_path, None, "--checkpoint", str(tmp_path / "none.pt"), expect="checkpoint not found")


def test_bad_option(hololens_scans, tmp_path):
    _bad(hololens_scans, tmp_path, None, "--tau-iou", "1.5", expect="--tau-iou")


def test_inputs_without_frames(tmp_path):
    from gcseg.segment import open_scan

    with pytest.raises(InputError, match="input not found"):
        open_scan(tmp_path / "nothing")
    ply = tmp_path / "cloud.ply"
    from gcseg.io.ply import write_ply

    write_ply(ply, np.zeros((3, 3), np.float32))
    with pytest.raises(InputError, match="no frames to track.*gcseg predict"):
        open_scan(ply)
    r = _run("--input", ply, "--out", tmp_path / "out")
    assert r.exit_code == 2 and "no frames to track" in r.output and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- hints in segment's own terms

def test_help_shows_ranges_and_the_error_states_them():
    from stages.segment import _help, allowed_range

    assert _help("IoU.", "tau_iou") == "IoU. Default 0.7, in [0, 1) (params key tau_iou)."
    assert allowed_range("tau_contain") == "in [0, 1]" and allowed_range("sam2_track.keyframe_stride") == ">= 1"
    assert allowed_range("seed") is None and allowed_range("sam2_track.no_such_key") is None
    with pytest.raises(ConfigError) as e:
        resolve_params(None, {"tau_iou": 1.5})
    assert e.value.fix == "give --tau-iou a value in [0, 1)"
    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert "Default 0.7, in [0, 1) (params key tau_iou)" in r.output
    assert "--params does not set it" in " ".join(r.output.replace("│", " ").split())


def test_out_is_a_file(tmp_path):
    out = tmp_path / "segments"
    out.write_text("not a folder")
    r = _run("--input", tmp_path / "no_scan", "--out", out)
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output
    assert "--out is a file, not a folder" in r.output and out.read_text() == "not a folder"


def test_inputs_say_what_segment_reads(tmp_path):
    from gcseg.segment import NEEDS_FRAMES, open_scan

    for path in (tmp_path / "nothing", tmp_path / "mesh.obj"):
        if path.suffix:
            path.write_text("v 0 0 0\n")
        with pytest.raises(InputError) as e:
            open_scan(path)
        assert NEEDS_FRAMES in e.value.fix and "point-cloud" not in e.value.fix


@pytest.mark.parametrize(("extra", "expect", "fix"), [
    (("--proposer", "gt_sim"), "no GT instance map", "--proposer rgbd"),
    (("--proposer", "sam", "--sam-checkpoint", "nowhere/sam.pth"), "SAM checkpoint not found",
     "--sam-checkpoint PATH"),
    (("--tracker", "sam2", "--sam2-checkpoint", "nowhere/sam2.pt"), "SAM2 checkpoint not found",
     "--tracker reprojection"),
])
def test_backend_errors_give_segments_options(hololens_scans, tmp_path, extra, expect, fix):
    """The library's fixes name params keys and `dvc` commands; segment's name its own options."""
    scan = hololens_scans(6) / "hololens_000"
    r = _run("--input", scan, "--out", tmp_path / "out", *extra)
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output
    assert expect in r.output and " Fix: " in r.output
    hint = r.output.split(" Fix: ")[1]  # the message is the library's, kept
    assert fix in hint and "dvc" not in r.output and "sam_keyframes." not in hint and "sam2_track." not in hint
    assert not (tmp_path / "out").exists()


def test_nonfinite_reference_ply_is_named(hololens_scans, tmp_path):
    from gcseg.io.ply import write_ply

    def nan_reference(s: Path) -> None:
        coord = np.zeros((4, 3), np.float32)
        coord[2, 0] = np.nan
        write_ply(s / "reference.ply", coord)

    _bad(hololens_scans, tmp_path, nan_reference, expect="reference.ply: 1 of 4 vertices have non-finite")


def test_scannet_layout_with_a_lost_pose_warns_in_one_line(capture_layouts, tmp_path):
    _, scene = capture_layouts("scannet", 6)
    (scene / "pose" / "2.txt").write_text("-inf -inf -inf -inf\n" * 4)
    r = _run("--input", scene, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    warning = [line for line in r.output.splitlines() if "non-finite poses" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: ") and "skipped 1 of 6 frames" in warning[0]
    assert "UserWarning" not in r.output and "warnings.warn" not in r.output
