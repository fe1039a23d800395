"""gcseg sweep: collection + report from a real `dvc exp show --json` payload (captured with DVC 3.67.1 from a toy
repository whose one stage writes made-up metrics/eval.json and metrics/sam2_track.json from tau_iou, with two
successful experiments and one failed one), argument validation, and (slow) the real queue in a toy repo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gcseg.sweep import (SweepPoint, collect, experiment_name, experiments_by_name, format_value, plot_sweep,
                         queue_commands, setting_holds, sweep_markdown, write_report)
from gcseg.errors import ArtifactError
from stages.sweep import app, stage_models, validate_sweep

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = json.loads((ROOT / "tests" / "dvc_exp_show_payload.json").read_text())


def test_names_and_queue_commands_use_explicit_values():
    assert format_value(0.5) == "0.5" and format_value(3) == "3" and format_value(0.1 + 0.2) == "0.30000000000000004"
    assert experiment_name("tau_iou", 0.6) == "tau_iou-0.6"
    cmds = queue_commands("tau_iou", [0.5, 0.9])
    assert [c[3:] for c in cmds] == [["exp", "run", "--queue", "-S", "tau_iou=0.5", "-n", "tau_iou-0.5"],
                                     ["exp", "run", "--queue", "-S", "tau_iou=0.9", "-n", "tau_iou-0.9"]]
    assert queue_commands("tau_dorm", [2], params_file="p2.yaml")[0][7] == "p2.yaml:tau_dorm=2"
    assert queue_commands("seed", [1], extra=["eval.own_labels=true"])[0][3:] == [
        "exp", "run", "--queue", "-S", "seed=1", "-S", "eval.own_labels=true", "-n", "seed-1"]
    assert queue_commands("seed", [1], suffix="-vab")[0][-1] == "seed-1-vab" == experiment_name("seed", 1, "-vab")


def test_collect_checks_the_further_settings():
    """An experiment of the right name run under other settings is not the sweep's point (gcseg.study --set)."""
    assert setting_holds({"eval": {"split": "val"}, "tau_iou": 0.9}, "eval.split=val")
    assert setting_holds({"a": {"lr": 0.002}}, "a.lr=2.0e-3") and not setting_holds({"a": {"lr": 0.001}}, "a.lr=0.002")
    assert not setting_holds({"a": {}}, "a.lr=0.002") and setting_holds({"a": {"on": True}}, "a.on=true")
    # Hydra's override prefixes (DVC's -S): a key added to params.yaml, a key deleted from it
    assert setting_holds({"synth": {"num_unlabelled": 4}}, "++synth.num_unlabelled=4")
    assert setting_holds({"synth": {"num_unlabelled": 4}}, "+synth.num_unlabelled=4")
    assert not setting_holds({"synth": {}}, "++synth.num_unlabelled=4")
    assert setting_holds({"a": {}}, "~a.lr=0.002") and not setting_holds({"a": {"lr": 0.002}}, "~a.lr=0.002")
    assert collect(PAYLOAD, "tau_iou", [0.9], settings=["eval.split=val"])[0].status == "success"
    assert collect(PAYLOAD, "tau_iou", [0.9], settings=["eval.split=train"])[0].status == "missing"
    assert collect(PAYLOAD, "tau_iou", [0.9], suffix="-v1")[0].status == "missing"  # no such name


def test_collect_from_captured_payload():
    exps = experiments_by_name(PAYLOAD)
    assert exps["tau_iou-0.99"]["state"] == "failed" and exps["tau_iou-0.5"]["state"] == "success"
    points = collect(PAYLOAD, "tau_iou", [0.5, 0.9, 0.99, 0.7])
    assert [p.status for p in points] == ["success", "success", "failed", "missing"]
    p5 = points[0]
    assert p5.rows["stage1"] == {"AP": 0.25, "AP50": 0.3333, "AP25": 0.5}
    assert p5.rows["lift_only"]["AP25"] is None  # null metrics are dropped by DVC: reported as n/a
    assert set(p5.rows) == {"lift_only", "stage1", "stage2", "stage3"}
    assert p5.track == {"tracks": 50.0, "track length": 12.5, "consistency": 0.5, "gain vs Stage 1": 0.25}
    assert points[2].rows == {} and points[3].rows == {}
    # an experiment whose params disagree with its name is not this sweep's point
    assert collect(PAYLOAD, "tau_iou", [0.9])[0].rows["stage3"]["AP"] == 0.9
    with pytest.raises(ArtifactError):
        experiments_by_name({"not": "a list"})


