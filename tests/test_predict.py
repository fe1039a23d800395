"""`gcseg predict`: input detection, bad inputs, checkpoints, and end-to-end prediction files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement
from typer.testing import CliRunner

from gcseg.errors import ArtifactError, InputError
from gcseg.predict import detect_source, load_checkpoint, load_scan

HOLOLENS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hololens_000"


def _write_vertex_ply(path: Path, fields: dict[str, np.ndarray]) -> Path:
    n = len(next(iter(fields.values())))
    rec = np.empty(n, dtype=[(k, v.dtype.str) for k, v in fields.items()])
    for k, v in fields.items():
        rec[k] = v
    PlyData([PlyElement.describe(rec, "vertex")], text=False).write(str(path))
    return path


def _blob_cloud(n_per=300, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Two coloured boxes of points 1 m apart (a point cloud with two obvious objects)."""
    rng = np.random.default_rng(seed)
    a = rng.random((n_per, 3)) * 0.4
    b = rng.random((n_per, 3)) * 0.4 + [1.0, 0.0, 0.0]
    coord = np.concatenate([a, b]).astype(np.float32)
    color = np.concatenate([np.tile([200, 30, 30], (n_per, 1)), np.tile([30, 30, 200], (n_per, 1))]).astype(np.uint8)
    return coord, color


def _cloud_ply(path: Path, with_color: bool = True) -> Path:
    coord, color = _blob_cloud()
    fields = {"x": coord[:, 0], "y": coord[:, 1], "z": coord[:, 2]}
    if with_color:
        fields.update(red=color[:, 0], green=color[:, 1], blue=color[:, 2])
    return _write_vertex_ply(path, fields)


def test_detect_source(tmp_path):
    assert detect_source(_cloud_ply(tmp_path / "c.ply")) == "ply"
    rgbd = tmp_path / "cap"
    (rgbd / "color").mkdir(parents=True)
    (rgbd / "depth").mkdir()
    assert detect_source(rgbd) == "posed_rgbd"
    sn = tmp_path / "scene0000_00"
    sn.mkdir()
    _cloud_ply(sn / "scene0000_00_vh_clean_2.ply")
    assert detect_source(sn) == "scannet"
    spp = tmp_path / "0a5c013435"
    (spp / "scans").mkdir(parents=True)
    _cloud_ply(spp / "scans" / "mesh_aligned_0.05.ply")
    assert detect_source(spp) == "scannetpp"
    # the meshes are what gets labelled
    assert len(load_scan(sn).cloud) == 600 and load_scan(spp).scene_id == "0a5c013435"


def test_unsupported_inputs_say_what_is_supported(tmp_path):
    obj = tmp_path / "mesh.obj"
    obj.write_text("v 0 0 0\n")
    with pytest.raises(InputError, match="unsupported file type '.obj'.*point-cloud .ply"):
        detect_source(obj)
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="not a scan gcseg can read"):
        load_scan(empty_dir)
    with pytest.raises(InputError, match="input not found"):
        load_scan(tmp_path / "missing")
    with pytest.raises(InputError, match="unknown source"):
        load_scan(obj, source="obj")


def test_ply_without_xyz_and_empty_and_nonfinite(tmp_path):
    bad = _write_vertex_ply(tmp_path / "uv.ply", {"u": np.zeros(5, np.float32), "v": np.zeros(5, np.float32)})
    with pytest.raises(InputError, match="lacks x, y, z"):
        load_scan(bad)
    empty = _write_vertex_ply(tmp_path / "empty.ply", {k: np.zeros(0, np.float32) for k in "xyz"})
    with pytest.raises(InputError, match="empty cloud"):
        load_scan(empty)
    nan = _write_vertex_ply(tmp_path / "nan.ply", {"x": np.array([0, np.nan], np.float32),
                                                     "y": np.zeros(2, np.float32), "z": np.zeros(2, np.float32)})
    with pytest.raises(InputError, match="non-finite"):
        load_scan(nan)
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"not a ply at all")
    with pytest.raises(InputError, match="not a readable PLY"):
        load_scan(garbage)
    nocolor = load_scan(_cloud_ply(tmp_path / "plain.ply", with_color=False))
    assert nocolor.cloud.color is None and nocolor.scene_id == "plain"


