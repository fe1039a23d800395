"""Run the benchmark modules and write one JSON file; render it as BENCHMARKS.md.

Each `bench/bench_<area>.py` exposes `run(quick: bool) -> dict` of figures. Ratios are measured side by side
in one process run; absolute seconds are context for this machine only (2 CPU cores unless stated).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import pkgutil
import sys
import time
import traceback
from pathlib import Path

import typer

from gcseg.determinism import cpu_name

app = typer.Typer(help="gcseg benchmarks", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "scipy", "h5py", "dvc", "MinkowskiEngine", "sam2", "segment_anything"):
        try:
            mod = importlib.import_module(name)
            out[name] = str(getattr(mod, "__version__", "installed"))
        except Exception:  # noqa: BLE001 - a missing optional package is a fact to record, not an error
            out[name] = "not installed"
    return out


def _machine() -> dict[str, str | int]:
    mem = 0
    try:
        mem = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]) // 1024
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu_name(), "cores": os.cpu_count() or 0, "memory_mb": mem, "platform": platform.platform()}


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


@app.command()
def run(out: Path = typer.Option(Path("metrics/bench.json"), help="JSON file to write (merged by area)."),
        quick: bool = typer.Option(False, help="Small sizes: seconds per area (used by tests)."),
        only: list[str] = typer.Option([], help="Run only these areas, e.g. --only lifting --only eval.")) -> None:
    """Run every bench/bench_*.py (or --only some) and write their figures to OUT."""
    from gcseg.atomic import write_text

    results = json.loads(out.read_text()) if out.is_file() else {}
    results.setdefault("areas", {})
    for name in discover():
        area = name.removeprefix("bench_")
        if only and area not in only:
            continue
        typer.echo(f"[bench] {area} ...", err=True)
        t0 = time.perf_counter()
        try:
            figures = importlib.import_module(f"bench.{name}").run(quick)
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - one broken area must not hide the others' numbers
            traceback.print_exc()
            figures, status = {"error": f"{type(exc).__name__}: {exc}"}, "failed"
        results["areas"][area] = {"status": status, "quick": quick, "wall_s": round(time.perf_counter() - t0, 2),
                                  "figures": figures, "cpu": str(_machine()["cpu"])}  # areas merge across runs
        # written after every area: an interrupted run (the long-scan areas take tens of minutes) keeps the rest
        results["machine"] = _machine()
        results["versions"] = _versions()
        write_text(out, json.dumps(results, indent=2, sort_keys=True) + "\n")
    typer.echo(f"[bench] wrote {out}", err=True)
    if any(a["status"] != "ok" for a in results["areas"].values()):
        sys.exit(1)


@app.command()
def report(bench: Path = typer.Option(Path("metrics/bench.json")),
           out: Path = typer.Option(Path("BENCHMARKS.md")),
           merge: list[Path] = typer.Option([], help="More bench JSON files whose areas are added (e.g. "
                                                     "metrics/bench_gpu.json from bench/gpu_check.sh); "
                                                     "metrics/bench_gpu.json is merged by default when present.")
           ) -> None:
    """Render BENCH (from `run`) as a markdown page with the machine, versions and every figure."""
    from bench.render import render_markdown
    from gcseg.atomic import write_text

    data = json.loads(bench.read_text())
    gpu = bench.parent / "bench_gpu.json"
    for extra in merge or ([gpu] if gpu.is_file() else []):
        data.setdefault("areas", {}).update(json.loads(extra.read_text()).get("areas", {}))
    write_text(out, render_markdown(data))
    typer.echo(f"wrote {out}")


@app.command()
def pipeline(force: bool = typer.Option(True, help="dvc repro -f (recompute every stage); --no-force: only "
                                                   "what changed."),
             out: Path = typer.Option(Path("metrics/pipeline_timing.json"))) -> None:
    """Time the whole default pipeline (`dvc repro -f`) per stage into OUT (read by bench_scale)."""
    from bench.pipeline_timing import time_repro

    rec = time_repro(out=out.resolve(), force=force)
    typer.echo(f"[bench] pipeline {rec['total_s']} s (slowest: {rec['slowest_stage']}); wrote {out}", err=True)
    if rec["returncode"] != 0:
        sys.exit(rec["returncode"])


if __name__ == "__main__":
    app()
