"""The superpoints and keyframe_superpoints stages on a tiny synthetic dataset: one file per scene, matching the
clouds, byte-identical on a rerun; bad params exit 2 with nothing written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from gcseg.io.samples import write_point_samples
from gcseg.readers import open_scene
from gcseg.superpoints import read_superpoints

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    from gcseg.synth.writer import write_dataset

    root = tmp_path_factory.mktemp("sp") / "scenes"
    write_dataset(root, num_scenes=2, num_val=1, seed=0, progress=False, num_frames=3, height=48, width=64,
                  point_spacing=0.05)
    return root


def params_file(tmp_path: Path, **over) -> Path:
    repo = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = {"data": {"source": "synth", "root": "unused"}, "superpoints": {**repo["superpoints"], **over}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_reference_superpoints_stage(scenes: Path, tmp_path: Path):
    from stages.superpoints import app

    params = params_file(tmp_path)
    args = ["--params", str(params), "--scenes", str(scenes), "--out", str(tmp_path / "out")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["synth_000.h5", "synth_001.h5"]
    cloud = open_scene("synth", scenes, "synth_000").reference()
    sp = read_superpoints(tmp_path / "out" / "synth_000.h5", "reference", cloud.coord)
    assert sp.shape == (len(cloud),) and 1 < sp.max() + 1 < len(cloud)
    first = digest(tmp_path / "out")
    assert runner.invoke(app, args).exit_code == 0
    assert digest(tmp_path / "out") == first
    # one worker process per scene (gcseg.parallel): the same bytes
    res = runner.invoke(app, [*args[:-1], str(tmp_path / "out2"), "--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert digest(tmp_path / "out2") == first


def test_keyframe_superpoints_stage(tmp_path: Path):
    from stages.keyframe_superpoints import app

    rng = np.random.default_rng(0)
    labels = tmp_path / "labels"
    coord = rng.uniform(0, 1, (500, 3)).astype(np.float32)
    samples = {f"kf_{i:06d}": {"coord": coord + i, "color": rng.integers(0, 255, (500, 3)),
                               "instance": np.zeros(500, np.int32)} for i in range(2)}
    write_point_samples(labels / "s0.h5", samples, schema="gcseg.sam_keyframes", scene_id="s0")
    write_point_samples(labels / "s1.h5", {"kf_000000": samples["kf_000001"]}, schema="gcseg.sam_keyframes",
                        scene_id="s1")
    args = ["--params", str(params_file(tmp_path)), "--labels", str(labels)]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "3 keyframe clouds of 2 scenes" in res.output
    for name, s in samples.items():
        assert read_superpoints(tmp_path / "out" / "s0.h5", name, s["coord"]).shape == (500,)
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "out2"), "--jobs", "2"])  # a process per file
    assert res.exit_code == 0, res.output
    assert digest(tmp_path / "out2") == digest(tmp_path / "out")


def test_bad_params_exit_2_and_write_nothing(scenes: Path, tmp_path: Path):
    from stages.superpoints import app

    res = runner.invoke(app, ["--params", str(params_file(tmp_path, min_size=0)), "--scenes", str(scenes),
                              "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "min_size" in res.output
    assert not (tmp_path / "out").exists()
