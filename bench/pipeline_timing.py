"""Time the whole default pipeline: `dvc repro -f` (every stage recomputed), per-stage seconds read from
dvc's own output ("Running stage '<name>':" lines, timestamped as they arrive), written to
metrics/pipeline_timing.json for bench/bench_scale.py and BENCHMARKS.md.

    python -m bench pipeline            # or scripts/time_repro.sh
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNNING = re.compile(r"Running stage '([^']+)'")


def _headline(root: Path) -> dict[str, Any]:
    """The eval stage's result, if any, for the log (AP / AP50 / AP25 per row of the ablation)."""
    path = root / "metrics" / "eval.json"
    if not path.is_file():
        return {}
    try:
        return {"eval": json.loads(path.read_text())}
    except json.JSONDecodeError:
        return {}


def _cpu_seconds_by_pid(root_pid: int) -> dict[int, float]:
    """utime + stime (s) of every live descendant of `root_pid` (Linux /proc; {} elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        cpu[int(d)] = (int(fields[11]) + int(fields[12])) / tick
    out = {}
    for pid in cpu:
        p = pid
        while p in parent and p != root_pid and p > 1:
            p = parent[p]
        if p == root_pid and pid != root_pid:
            out[pid] = cpu[pid]
    return out


class _CpuSampler(threading.Thread):
    """Every `period` s, the CPU seconds of each process under dvc, credited to the stage running when the
    process was first seen (stage commands are dvc's children). The last < `period` s of a process that exits
    between samples is missed: a lower bound, robust to other jobs sharing the cores (wall time is not)."""

    def __init__(self, root_pid: int, period: float = 1.0):
        super().__init__(daemon=True)
        self.root_pid, self.period = root_pid, period
        self.stage = ""
        self.owner: dict[int, str] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for pid, c in _cpu_seconds_by_pid(self.root_pid).items():
                self.owner.setdefault(pid, self.stage)
                self.last[pid] = c
            self.stop.wait(self.period)

    def by_stage(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, c in list(self.last.items()):
            out[self.owner[pid]] = out.get(self.owner[pid], 0.0) + c
        return {k: round(v, 1) for k, v in out.items() if k}


def time_repro(root: Path = ROOT, out: Path | None = None, force: bool = True,
               targets: list[str] | None = None) -> dict[str, Any]:
    """Run `dvc repro [-f] [targets]` in `root` with the project's venv first on PATH; return and write the
    timing record {total_s, stages_s, slowest_stage, returncode, cores, ...}."""
    out = out or root / "metrics" / "pipeline_timing.json"
    venv_bin = root / ".venv" / "bin"
    dvc = str(venv_bin / "dvc") if (venv_bin / "dvc").is_file() else shutil.which("dvc") or "dvc"
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [dvc, "repro", *(["-f"] if force else []), *(targets or [])]
    if force:
        # training checkpoints persist across runs (a killed stage resumes from them); a finished one would make a
        # forced rerun "resume" at its last epoch in seconds, so a from-scratch timing removes them first
        for ckpt in sorted((root / "data" / "models").glob("*/checkpoints")):
            shutil.rmtree(ckpt)
    starts: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    assert proc.stdout is not None
    sampler = _CpuSampler(proc.pid)
    sampler.start()

    def record(rc: int | None) -> dict[str, Any]:
        now = time.perf_counter() - t0
        ends = [t for _, t in starts[1:]] + [now]
        stages = {name: round(end - start, 1) for (name, start), end in zip(starts, ends)}
        rec = {"command": " ".join(["dvc", *cmd[1:]]), "returncode": rc, "complete": rc is not None,
               "total_s": round(now, 1), "stages_s": stages, "stages_cpu_s": sampler.by_stage(),
               "slowest_stage": max(stages, key=stages.get) if stages else "", "cores": os.cpu_count() or 0,
               "load_average_1min_at_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else -1.0,
               "note": "wall seconds; a stage's time runs from its 'Running stage' line to the next one (includes "
                       "dvc's hashing and caching of its outputs). stages_cpu_s: CPU seconds of the stage's "
                       "processes (sampled each second: a lower bound), unaffected by other jobs on the machine.",
               **_headline(root)}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
        return rec

    for line in proc.stdout:
        sys.stdout.write(line)
        m = RUNNING.search(line)
        if m:
            sampler.stage = m.group(1)
            starts.append((m.group(1), time.perf_counter() - t0))
            record(None)  # a partial record survives an interrupted run
    rc = proc.wait()
    sampler.stop.set()
    sampler.join()
    return record(rc)


if __name__ == "__main__":
    rec = time_repro()
    print(json.dumps({k: rec[k] for k in ("total_s", "stages_s", "slowest_stage", "returncode")}, indent=2))
    sys.exit(rec["returncode"])