def test_corrupt_or_foreign_checkpoint(tmp_path):
    import torch

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ArtifactError, match="not a readable torch checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ArtifactError, match="not a gcseg model checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_cli_reports_one_line_and_exit_2(tmp_path):
    from stages.predict import app

    obj = tmp_path / "mesh.obj"
    obj.write_text("v 0 0 0\n")
    res = CliRunner().invoke(app, ["--input", str(obj), "--checkpoint", str(tmp_path / "m.pt"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "unsupported file type" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- with a tiny random model

TINY = dict(backend="torch", voxel_size=0.05, planes=(8, 8, 8, 8, 8, 8, 8, 8), hidden_dim=16, num_queries=8,
            num_heads=2, ffn_dim=32)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny model in the training engineer's checkpoint format (no trained weights
    exist here: this checks the plumbing and file formats, not segmentation quality)."""
    import torch

    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(**TINY)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, build_model(cfg), cfg, epoch=0)
    return path


def _check_outputs(out: Path, scene_id: str, num_points: int) -> dict:
    """Every output is well-formed and consistent with the others; returns the summary."""
    from gcseg.eval.benchmark_io import read_predictions
    from gcseg.io.ply import read_ply

    summary = json.loads((out / f"{scene_id}_summary.json").read_text())
    assert summary["scene_id"] == scene_id and summary["num_points"] == num_points
    masks, scores = read_predictions(out, scene_id, num_points)
    assert masks.shape == (summary["num_masks"], num_points)
    np.testing.assert_allclose(scores, [m["score"] for m in summary["masks"]], atol=1e-6)
    assert list(scores) == sorted(scores, reverse=True)
    assert [int(m.sum()) for m in masks] == [m["num_points"] for m in summary["masks"]]
    ply = read_ply(out / f"{scene_id}_instances.ply")
    assert ply["coord"].shape == (num_points, 3) and ply["color"].shape == (num_points, 3)
    inst = ply["instance"]
    assert inst.min() >= 0 and inst.max() <= summary["num_masks"]
    assert int((inst > 0).sum()) == summary["labelled_points"]
    for k in np.unique(inst[inst > 0]):  # instance k lies inside predicted mask k-1
        assert masks[int(k) - 1].toarray().ravel()[inst == k].all()
    return summary


def test_predict_point_cloud_ply_end_to_end(tmp_path, tiny_checkpoint):
    from stages.predict import app

    ply = _cloud_ply(tmp_path / "room.ply")
    outs = [tmp_path / "out1", tmp_path / "out2"]
    for out in outs:
        res = CliRunner().invoke(app, ["--input", str(ply), "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
        assert res.exit_code == 0, res.output
    summary = _check_outputs(outs[0], "room", 600)
    assert summary["source"] == "ply" and summary["checkpoint"] == "model.pt" and summary["num_masks"] >= 1
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    assert all((outs[0] / f).read_bytes() == (outs[1] / f).read_bytes() for f in files)  # deterministic

    # predictions round-trip through the evaluator: GT = the two boxes
    from gcseg.eval.ap import SceneEval, evaluate_scenes
    from gcseg.eval.benchmark_io import read_predictions

    masks, scores = read_predictions(outs[0], "room", 600)
    gt = np.repeat([1001, 1002], 300)
    res = evaluate_scenes([SceneEval(scene_id="room", gt_ids=gt, pred_masks=masks, pred_scores=scores)])
    assert res.num_gt == 2 and res.num_pred_masks["room"] == summary["num_masks"]
    assert 0.0 <= res.ap25 <= 1.0

    # a higher tau_conf keeps a subset, and stale mask files of the earlier run are removed
    top = summary["masks"][0]["score"]
    res = CliRunner().invoke(app, ["--input", str(ply), "--checkpoint", str(tiny_checkpoint), "--out",
                                   str(outs[0]), "--tau-conf", f"{top - 1e-4:.6f}", "--scene-id", "room"])
    assert res.exit_code == 0, res.output
    again = _check_outputs(outs[0], "room", 600)
    assert 1 <= again["num_masks"] < summary["num_masks"] or summary["num_masks"] == 1
    assert len(list((outs[0] / "predicted_masks").glob("room_*.txt"))) == again["num_masks"]


def test_checkpoint_not_matching_its_config(tmp_path):
    import torch

    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY))
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, ModelConfig(**{**TINY, "hidden_dim": 32}), epoch=0)  # config says 32, weights 16
    with pytest.raises(ArtifactError, match="do not fit"):
        load_checkpoint(path)


@pytest.mark.skipif(not HOLOLENS.is_dir(), reason="real capture ../shared/data/hololens_000 not present")
def test_predict_real_hololens_capture(tmp_path, tiny_checkpoint):
    """A real posed RGB-D folder without reference.ply: predictions on its fused cloud."""
    from gcseg.predict import predict_scan

    out = tmp_path / "pred"
    summary = predict_scan(HOLOLENS, tiny_checkpoint, out)
    assert summary["source"] == "posed_rgbd" and summary["scene_id"] == "hololens_000"
    assert summary["num_points"] > 10_000
    _check_outputs(out, "hololens_000", summary["num_points"])


# ---------------------------------------------------------------- output folder and writing one set

def test_detect_source_names_the_missing_subfolder(tmp_path):
    only_color = tmp_path / "a"
    (only_color / "color").mkdir(parents=True)
    with pytest.raises(InputError, match="has color/ but no depth/ subfolder") as e:
        detect_source(only_color)
    assert str(only_color) in str(e.value) and "depth/" in e.value.fix
    only_depth = tmp_path / "b"
    (only_depth / "depth").mkdir(parents=True)
    with pytest.raises(InputError, match="has depth/ but no color/ subfolder"):
        detect_source(only_depth)


def test_check_output_folder_or_file(tmp_path):
    from gcseg.atomic import check_output

    a_file = tmp_path / "out.txt"
    a_file.write_text("keep me")
    check_output(a_file)  # either is fine by default
    check_output(tmp_path, folder=True)
    check_output(tmp_path / "new" / "dir", folder=True)  # to be created
    with pytest.raises(InputError, match="--out is a file, not a folder") as e:
        check_output(a_file, folder=True, what="--out")
    assert str(a_file) in str(e.value) and e.value.fix
    with pytest.raises(InputError, match="output is a folder, not a file"):
        check_output(tmp_path, folder=False)
    assert a_file.read_text() == "keep me"


def test_out_is_a_file_fails_before_the_model_loads(tmp_path):
    from stages.predict import app

    out = tmp_path / "predictions"
    out.write_text("not a folder")
    res = CliRunner().invoke(app, ["--input", str(_cloud_ply(tmp_path / "room.ply")), "--checkpoint",
                                   str(tmp_path / "missing.pt"), "--out", str(out)])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "Traceback" not in res.output
    assert "--out is a file, not a folder" in res.output and "checkpoint" not in res.output  # checked first
    assert out.read_text() == "not a folder"


def _scan_and_masks(k: int, n: int = 30):
    from gcseg.predict import ScanInput
    from gcseg.scene import PointCloud

    coord = np.random.default_rng(0).random((n, 3)).astype(np.float32)
    masks = np.zeros((k, n), bool)
    for i in range(k):
        masks[i, i * 3:(i + 1) * 3] = True
    scores = np.linspace(0.9, 0.5, k).astype(np.float32)
    return ScanInput(scene_id="room", source="ply", cloud=PointCloud(coord=coord, color=None)), masks, scores


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_write_prediction_publishes_one_set_index_last(tmp_path, monkeypatch):
    import os

    from gcseg.eval.benchmark_io import write_predictions
    from gcseg.predict import write_prediction

    out = tmp_path / "out"
    write_prediction(out, *_scan_and_masks(5))
    moved: list[Path] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append(Path(b)), real_replace(a, b))[1])
    scan, masks, scores = _scan_and_masks(2)
    write_prediction(out, scan, masks, scores, extra_files=lambda d: (d / "room_extra.txt").write_text("x"))
    monkeypatch.undo()
    published = [p for p in moved if p.parent in (out, out / "predicted_masks")]
    assert published[-1] == out / "room.txt"  # the index the benchmark reads comes last
    assert sorted(p.name for p in published) == ["room.txt", "room_000.txt", "room_001.txt", "room_extra.txt",
                                                 "room_instances.ply", "room_summary.json"]
    files = _files(out)
    assert sorted(files) == ["predicted_masks/room_000.txt", "predicted_masks/room_001.txt", "room.txt",
                             "room_extra.txt", "room_instances.ply", "room_summary.json"]  # stale masks gone
    write_predictions(tmp_path / "direct", "room", masks, scores)  # same bytes as the benchmark writer's
    assert {k: v for k, v in files.items() if k.startswith(("room.txt", "predicted_masks"))} == _files(
        tmp_path / "direct")


def test_interrupted_write_keeps_the_earlier_set(tmp_path):
    from gcseg.predict import write_prediction

    out = tmp_path / "out"
    write_prediction(out, *_scan_and_masks(5))
    before = _files(out)

    def interrupted(folder: Path) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the new masks, PLY and summary were written

    with pytest.raises(KeyboardInterrupt):
        write_prediction(out, *_scan_and_masks(2), extra_files=interrupted)
    assert _files(out) == before  # nothing of the new set, and no staging folder left
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_fragment_options(tmp_path, tiny_checkpoint):
    """By default the summary records the eval's fragment settings; --fragment-eps 0 predicts masks only (a
    subset of the default's: the pieces come on top); an out-of-range --fragment-score exits 2 writing nothing."""
    from stages.predict import app

    from gcseg.eval.benchmark_io import read_predictions

    ply = _cloud_ply(tmp_path / "room.ply")
    runs = {"default": [], "off": ["--fragment-eps", "0"]}
    got = {}
    for name, extra in runs.items():
        out = tmp_path / name
        res = CliRunner().invoke(app, ["--input", str(ply), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                                       *extra])
        assert res.exit_code == 0, res.output
        got[name] = (_check_outputs(out, "room", 600), read_predictions(out, "room", 600)[0].toarray())
    assert got["default"][0]["fragments"] == {"eps": 0.05, "min_points": 100, "score_factor": 0.5}
    assert got["off"][0]["fragments"] is None
    whole = {m.tobytes() for m in got["default"][1]}
    assert all(m.tobytes() in whole for m in got["off"][1])
    res = CliRunner().invoke(app, ["--input", str(ply), "--checkpoint", str(tiny_checkpoint), "--out",
                                   str(tmp_path / "bad"), "--fragment-score", "2"])
    assert res.exit_code == 2 and "--fragment-score" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "bad").exists()


def test_predict_scan_with_the_model_loaded_once_writes_the_same_files(tmp_path, tiny_checkpoint):
    """`gcseg unseen` loads the checkpoint once and passes the model for every room: the same bytes as a
    predict_scan that loads it itself."""
    from gcseg.predict import load_checkpoint, predict_scan

    ply = _cloud_ply(tmp_path / "room.ply")
    model, _ = load_checkpoint(tiny_checkpoint)
    predict_scan(ply, tiny_checkpoint, tmp_path / "loaded")
    predict_scan(ply, tiny_checkpoint, tmp_path / "given", model=model)
    files = sorted(p.relative_to(tmp_path / "loaded") for p in (tmp_path / "loaded").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "given") for p in (tmp_path / "given").rglob("*")
                                     if p.is_file())
    assert all((tmp_path / "loaded" / f).read_bytes() == (tmp_path / "given" / f).read_bytes() for f in files)


