"""`python -m stages.synth` through Typer's CliRunner: a tiny config works, bad params exit 2 naming the key."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from stages.synth import SynthParams, app

TINY = {"num_scenes": 2, "num_val": 1, "num_frames": 3, "height": 24, "width": 32, "hfov_deg": 65.0,
        "depth_noise": 0.0, "hole_fraction": 0.0, "point_spacing": 0.03, "max_furniture": 4,
        "orbit_degrees": 60.0, "camera_jitter": 1.0}


def _params(tmp_path, **synth):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"seed": 5, "tau_iou": 0.7, "synth": {**TINY, **synth}}))
    return p


def _output(result) -> str:
    try:
        return result.output + (result.stderr or "")
    except (ValueError, AttributeError):
        return result.output


def test_stage_writes_dataset(tmp_path):
    out = tmp_path / "scenes"
    res = CliRunner().invoke(app, ["--params", str(_params(tmp_path)), "--out", str(out)])
    assert res.exit_code == 0, _output(res)
    assert json.loads((out / "splits.json").read_text()) == {"train": ["synth_000"], "val": ["synth_001"]}
    for sid in ("synth_000", "synth_001"):
        assert len(list((out / sid / "depth").glob("*.png"))) == 3
        assert (out / sid / "reference.ply").is_file() and (out / sid / "contact_sheet.png").is_file()


def test_out_of_range_param_exits_2_naming_the_key(tmp_path):
    out = tmp_path / "scenes"
    for key, value in (("num_frames", 1), ("hole_fraction", 1.5), ("num_val", 2), ("width", "wide")):
        res = CliRunner().invoke(app, ["--params", str(_params(tmp_path, **{key: value})), "--out", str(out)])
        assert res.exit_code == 2, (key, _output(res))
        assert f"synth.{key}" in _output(res), (key, _output(res))
        assert not out.exists()
    res = CliRunner().invoke(app, ["--params", str(_params(tmp_path, colour=1)), "--out", str(out)])
    assert res.exit_code == 2 and "colour" in _output(res)


def test_repository_params_validate():
    from pathlib import Path

    from stages._common import load_params

    p = load_params(Path(__file__).resolve().parents[2] / "params.yaml", SynthParams)
    assert p.synth.num_scenes > p.synth.num_val >= 1


def test_stage_defaults_are_the_params_defaults():
    """The default scale is stated once: the pydantic defaults agree with params.yaml (320x240, 8 scenes, 4 val)."""
    from pathlib import Path

    from stages.synth import SynthSection

    repo = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())["synth"]
    model = SynthSection()
    for key in ("num_scenes", "num_val", "num_frames", "height", "width"):
        assert repo[key] == getattr(model, key), key
    assert model.num_val >= 4  # the model engineer's val figures need >= 4 val scenes
