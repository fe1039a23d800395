"""The pipeline as a whole: the no-op `dvc repro` (everything up to date) and the whole default pipeline's time,
read from metrics/pipeline_timing.json (written by `python -m bench pipeline` / scripts/time_repro.sh, which runs
`dvc repro -f` and times every stage from dvc's output). Cheap: `python -m bench run --only pipeline` after a
timing run refreshes BENCHMARKS.md's figures. Target: the whole default pipeline under 15 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _noop_repro() -> dict[str, float | str]:
    """`dvc repro` when everything is up to date (the cost of a rerun that has nothing to do). Measured only
    when `dvc status` says the pipeline is clean, so the benchmark never recomputes a stage."""
    dvc = ROOT / ".venv" / "bin" / "dvc"
    dvc_cmd = str(dvc) if dvc.is_file() else shutil.which("dvc")
    if not dvc_cmd or not (ROOT / "dvc.lock").is_file():
        return {"noop_repro_note": "skipped: no dvc.lock (run `dvc repro` once first)"}
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    st = subprocess.run([dvc_cmd, "status", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    status_s = time.perf_counter() - t0
    if "lock" in (st.stderr + st.stdout).lower():
        return {"noop_repro_note": "skipped: another dvc command holds the repository lock"}
    if st.returncode != 0:
        return {"noop_dvc_status_s": round(status_s, 2),
                "noop_repro_note": "skipped: `dvc status` reports changed stages (not a no-op here)"}
    t0 = time.perf_counter()
    rp = subprocess.run([dvc_cmd, "repro"], cwd=ROOT, env=env, capture_output=True, text=True)
    if rp.returncode != 0:
        return {"noop_repro_note": f"dvc repro failed: {rp.stderr.strip().splitlines()[-1:]}"}
    return {"noop_dvc_status_s": round(status_s, 2), "noop_repro_s": round(time.perf_counter() - t0, 2)}


def _pipeline() -> dict[str, float | int | str]:
    path = ROOT / "metrics" / "pipeline_timing.json"
    if not path.is_file():
        return {"pipeline_note": "not measured: run `python -m bench pipeline` (dvc repro -f, timed per stage)"}
    t = json.loads(path.read_text())
    out: dict[str, float | int | str] = {"default_repro_cores": t.get("cores", 0)}
    if t.get("complete", True):
        out["default_repro_s"] = t["total_s"]
        out["default_repro_ok"] = "yes" if t.get("returncode", 1) == 0 else "NO"
    else:  # an interrupted timing run: its finished stages only, no total
        out["default_repro_partial_s"] = t["total_s"]
        out["default_repro_ok"] = "interrupted: stages after the last one listed did not run"
    if "load_average_1min_at_end" in t:
        out["default_repro_load_average"] = t["load_average_1min_at_end"]
    for stage, s in t.get("stages_s", {}).items():
        out[f"stage_{stage}_s"] = s
    for stage, s in t.get("stages_cpu_s", {}).items():
        out[f"stage_{stage}_cpu_s"] = s
    if t.get("stages_cpu_s"):
        out["default_repro_cpu_s"] = round(sum(t["stages_cpu_s"].values()), 1)
    if t.get("slowest_stage"):
        out["slowest_stage"] = t["slowest_stage"]
    return out


def run(quick: bool) -> dict[str, float | int | str]:
    """Same in quick and full mode (it measures the repository as it is)."""
    return {**_noop_repro(), **_pipeline()}


if __name__ == "__main__":
    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