def test_collect_reads_the_perfect_ranking_diagnostic_on_request():
    """gcseg.study asks for the eval stage's perfect-ranking rows (perfect_<row>); a sweep leaves them out, and an
    experiment of a commit before the diagnostic has none."""
    import copy

    from gcseg.sweep import EVAL_METRICS

    payload = copy.deepcopy(PAYLOAD)
    name_of = {}
    for commit in payload:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                name_of[rev.get("name")] = rev
    ev = name_of["tau_iou-0.5"]["data"]["metrics"][EVAL_METRICS]["data"]
    ev["diagnostics"] = {"perfect_ranking": {"source": "uses GT", "rows": {
        "stage1": {"AP": 0.5, "AP50": 0.75, "AP25": 0.8, "given": {"AP": 0.25, "AP50": 0.3333, "AP25": 0.5}}}}}
    plain, ranked = (collect(payload, "tau_iou", [0.5, 0.9], perfect_ranking=b) for b in (False, True))
    assert "perfect_stage1" not in plain[0].rows
    assert ranked[0].rows["perfect_stage1"] == {"AP": 0.5, "AP50": 0.75, "AP25": 0.8}
    assert not any(r.startswith("perfect_") for r in ranked[1].rows)


def test_markdown_and_plot(tmp_path):
    points = collect(PAYLOAD, "tau_iou", [0.5, 0.9, 0.99])
    md = sweep_markdown("tau_iou", points)
    lines = md.splitlines()
    head = next(line for line in lines if line.startswith("| tau_iou | lift_only AP"))
    assert head.count("|") == 2 + 12 + 1
    assert "| 0.5 | 12.5 | 16.7 | n/a | 25.0 | 33.3 | 50.0 |" in md
    assert any(line.startswith("| 0.99 | n/a") and line.endswith("| failed |") for line in lines)
    assert "| 0.9 | 90 | 12.500 | 0.900 | 0.250 |" in md  # track statistics
    png = plot_sweep("tau_iou", points)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == plot_sweep("tau_iou", points)  # deterministic
    paths = write_report(tmp_path / "sw", "tau_iou", points)
    assert paths["md"].read_text() == md and paths["png"].read_bytes() == png
    data = json.loads(paths["json"].read_text())
    assert [p["value"] for p in data["points"]] == [0.5, 0.9, 0.99]
    assert not list((tmp_path / "sw").glob("*.tmp*"))


def test_markdown_writes_nan_as_missing():
    # A metric that came out NaN (an empty split) reads as missing, as in the report's tables, not "nan".
    point = SweepPoint(0.5, "tau_iou-0.5", "success", {"lift_only": {"AP": float("nan"), "AP50": 0.25}})
    md = sweep_markdown("tau_iou", [point])
    assert "nan" not in md and "| 0.5 | n/a | 25.0 |" in md


def test_no_run_collects_only(tmp_path, monkeypatch):
    import gcseg.sweep as sw

    calls = []
    monkeypatch.setattr(sw, "exp_show", lambda cwd, rev=None: calls.append(cwd) or PAYLOAD)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tau_iou": 0.7, "tau_dorm": 3}))
    r = CliRunner().invoke(app, ["tau_iou", "0.5", "0.9", "--no-run", "--repo", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1
    out = tmp_path / "metrics" / "sweeps" / "tau_iou"
    assert (out / "sweep.md").is_file() and (out / "sweep.png").is_file()
    assert "| 0.9 | 22.5 | 30.0 | n/a |" in r.output


@pytest.mark.parametrize("args, message", [
    (["tau_iuo", "0.5"], "not a top-level tau"),
    (["seed", "1"], "not a top-level tau"),
    (["tau_iou", "1.2"], "tau_iou=1.2"),
    (["tau_iou", "--", "-0.1", "0.5"], "tau_iou=-0.1"),  # `--`: else click reads -0.1 as an option
    (["tau_iou", "abc"], "tau_iou=abc"),
    (["tau_dorm", "2.5"], "tau_dorm=2.5"),
    (["tau_iou", "0.5", "0.5"], "duplicate"),
])
def test_bad_key_or_value_exit_2(tmp_path, args, message):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"seed": 0, "tau_iou": 0.7, "tau_dorm": 3, "tau_conf": 0.6, "tau_contain": 0.8}))
    r = CliRunner().invoke(app, ["--repo", str(tmp_path), *args])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not (tmp_path / "metrics").exists()


def test_ranges_come_from_the_stage_models():
    models = stage_models()
    data = {"tau_iou": 0.7, "tau_dorm": 3}
    assert validate_sweep("tau_dorm", ["0", "5"], data, models) == [0, 5]
    if any("tau_iou" in m.model_fields for m in models.values()):
        assert validate_sweep("tau_iou", ["0.5", "0.95"], data, models) == [0.5, 0.95]


