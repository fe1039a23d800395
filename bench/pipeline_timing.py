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


def time_repro(root: Path = ROOT, out: Path | None = None, force: bool = True,
               targets: list[str] | None = None) -> dict[str, Any]:
    """Run `dvc repro [-f] [targets]` in `root` with the project's venv first on PATH; return and write the
    timing record {total_s, stages_s, slowest_stage, returncode, cores, ...}."""
    out = out or root / "metrics" / "pipeline_timing.json"
    venv_bin = root / ".venv" / "bin"
    dvc = str(venv_bin / "dvc") if (venv_bin / "dvc").is_file() else shutil.which("dvc") or "dvc"
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [dvc, "repro", *(["-f"] if force else []), *(targets or [])]
    starts: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        m = RUNNING.search(line)
        if m:
            starts.append((m.group(1), time.perf_counter() - t0))
    rc = proc.wait()
    total = time.perf_counter() - t0
    ends = [t for _, t in starts[1:]] + [total]
    stages = {name: round(end - start, 1) for (name, start), end in zip(starts, ends)}
    record = {"command": " ".join(["dvc", *cmd[1:]]), "returncode": rc, "total_s": round(total, 1),
              "stages_s": stages, "slowest_stage": max(stages, key=stages.get) if stages else "",
              "cores": os.cpu_count() or 0,
              "note": "wall seconds; a stage's time runs from its 'Running stage' line to the next one (includes "
                      "dvc's hashing and caching of its outputs)",
              **_headline(root)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


if __name__ == "__main__":
    rec = time_repro()
    print(json.dumps({k: rec[k] for k in ("total_s", "stages_s", "slowest_stage", "returncode")}, indent=2))
    sys.exit(rec["returncode"])
