"""scripts/train_fingerprint.py on the tiny project: the first-epoch loss equals the project's own Stage 1 run to
every digit; an op trace compared with itself is equal; another kernel path (torch's scalar kernels instead of
AVX2) is named at the first op whose bits differ; a bad reference is a clear error."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from _reliability import ENV, ROOT

SCRIPT = ROOT / "scripts/train_fingerprint.py"


def _run(project: Path, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(project), *map(str, args)],
                          env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_first_epoch_loss_matches_the_projects_run(project: Path) -> None:
    r = _run(project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "same: this machine trains the lock's models" in r.stdout


@pytest.mark.slow
def test_trace_compare(project: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.jsonl.gz"
    r = _run(project, "--trace", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run(project, "--trace", tmp_path / "again.jsonl.gz", "--compare", ref)
    assert r.returncode == 0 and "same: all" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "again.jsonl.gz").read_bytes() == ref.read_bytes()
    if platform.machine() in ("x86_64", "AMD64") and "ATEN_CPU_CAPABILITY=avx2" in _pins(project):
        # torch's scalar kernels draw the initial weights in another order than its AVX2 ones
        r = _run(project, "--trace", tmp_path / "scalar.jsonl.gz", "--compare", ref,
                 env={"ATEN_CPU_CAPABILITY": "default"})
        assert r.returncode == 1, r.stdout + r.stderr
        assert "library differs: torch CPU capability: here DEFAULT, reference AVX2" in r.stdout
        assert "first difference at record" in r.stdout and "other bits" in r.stdout
    (tmp_path / "bad.jsonl.gz").write_text("no trace")
    r = _run(project, "--trace", tmp_path / "x.jsonl.gz", "--compare", tmp_path / "bad.jsonl.gz")
    assert r.returncode == 2 and "bad.jsonl.gz: unreadable trace" in r.stderr
    assert not (tmp_path / "x.jsonl.gz").exists()


def _pins(project: Path) -> str:
    """The kernel settings the script reports here (the pins apply only on x86-64 CPUs with AVX2 + FMA)."""
    code = "import gcseg, os; print('ATEN_CPU_CAPABILITY=' + str(os.environ.get('ATEN_CPU_CAPABILITY')))"
    return subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, cwd=ROOT).stdout
