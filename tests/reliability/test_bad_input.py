"""The bad-input corpus (gcseg issue 10, part 1): every stage, the readers, `predict` and `evaluate` given a
missing, truncated or corrupt file, inconsistent frames, a broken pose, empty data or a bad parameter.

Each case runs the real command (`python -m stages.<name>`) in a subprocess on a copy of the tiny project and
asserts what a user sees: exit code 2, ONE stderr line `error: <file or key>: <what>. Fix: <what to do>`, no
traceback, and the project folder exactly as it was (no partial output, no `.tmp` leftovers)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from _reliability import (INPUTS, assert_user_error, copy_inputs, run_stage, snapshot, stage_args, tiny_params,
                          write_params)

S0 = "data/scenes/synth_000"  # a train scene (every stage with split all reads it first)
S1 = "data/scenes/synth_001"  # the val scene (eval)


@dataclass
class Case:
    stage: str
    expect: str  # the file or key the message must name
    params: Callable[[dict[str, Any]], None] | None = None  # edits the tiny params
    mutate: Callable[[Path], None] | None = None  # corrupts the copied inputs under the project folder
    args: Callable[[Path], list[str | Path]] | None = None  # replaces the default dvc.yaml-like arguments
    inputs: list[str] | None = None  # replaces INPUTS[stage]
    marks: list[Any] = field(default_factory=list)


# --- helpers that corrupt files ---------------------------------------------------------------------------

def setp(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a dotted params key (creating nothing else)."""
    def edit(p: dict[str, Any]) -> None:
        *parents, last = key.split(".")
        d = p
        for k in parents:
            d = d[k]
        d[last] = value
    return edit


def delp(key: str) -> Callable[[dict[str, Any]], None]:
    def edit(p: dict[str, Any]) -> None:
        del p[key]
    return edit


def truncate(rel: str, keep: float = 0.5) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        f = d / rel
        data = f.read_bytes()
        f.write_bytes(data[: max(1, int(len(data) * keep))])
    return go