TOY_STAGE = """
import json, os, yaml
t = yaml.safe_load(open("params.yaml"))["tau_iou"]
os.makedirs("metrics", exist_ok=True)
json.dump({"stage1": {"AP": t / 2, "AP50": t, "AP25": t}}, open("metrics/eval.json", "w"))
"""


@pytest.mark.slow
def test_real_queue_in_toy_repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "toy"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    import os

    env = {**os.environ, **env}
    (repo / "params.yaml").write_text("tau_iou: 0.7\n")
    (repo / "run.py").write_text(TOY_STAGE)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"eval": {
        "cmd": f"{sys.executable} run.py", "deps": ["run.py"], "params": ["tau_iou"],
        "metrics": [{"metrics/eval.json": {"cache": False}}]}}}))
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "toy"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)
    t0 = time.monotonic()
    r = CliRunner().invoke(app, ["tau_iou", "0.5", "--repo", str(repo)], env=env)
    assert r.exit_code == 0, r.output
    data = json.loads((repo / "metrics" / "sweeps" / "tau_iou" / "sweep.json").read_text())
    assert [(p["value"], p["status"], p["rows"]["stage1"]) for p in data["points"]] == \
        [(0.5, "success", {"AP": 0.25, "AP50": 0.5, "AP25": 0.5})]
    assert yaml.safe_load((repo / "params.yaml").read_text()) == {"tau_iou": 0.7}  # workspace untouched
    print(f"toy sweep took {time.monotonic() - t0:.1f} s")


def test_run_sweep_queues_only_missing_then_runs_and_collects(monkeypatch):
    """The DVC command sequence: finished experiments are reused, failed ones removed and queued again."""
    import gcseg.sweep as sw

    calls: list[list[str]] = []
    monkeypatch.setattr(sw, "exp_show", lambda cwd, rev=None: PAYLOAD)
    monkeypatch.setattr(sw, "_run", lambda cmd, cwd, capture=False: calls.append(list(cmd[3:])) or "")
    messages: list[str] = []
    points = sw.run_sweep("tau_iou", [0.5, 0.99, 0.7], echo=messages.append)
    assert calls == [["exp", "remove", "tau_iou-0.99"],
                     ["exp", "run", "--queue", "-S", "tau_iou=0.99", "-n", "tau_iou-0.99"],
                     ["exp", "run", "--queue", "-S", "tau_iou=0.7", "-n", "tau_iou-0.7"],
                     ["exp", "run", "--run-all", "-j", "1"]]
    assert any("reusing finished experiment(s) tau_iou-0.5" in m for m in messages)
    assert [p.status for p in points] == ["success", "failed", "missing"]  # the fake payload did not change
    calls.clear()
    sw.run_sweep("tau_iou", [0.5], rerun=True, echo=messages.append)
    assert calls[0] == ["exp", "remove", "tau_iou-0.5"] and calls[-1] == ["exp", "run", "--run-all", "-j", "1"]
    calls.clear()
    sw.run_sweep("tau_iou", [0.5, 0.9], echo=messages.append)
    assert calls == []  # everything finished: nothing queued, nothing run
    calls.clear()
    sw.run_sweep("tau_iou", [0.5, 0.7], run=False)
    assert calls == []


def test_run_sweep_collects_from_the_commit_it_queued_on(monkeypatch):
    """A commit landing while the queue runs must not make the sweep collect the new HEAD (which has none of
    the experiments): it reads the baseline's experiments and says that HEAD moved."""
    import gcseg.sweep as sw

    heads = iter(["a" * 40, "b" * 40])
    monkeypatch.setattr(sw, "head_commit", lambda cwd: next(heads))
    revs: list[str | None] = []
    monkeypatch.setattr(sw, "exp_show", lambda cwd, rev=None: revs.append(rev) or PAYLOAD)
    monkeypatch.setattr(sw, "_run", lambda cmd, cwd, capture=False: "")
    messages: list[str] = []
    points = sw.run_sweep("tau_iou", [0.5, 0.7], echo=messages.append)
    assert revs == ["a" * 40, "a" * 40]
    assert any("HEAD moved from aaaaaaa to bbbbbbb" in m for m in messages)
    assert points[0].status == "success"


def test_head_commit_reads_git(tmp_path):
    import gcseg.sweep as sw

    assert sw.head_commit(tmp_path) is None  # not a repository
    assert sw.head_commit(ROOT) is None or len(sw.head_commit(ROOT)) == 40