def test_matrix_nms_option(tmp_path, tiny_checkpoint):
    """--matrix-nms (default linear, as the eval stage) rescores the checkpoint's masks in place of its model.matrix_nms (its masks, scores no higher;
    one decayed to 0 falls under --tau-conf), records the setting in the summary and leaves a model passed by the caller as it was; an unknown
    value exits 2 writing nothing."""
    from stages.predict import app

    from gcseg.eval.benchmark_io import read_predictions
    from gcseg.predict import load_checkpoint, predict_scan

    ply = _cloud_ply(tmp_path / "room.ply")
    got = {}
    for name, extra in {"checkpoint": ["--matrix-nms", "checkpoint"], "linear": []}.items():
        out = tmp_path / name
        res = CliRunner().invoke(app, ["--input", str(ply), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                                       "--fragment-eps", "0", *extra])
        assert res.exit_code == 0, res.output
        masks, scores = read_predictions(out, "room", 600)
        best: dict[bytes, float] = {}  # a random model repeats masks: each distinct mask's best score
        for m, sc in zip(masks.toarray(), scores):
            best[m.tobytes()] = max(sc, best.get(m.tobytes(), 0.0))
        got[name] = (_check_outputs(out, "room", 600), best)
    assert got["checkpoint"][0]["matrix_nms"] is None and got["linear"][0]["matrix_nms"] == "linear"
    plain, rescored = got["checkpoint"][1], got["linear"][1]
    assert rescored and rescored.keys() <= plain.keys() and all(rescored[k] <= plain[k] + 1e-6 for k in rescored)
    model, _ = load_checkpoint(tiny_checkpoint)
    predict_scan(ply, tiny_checkpoint, tmp_path / "given", model=model, matrix_nms="linear")
    assert model.cfg.matrix_nms is None
    res = CliRunner().invoke(app, ["--input", str(ply), "--checkpoint", str(tiny_checkpoint), "--out",
                                   str(tmp_path / "bad"), "--matrix-nms", "soft"])
    assert res.exit_code == 2 and "--matrix-nms" in res.output and not (tmp_path / "bad").exists()