def garbage(rel: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        (d / rel).write_bytes(b"this is not the file you are looking for\n" * 10)
    return go


def remove(rel: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        p = d / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return go


def write(rel: str, text: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        (d / rel).write_text(text)
    return go


def pose_edit(rel: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        m = np.loadtxt(d / rel)
        np.savetxt(d / rel, fn(m))
    return go


def _nonfinite(m: np.ndarray) -> np.ndarray:
    m[0, 3] = np.inf
    return m


def _singular(m: np.ndarray) -> np.ndarray:
    m[:3, :3] = 0.0
    return m


def _scaled(m: np.ndarray) -> np.ndarray:
    m[:3, :3] *= 2.0
    return m


def resize_png(rel: str, size: tuple[int, int]) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        im = Image.open(d / rel)
        im.resize(size, Image.NEAREST).save(d / rel)
    return go


def depth_as_rgb(rel: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        Image.new("RGB", Image.open(d / rel).size, (10, 20, 30)).save(d / rel)
    return go


def zero_depth(scene: str) -> Callable[[Path], None]:
    """Every depth frame 0 (invalid) and no reference.ply: nothing to fuse a cloud from."""
    def go(d: Path) -> None:
        for f in (d / scene / "depth").glob("*.png"):
            Image.fromarray(np.zeros_like(np.asarray(Image.open(f)))).save(f)
        (d / scene / "reference.ply").unlink()
    return go


def extra_colour(scene: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        shutil.copy(d / scene / "color/0.jpg", d / scene / "color/99.jpg")
    return go


def empty_colour(scene: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        for f in (d / scene / "color").iterdir():
            f.unlink()
    return go


def empty_masks(folder: str) -> Callable[[Path], None]:
    """Rewrite every point-sample file with every point unlabelled (-1): masks all empty."""
    def go(d: Path) -> None:
        import h5py

        for f in sorted((d / folder).glob("*.h5")):
            with h5py.File(f, "r+") as h:
                for name in h["samples"]:
                    ds = h["samples"][name]["instance"]
                    ds[...] = -1
    return go


def out_under_file(rel: str) -> Callable[[Path], None]:
    """Make `rel` a regular file, so that an output below it cannot be created (not writable)."""
    def go(d: Path) -> None:
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text("a file where the output folder should be\n")
    return go


def chain(*fns: Callable[[Path], None]) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        for f in fns:
            f(d)
    return go


# --- the corpus ---------------------------------------------------------------------------------------------

CASES: dict[str, Case] = {
    # params: wrong type, out of range, unknown, missing; validated before any work
    "params/synth_num_frames_type": Case("synth", "synth.num_frames", params=setp("synth.num_frames", "many")),
    "params/synth_num_val_range": Case("synth", "synth.num_val", params=setp("synth.num_val", 5)),
    "params/superpoints_min_size_0": Case("superpoints", "superpoints.min_size",
                                          params=setp("superpoints.min_size", 0)),
    "params/superpoints_voxel_type": Case("keyframe_superpoints", "superpoints.voxel",
                                          params=setp("superpoints.voxel", "fine")),
    "params/tau_contain_above_1": Case("sam_keyframes", "tau_contain", params=setp("tau_contain", 1.5)),
    "params/negative_keyframe_stride": Case("sam_keyframes", "sam_keyframes.keyframe_stride",
                                            params=setp("sam_keyframes.keyframe_stride", -2)),
    "params/tau_iou_below_0": Case("sam2_track", "tau_iou", params=setp("tau_iou", -0.1)),
    "params/tau_dorm_type": Case("sam2_track", "tau_dorm", params=setp("tau_dorm", "three")),
    "params/negative_save_every": Case("sam2_track", "sam2_track.save_every", params=setp("sam2_track.save_every", -1)),
    "params/unknown_data_source": Case("sam2_track", "data.source", params=setp("data.source", "kinect")),
    "params/diagnostics_split": Case("sam2_track", "sam2_track.diagnostics.split",
                                     params=setp("sam2_track.diagnostics.split", "test")),
    "params/area_frac_above_1": Case("sam_keyframes", "sam_keyframes.min_area_frac",
                                     params=setp("sam_keyframes.min_area_frac", 20)),
    "params/pixel_area_key_of_old": Case("sam2_track", "min_new_area", params=setp("sam2_track.min_new_area", 100)),
    "params/tau_conf_above_1": Case("full_scene_pseudolabel", "tau_conf", params=setp("tau_conf", 1.5)),
    "params/negative_voxel_size": Case("full_scene_pseudolabel", "model.voxel_size",
                                       params=setp("model.voxel_size", -0.05)),
    "params/zero_epochs": Case("stage1_train", "stage1_train.epochs", params=setp("stage1_train.epochs", 0)),
    "params/missing_seed": Case("stage1_train", "seed", params=delp("seed")),
    "params/lr_type": Case("stage2_train", "stage2_train.lr", params=setp("stage2_train.lr", "fast")),
    "params/unknown_key": Case("stage3_train", "epochz", params=setp("stage3_train.epochz", 3)),
    "params/eval_split": Case("eval", "eval.split", params=setp("eval.split", "test")),
    "params/file_missing": Case("eval", "nope.yaml", args=lambda d: ["--params", d / "nope.yaml",
                                                                     *stage_args("eval", d)]),
    "params/not_yaml": Case("sam_keyframes", "params.yaml", mutate=write("params.yaml", "seed: [0\n  tau: {\n")),
    # readers: missing, truncated, corrupt or inconsistent frames, broken poses and intrinsics
    "reader/missing_depth_frame": Case("sam_keyframes", "synth_000", mutate=remove(f"{S0}/depth/3.png")),
    "reader/extra_colour_frame": Case("sam2_track", "synth_000", mutate=extra_colour(S0)),
    "reader/no_colour_frames": Case("sam2_track", "synth_000/color", mutate=empty_colour(S0)),
    "reader/truncated_colour": Case("sam_keyframes", "synth_000/color/0.jpg", mutate=truncate(f"{S0}/color/0.jpg")),
    "reader/corrupt_depth": Case("sam2_track", "synth_000/depth/0.png", mutate=garbage(f"{S0}/depth/0.png")),
    "reader/depth_size_differs": Case("sam2_track", "synth_000/depth/2.png",
                                      mutate=resize_png(f"{S0}/depth/2.png", (32, 24))),
    "reader/depth_rgb": Case("sam_keyframes", "synth_000/depth/0.png", mutate=depth_as_rgb(f"{S0}/depth/0.png")),
    "reader/pose_nonfinite": Case("sam_keyframes", "synth_000/pose/0.txt",
                                  mutate=pose_edit(f"{S0}/pose/0.txt", _nonfinite)),
    "reader/pose_singular": Case("sam2_track", "synth_000/pose/0.txt", mutate=pose_edit(f"{S0}/pose/0.txt", _singular)),
    "reader/pose_not_rigid": Case("sam_keyframes", "synth_000/pose/2.txt", mutate=pose_edit(f"{S0}/pose/2.txt", _scaled)),
    "reader/pose_missing": Case("sam2_track", "synth_000/pose/1.txt", mutate=remove(f"{S0}/pose/1.txt")),
    "reader/pose_not_a_matrix": Case("sam_keyframes", "synth_000/pose/0.txt", mutate=write(f"{S0}/pose/0.txt", "abc\n")),
    "reader/intrinsics_missing": Case("sam2_track", "synth_000/intrinsic", mutate=remove(f"{S0}/intrinsic")),
    "reader/intrinsics_negative_focal": Case("sam_keyframes", "intrinsic_depth.txt", mutate=write(
        f"{S0}/intrinsic/intrinsic_depth.txt", "-50 0 32 0\n0 50 24 0\n0 0 1 0\n0 0 0 1\n")),
    "reader/splits_json_corrupt": Case("eval", "splits.json", mutate=write("data/scenes/splits.json", "{train: ")),
    "reader/data_root_missing": Case("sam_keyframes", "data/scenes", mutate=remove("data/scenes")),
    "reader/data_root_empty": Case("sam2_track", "data/scenes", mutate=chain(remove("data/scenes"),
                                                                              lambda d: (d / "data/scenes").mkdir())),
    "reader/reference_ply_truncated": Case("full_scene_pseudolabel", "synth_000/reference.ply",
                                           mutate=truncate(f"{S0}/reference.ply", 0.3)),
    "reader/reference_ply_garbage": Case("eval", "synth_001/reference.ply", mutate=garbage(f"{S1}/reference.ply")),
    "reader/depth_all_zero": Case("full_scene_pseudolabel", "synth_000", mutate=zero_depth(S0)),
    # artifacts: HDF5 and checkpoints missing, truncated, corrupt, of another model; empty supervision
    "artifact/labels_h5_truncated": Case("stage1_train", "sam_keyframes/synth_000.h5",
                                         mutate=truncate("data/sam_keyframes/synth_000.h5")),
    "artifact/labels_h5_garbage": Case("stage2_train", "sam2_track/synth_000.h5",
                                       mutate=garbage("data/sam2_track/synth_000.h5")),
    "artifact/labels_folder_empty": Case("stage3_train", "data/pseudolabel", inputs=["data/scenes", "data/models/stage2/model.pt"],
                                         mutate=lambda d: (d / "data/pseudolabel").mkdir(parents=True)),
    "artifact/masks_all_empty": Case("stage1_train", "data/sam_keyframes", mutate=empty_masks("data/sam_keyframes")),
    "artifact/keyframe_labels_garbage": Case("keyframe_superpoints", "sam_keyframes/synth_000.h5",
                                             mutate=garbage("data/sam_keyframes/synth_000.h5")),
    "artifact/superpoints_of_another_cloud": Case("stage2_train", "superpoints/synth_000.h5", mutate=lambda d: shutil.copy(
        d / "data/superpoints/synth_001.h5", d / "data/superpoints/synth_000.h5")),
    "artifact/init_missing": Case("stage2_train", "stage1/model.pt", inputs=["data/scenes", "data/sam2_track"]),
    "artifact/init_truncated": Case("stage2_train", "stage1/model.pt", mutate=truncate("data/models/stage1/model.pt")),
    "artifact/init_garbage": Case("stage3_train", "stage2/model.pt", mutate=garbage("data/models/stage2/model.pt")),
    "artifact/init_other_architecture": Case("stage3_train", "hidden_dim", params=setp("model.hidden_dim", 32)),
    "artifact/model_truncated": Case("full_scene_pseudolabel", "stage2/model.pt",
                                     mutate=truncate("data/models/stage2/model.pt")),
    "artifact/eval_model_missing": Case("eval", "stage3/model.pt", mutate=remove("data/models/stage3/model.pt")),
    "artifact/eval_tracks_truncated": Case("eval", "sam2_track/synth_001.h5",
                                           mutate=truncate("data/sam2_track/synth_001.h5")),
    # an output folder that cannot be written
    "output/synth_not_writable": Case("synth", "blocked", mutate=out_under_file("data/blocked"),
                                      args=lambda d: ["--out", d / "data/blocked/scenes"]),
    "output/sam2_track_not_writable": Case("sam2_track", "blocked", mutate=out_under_file("data/blocked"),
                                           args=lambda d: ["--scenes", d / "data/scenes", "--out",
                                                           d / "data/blocked/tracks", "--metrics", d / "m.json"]),
    "output/stage1_not_writable": Case("stage1_train", "blocked", mutate=out_under_file("data/blocked"),
                                       args=lambda d: ["--labels", d / "data/sam_keyframes", "--out",
                                                       d / "data/blocked/stage1", "--metrics", d / "metrics/s1"]),
    # predict / evaluate (no params.yaml)
    "predict/input_missing": Case("predict", "scan.ply", inputs=["data/models/stage3/model.pt"],
                                  args=lambda d: ["--input", d / "scan.ply", "--checkpoint",
                                                  d / "data/models/stage3/model.pt", "--out", d / "pred"]),
    "predict/input_truncated": Case("predict", "reference.ply", inputs=[f"{S1}/reference.ply",
                                                                        "data/models/stage3/model.pt"],
                                    mutate=truncate(f"{S1}/reference.ply", 0.3),
                                    args=lambda d: ["--input", d / S1 / "reference.ply", "--checkpoint",
                                                    d / "data/models/stage3/model.pt", "--out", d / "pred"]),
    "predict/checkpoint_garbage": Case("predict", "model.pt", inputs=[f"{S1}/reference.ply",
                                                                      "data/models/stage3/model.pt"],
                                       mutate=garbage("data/models/stage3/model.pt"),
                                       args=lambda d: ["--input", d / S1 / "reference.ply", "--checkpoint",
                                                       d / "data/models/stage3/model.pt", "--out", d / "pred"]),
    # segment (no params.yaml): the scan's problems stop it before anything is written, even mid-scan
    "segment/input_missing": Case("segment", "scan", inputs=[],
                                  args=lambda d: ["--input", d / "scan", "--out", d / "seg"]),
    "segment/extra_colour_frame": Case("segment", "synth_001", inputs=[S1], mutate=extra_colour(S1),
                                       args=lambda d: ["--input", d / S1, "--out", d / "seg"]),
    "segment/pose_nonfinite_mid_scan": Case("segment", "synth_001/pose/5.txt", inputs=[S1],
                                            mutate=pose_edit(f"{S1}/pose/5.txt", _nonfinite),
                                            args=lambda d: ["--input", d / S1, "--out", d / "seg"]),
    "segment/checkpoint_garbage": Case("segment", "model.pt", inputs=[S1, "data/models/stage3/model.pt"],
                                       mutate=garbage("data/models/stage3/model.pt"),
                                       args=lambda d: ["--input", d / S1, "--out", d / "seg", "--checkpoint",
                                                       d / "data/models/stage3/model.pt"]),
    "evaluate/gt_missing": Case("evaluate", "gt", inputs=[], mutate=lambda d: (d / "pred").mkdir(),
                                args=lambda d: ["--gt", d / "gt", "--pred", d / "pred", "--out", d / "m.json"]),
    "evaluate/pred_garbage": Case("evaluate", "scene0.txt", inputs=[], mutate=lambda d: (
        (d / "gt").mkdir(), (d / "pred").mkdir(), (d / "gt/scene0.txt").write_text("1001\n1001\n0\n" * 50),
        (d / "pred/scene0.txt").write_text("masks/x.txt notanumber 0.5\n")),
        args=lambda d: ["--gt", d / "gt", "--pred", d / "pred", "--out", d / "m.json"]),
}


def test_corpus_size() -> None:
    assert len(CASES) >= 30
    stages = {c.stage for c in CASES.values()}
    assert stages >= set(INPUTS) | {"predict", "evaluate"}


@pytest.mark.slow
@pytest.mark.parametrize("case_id", sorted(CASES))
def test_bad_input(case_id: str, project: Path, tmp_path: Path) -> None:
    case = CASES[case_id]
    d = tmp_path / "p"
    d.mkdir()
    copy_inputs(project, d, INPUTS.get(case.stage, []) if case.inputs is None else case.inputs)
    params = tiny_params()
    if case.params:
        case.params(params)
    pf = write_params(d / "params.yaml", params)
    if case.mutate:
        case.mutate(d)
    if case.args is not None:
        args = case.args(d)
    else:
        args = ["--params", pf, *stage_args(case.stage, d)]
    before = snapshot(d)

    r = run_stage(case.stage, *args, cwd=d)

    assert_user_error(r, case.expect, d, before)


def test_check_output_refuses_read_only_folder(tmp_path: Path) -> None:
    """The permission case (the subprocess corpus runs as root in CI containers, where every folder is writable)."""
    import os

    from gcseg.atomic import check_output
    from gcseg.errors import InputError

    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output(blocked / "out" / "model.pt")
    if os.geteuid() == 0:
        pytest.skip("root may write into a read-only folder")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            check_output(ro / "out")
        assert not (ro / "out").exists()
    finally:
        ro.chmod(0o700)
