"""dvc.yaml and the stage modules agree: every stage is `python -m stages.<name>`, declares exactly the
params keys its pydantic model reads, depends on its own code (never the whole package, nor params.yaml except
the report, which shows the file),
and params.yaml validates against every stage's model."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC["stages"]
PIPELINE = ["synth", "superpoints", "sam_keyframes", "keyframe_superpoints", "stage1_train", "sam2_track", "stage2_train",
            "full_scene_pseudolabel", "stage3_train", "eval", "report"]


def _module(name: str):
    return importlib.import_module(f"stages.{name}")


def _params_model(mod):
    models = [v for k, v in vars(mod).items() if k == "PARAMS_MODEL"]
    assert models, f"stages.{mod.__name__} must expose PARAMS_MODEL (its pydantic params model)"
    return models[0]


def test_pipeline_has_every_stage_in_order():
    assert [s for s in PIPELINE if s in STAGES] == PIPELINE
    for name in PIPELINE:
        assert name in STAGES, name


@pytest.mark.parametrize("name", [s for s in PIPELINE])
def test_stage_cmd_deps_and_params_match_module(name):
    st = STAGES[name]
    assert st["cmd"].startswith(f"python -m stages.{name} "), st["cmd"]
    deps = [str(d) for d in st.get("deps", [])]
    assert f"stages/{name}.py" in deps, f"{name} must depend on its own module"
    for bad in ("gcseg", "gcseg/", "stages", "stages/", "params.yaml", "stages/cli.py"):
        if (name, bad) == ("report", "params.yaml"):
            continue  # the report renders params.yaml verbatim, comments included: it must rerun when it changes
        assert bad not in deps, f"{name} depends on {bad}: every stage would rerun on any change"
    for dep in deps:
        if "${" not in dep:
            assert (ROOT / dep).exists() or dep.startswith(("data/", "metrics/")), f"{name}: dep {dep} missing"
    declared = []
    for p in st.get("params", []):
        declared.extend(p.keys() if isinstance(p, dict) else [p])
    model = _params_model(_module(name))
    assert sorted(declared) == sorted(model.model_fields), (name, declared, list(model.model_fields))


@pytest.mark.parametrize("name", PIPELINE)
def test_params_yaml_validates_for_every_stage(name):
    from stages._common import load_params

    load_params(ROOT / "params.yaml", _params_model(_module(name)))


def test_top_level_thresholds():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for k in ("tau_contain", "tau_iou", "tau_dorm", "tau_conf"):
        assert k in params, k
    readers = {k: [n for n in PIPELINE if k in _params_model(_module(n)).model_fields]
               for k in ("tau_contain", "tau_iou", "tau_dorm", "tau_conf")}
    assert readers["tau_contain"][0] == "sam_keyframes"
    assert readers["tau_iou"] == ["sam2_track"] and readers["tau_dorm"] == ["sam2_track"]
    assert readers["tau_conf"] == ["full_scene_pseudolabel"]


def test_outputs_flow_downstream():
    """Each stage after synth consumes an output of an earlier stage (the DAG is connected)."""
    outs: dict[str, str] = {}
    for name in PIPELINE:
        st = STAGES[name]
        if name != "synth":
            deps = [str(d) for d in st["deps"]]
            assert any(any(d == o or d.startswith(o + "/") for o in outs) or d == "${data.root}" for d in deps), name
        for o in st.get("outs", []):
            outs[o if isinstance(o, str) else next(iter(o))] = name


def test_metrics_and_plots_not_cached():
    for name, st in STAGES.items():
        for m in st.get("metrics", []) + st.get("plots", []):
            if isinstance(m, dict):
                (path, opts), = m.items()
                assert opts.get("cache") is False, (name, path)


def test_cli_lists_every_stage():
    from typer.testing import CliRunner

    from stages.cli import app

    out = CliRunner().invoke(app, ["--help"]).output
    for name in PIPELINE:
        assert re.search(rf"\b{name.replace('_', '-')}\b", out), name
