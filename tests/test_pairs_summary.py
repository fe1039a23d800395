"""scripts/pairs_summary.py: the base figures come from the experiment commit, the variant's from its eval file;
per-seed changes, the paper's order and the lift-only comparison are counted from them; --merge keeps an earlier
summary's seeds and refuses one of another variant."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts/pairs_summary.py"
VARIANT = "stage2_train.loss.objectness=confidence"


def _eval(s1: float, s2: float, s3: float, lift: float, perfect: float, own: float) -> dict:
    def row(ap: float) -> dict:
        return {"AP": ap, "AP50": ap + 0.1, "AP25": ap + 0.2}

    return {"stage1": row(s1), "stage2": row(s2), "stage3": row(s3), "lift_only": row(lift),
            "diagnostics": {"perfect_ranking": {"rows": {"stage3": row(perfect)}}},
            "own_labels": {"lift_only": row(own - 0.1), "stage2": row(own), "stage3": row(own)}}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_pairs_summary_reads_base_commit_and_variant(tmp_path: Path) -> None:
    study = tmp_path / "study"
    (study / "metrics").mkdir(parents=True)
    _git(study, "init", "-q")
    revs = {}
    for seed, ev in {"5": _eval(0.10, 0.20, 0.30, 0.35, 0.50, 0.40), "6": _eval(0.25, 0.20, 0.30, 0.28, 0.45, 0.30)
                     }.items():
        (study / "metrics/eval.json").write_text(json.dumps(ev))
        _git(study, "add", "metrics/eval.json")
        _git(study, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", f"seed {seed}")
        revs[seed] = _git(study, "rev-parse", "HEAD")
    var = tmp_path / "var"
    var.mkdir()
    (var / "eval_5.json").write_text(json.dumps(_eval(0.10, 0.22, 0.36, 0.35, 0.52, 0.41)))  # +6 AP, order, >= lift
    (var / "eval_6.json").write_text(json.dumps(_eval(0.25, 0.26, 0.28, 0.28, 0.44, 0.29)))  # -2 AP, order now
    out = tmp_path / "out"
    r = _run("--study", study, "--variant-dir", var, "--out", out, "--variant", VARIANT, "--base", "b", "--how", "h",
             *(f"{s}:{rev}" for s, rev in revs.items()))
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "pairs.json").read_text())
    assert doc["seeds"]["5"]["default"]["stage3"] == {"AP": 30.0, "AP50": 40.0}
    assert doc["seeds"]["5"]["variant"]["stage3"]["AP"] == 36.0
    assert doc["seeds"]["6"]["perfect_stage3"] == {"default": 45.0, "variant": 44.0}
    assert doc["seeds"]["5"]["own_stage3"] == {"default": 40.0, "variant": 41.0}
    m = doc["mean_change"]
    assert m["n"] == 2 and m["stage3_AP"] == pytest.approx(2.0) and m["stage3_higher"] == 1
    assert m["stage3_AP50_higher"] == 1
    assert (m["paper_order_default"], m["paper_order_variant"]) == (1, 2)
    assert (m["stage3_ge_lift_only_default"], m["stage3_ge_lift_only_variant"]) == (1, 2)
    assert "| 5 | 10.0 | 20.0 / 22.0 | 30.0 / 40.0 -> 36.0 / 46.0 |" in (out / "pairs.md").read_text()

    # an earlier summary's seeds are kept; another variant's summary is refused
    (var / "eval_6.json").unlink()
    r = _run("--study", study, "--variant-dir", var, "--out", tmp_path / "more", "--variant", VARIANT, "--base", "b",
             "--how", "h", "--merge", out / "pairs.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "more/pairs.json").read_text())["seeds"] == doc["seeds"]
    r = _run("--study", study, "--variant-dir", var, "--out", tmp_path / "x", "--variant", "other=1", "--base", "b",
             "--how", "h", "--merge", out / "pairs.json")
    assert r.returncode != 0 and "not 'other=1'" in r.stderr
