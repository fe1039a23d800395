"""The sam_keyframes stage end to end (CliRunner) on a tiny synthetic dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gcseg.io.samples import read_point_samples
from stages.sam_keyframes import PARAMS_MODEL, app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    from gcseg.synth.writer import write_dataset

    root = tmp_path_factory.mktemp("skf") / "scenes"
    write_dataset(root, num_scenes=2, num_val=1, seed=0, progress=False, num_frames=5, height=60, width=80,
                  depth_noise=0.002, hole_fraction=0.02)
    return root


def params_file(tmp_path: Path, **section) -> Path:
    repo = yaml.safe_load((ROOT / "params.yaml").read_text())
    sk = repo["sam_keyframes"]
    sk.update({"keyframe_stride": 2, "min_points": 30, "coverage_min_area_frac": 0.042, **section})  # 200 px at 80x60
    p = {"seed": 0, "tau_contain": repo["tau_contain"], "data": {"source": "synth", "root": "unused"},
         "sam_keyframes": sk, "unrelated": {"x": 1}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def invoke(params: Path, scenes: Path, tmp_path: Path, *extra: str):
    return runner.invoke(app, ["--params", str(params), "--scenes", str(scenes), "--out", str(tmp_path / "out"),
                               "--overlays", str(tmp_path / "ov"), "--metrics", str(tmp_path / "m.json"), *extra])


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_repo_params_validate():
    from stages._common import load_params

    p = load_params(ROOT / "params.yaml", PARAMS_MODEL)
    assert p.sam_keyframes.backend == "rgbd" and list(PARAMS_MODEL.model_fields) == [
        "seed", "tau_contain", "data", "sam_keyframes"]


def test_default_backend_end_to_end_and_rerun_skips(scenes: Path, tmp_path: Path):
    params = params_file(tmp_path)  # split: train -> synth_000 is written; synth_001 (val) is only measured
    res = invoke(params, scenes, tmp_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["synth_000.h5"]
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == ["synth_000.png"]
    text = (tmp_path / "m.json").read_text()
    m = json.loads(text)
    assert text == json.dumps(m, indent=2, sort_keys=True) + "\n"
    assert m["scenes"] == 1 and m["keyframes"] == 3  # frames 0, 2, 4
    mk = m["masks_per_keyframe"]
    assert mk["proposed"] >= mk["after_containment"] >= mk["instances_after_min_points"] > 0
    cov = m["coverage_val"]
    assert cov["scenes"] == 1 and cov["gt_instances"] > 0 and 0 < cov["after_containment"] <= cov["proposals"]
    names = [n for n, _ in read_point_samples(tmp_path / "out" / "synth_000.h5")]
    assert names and all(n.startswith("kf_0000") for n in names)
    before = digest(tmp_path / "out")
    res = invoke(params, scenes, tmp_path)
    assert res.exit_code == 0 and "skipping 1 finished scene(s)" in res.output
    assert digest(tmp_path / "out") == before
    # another config recomputes (the stored config differs)
    res = invoke(params_file(tmp_path, min_points=60), scenes, tmp_path)
    assert res.exit_code == 0 and "skipping" not in res.output


def test_shards_write_metrics_once_all_done(scenes: Path, tmp_path: Path):
    params = params_file(tmp_path, backend="gt_sim", split="all")
    res = invoke(params, scenes, tmp_path, "--shard", "1/2")
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["synth_001.h5"] and not (tmp_path / "m.json").exists()
    res = invoke(params, scenes, tmp_path, "--shard", "0/2")
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["backend"] == "gt_sim" and m["scenes"] == 2 and m["coverage_val"]["scenes"] == 1
    assert m["coverage_val"]["proposals"] >= 0.7  # GT-derived masks cover nearly everything


def test_worker_processes_write_the_same_bytes(tmp_path: Path):
    """--jobs 2 (the weight-free backend built per scene in a worker process, gcseg.parallel): the same scene
    files, overlays and metrics as one process, for the written scenes and for the val scenes only measured."""
    from gcseg.synth.writer import write_dataset

    scenes = tmp_path / "scenes"
    write_dataset(scenes, num_scenes=3, num_val=2, seed=1, progress=False, num_frames=3, height=60, width=80)
    for split in ("train", "all"):  # train: 1 scene written, 2 val scenes measured; all: 3 written
        params = params_file(tmp_path, split=split, coverage_val=True)
        runs = {jobs: tmp_path / f"{split}{jobs}" for jobs in ("1", "2")}
        for jobs, folder in runs.items():
            folder.mkdir()
            res = invoke(params, scenes, folder, "--jobs", jobs)
            assert res.exit_code == 0, res.output
        one, two = runs["1"], runs["2"]
        assert digest(one / "out") == digest(two / "out") and digest(one / "ov") == digest(two / "ov")
        assert (one / "m.json").read_bytes() == (two / "m.json").read_bytes()
        m = json.loads((two / "m.json").read_text())
        assert m["scenes"] == (1 if split == "train" else 3) and m["coverage_val"]["scenes"] == 2


def test_missing_checkpoint_fails_before_any_output(scenes: Path, tmp_path: Path):
    params = params_file(tmp_path, backend="sam", sam={"checkpoint": str(tmp_path / "sam_vit_b_01ec64.pth")})
    res = invoke(params, scenes, tmp_path)
    assert res.exit_code == 2
    assert "sam_vit_b_01ec64.pth" in res.output and "dvc add data/weights/" in res.output
    assert "sam_keyframes.backend=classical" in res.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("section, match", [
    ({"sam": {"model_type": "vit_x"}}, "vit_b"),
    ({"backend": "maskrcnn"}, "classical"),
    ({"keyframe_stride": 0}, "keyframe_stride"),
    ({"classical": {"scale": 3}}, "scale"),
    ({"classical": {"median_px": 4}}, "median_px must be odd"),
    ({"rgbd": {"median_px": 0}}, "median_px"),
    ({"rgbd": {"scale": 3}}, "scale"),
])
def test_bad_params_are_one_line_errors(scenes: Path, tmp_path: Path, section, match):
    res = invoke(params_file(tmp_path, **section), scenes, tmp_path)
    assert res.exit_code == 2 and match in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_sam_backend_random_weights_end_to_end(scenes: Path, tmp_path: Path):
    """The real SAM AMG path through the stage, with a small random model (masks carry no meaning)."""
    params = params_file(tmp_path, backend="sam", keyframe_stride=5, min_points=1, min_area_frac=0, split="all",
                         sam={"checkpoint": "random-init-for-tests", "points_per_side": 4, "pred_iou_thresh": 0.0,
                              "stability_score_thresh": 0.0, "device": "cpu", "test_img_size": 128})
    res = invoke(params, scenes, tmp_path)
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["backend"] == "sam" and m["keyframes"] == 2 and m["masks_per_keyframe"]["proposed"] >= 1


def test_section_defaults_match_the_library_configs():
    """The params model and gcseg's backend configs declare the same options with the same defaults."""
    import dataclasses

    from gcseg.proposals.classical import ClassicalConfig
    from gcseg.proposals.gt_sim import GtSimConfig
    from gcseg.proposals.rgbd import RgbdConfig
    from gcseg.proposals.sam import SamConfig
    from stages.sam_keyframes import ClassicalSection, GtSimSection, RgbdSection, SamSection

    for section, config in ((ClassicalSection, ClassicalConfig), (GtSimSection, GtSimConfig), (SamSection, SamConfig),
                            (RgbdSection, RgbdConfig)):
        lib = {f.name: f.default for f in dataclasses.fields(config)}
        stage = section().model_dump()
        assert set(stage) == set(lib), section
        assert {k: v for k, v in stage.items() if lib[k] != v} == {}, section


def test_coverage_val_without_val_scenes_still_writes_the_metrics(tmp_path: Path):
    """synth.num_val: 0 is allowed: with coverage_val on, the metrics are written with an empty coverage and a
    note saying why (the val split used to raise at the very end, after all the work)."""
    from gcseg.synth.writer import write_dataset

    root = tmp_path / "scenes"
    write_dataset(root, num_scenes=1, num_val=0, seed=0, progress=False, num_frames=3, height=60, width=80,
                  depth_noise=0.002, hole_fraction=0.02)
    res = invoke(params_file(tmp_path, coverage_val=True, backend="gt_sim"), root, tmp_path)
    assert res.exit_code == 0, res.output
    assert "no val scenes" in res.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["scenes"] == 1 and m["keyframes"] == 2
    assert m["coverage_val"] == {"scenes": 0, "gt_instances": 0, "min_area_frac": 0.042, "iou": 0.5,
                                 "proposals": None, "after_containment": None,
                                 "note": "no val scenes: coverage not measured"}


def test_rgbd_proposer_gets_each_scenes_up(scenes: Path, tmp_path: Path, monkeypatch):
    """The stage binds the scene's world up (gcseg.upright.proposer_up) to the rgbd proposer of every scene it
    proposes on: the processed train scene and the val scene it only measures."""
    import numpy as np

    from gcseg.proposals.rgbd import RgbdProposer

    seen: list[list[float]] = []
    bind = RgbdProposer.for_scene

    def spy(self: RgbdProposer, up):
        seen.append(np.asarray(up).tolist())
        return bind(self, up)

    monkeypatch.setattr(RgbdProposer, "for_scene", spy)
    res = invoke(params_file(tmp_path), scenes, tmp_path)
    assert res.exit_code == 0, res.output
    assert seen == [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]  # synth_000 (train), synth_001 (val coverage)
