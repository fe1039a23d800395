"""`gcseg sweep`: a threshold study with DVC experiments. Validates that KEY is a top-level tau of params.yaml
and every VALUE is in the range the reading stages accept, queues `dvc exp run --queue -S KEY=VALUE -n KEY-VALUE`
per value, runs the queue one experiment at a time (`dvc exp run --run-all -j 1`), then collects AP / AP50 / AP25
of every ablation row and the track statistics (`dvc exp show --json`) into sweep.md, sweep.png and sweep.json.
Not a DVC stage (it drives DVC)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Annotated, Any

import typer

from stages._common import make_app, read_params_file, run_module, user_errors

app = make_app(__doc__ or "")

_NOT_STAGES = {"_common", "cli", "__main__", "sweep", "evaluate", "predict", "report", "unseen"}


def stage_models() -> dict[str, Any]:
    """Every stage module's PARAMS_MODEL, by module name (imports only the light stage modules)."""
    import stages

    out = {}
    for info in sorted(pkgutil.iter_modules(stages.__path__), key=lambda i: i.name):
        if info.name in _NOT_STAGES:
            continue
        try:
            mod = importlib.import_module(f"stages.{info.name}")
        except ImportError:  # a stage whose optional dependency is missing cannot read the key here either
            continue
        model = getattr(mod, "PARAMS_MODEL", None)
        if model is not None:
            out[info.name] = model
    return out


def validate_sweep(key: str, raw_values: list[str], params_data: dict[str, Any],
                   models: dict[str, Any]) -> list[float | int]:
    """The values parsed and checked against the field of every stage that reads `key` (pydantic bounds)."""
    from pydantic import TypeAdapter, ValidationError

    from gcseg.errors import ConfigError

    taus = sorted(k for k, v in params_data.items() if k.startswith("tau_") and not isinstance(v, (dict, list)))
    if key not in taus:
        raise ConfigError(f"{key!r} is not a top-level tau in params.yaml", fix=f"sweep one of {', '.join(taus)}")
    if not raw_values:
        raise ConfigError("no values to sweep", fix=f"e.g. gcseg sweep {key} 0.5 0.6 0.7")
    readers = {name: m.model_fields[key] for name, m in models.items() if key in m.model_fields}
    if not readers:
        raise ConfigError(f"no stage reads {key!r}: sweeping it would change nothing",
                          fix="declare it in a stage's params model and dvc.yaml `params:`")
    values: list[float | int] = []
    for raw in raw_values:
        parsed = None
        for stage, info in readers.items():
            adapter = TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)
            try:
                parsed = adapter.validate_python(raw)
            except ValidationError as exc:
                msg = exc.errors()[0]["msg"]
                raise ConfigError(f"{key}={raw}: {msg} (as stage {stage} reads it)",
                                  fix=f"give values in the range {stage} accepts") from None
        if isinstance(parsed, bool) or not isinstance(parsed, (int, float)):
            raise ConfigError(f"{key}={raw} is not a number", fix=f"e.g. gcseg sweep {key} 0.5 0.6 0.7")
        values.append(parsed)
    if len(set(values)) != len(values):
        raise ConfigError(f"duplicate values in {raw_values}", fix="give each value once")
    return values


@app.command()
@user_errors
def main(
    key: Annotated[str, typer.Argument(help="Top-level tau of params.yaml: tau_iou, tau_dorm, tau_conf, tau_contain.")],
    values: Annotated[list[str], typer.Argument(help="Explicit values, e.g. 0.5 0.6 0.7 0.8 0.9.")],
    run: Annotated[bool, typer.Option("--run/--no-run", help="Queue and run the experiments (--no-run: only "
                                      "collect finished ones).")] = True,
    rerun: Annotated[bool, typer.Option("--rerun", help="Run this sweep's finished experiments again.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Experiments at a time (1 per GPU).")] = 1,
    out: Annotated[Path | None, typer.Option("--out", help="Report folder (default metrics/sweeps/<key>).")] = None,
    params: Annotated[Path, typer.Option("--params", help="params.yaml of the repository.")] = Path("params.yaml"),
    repo: Annotated[Path, typer.Option("--repo", help="Git + DVC repository root.")] = Path("."),
) -> None:
    """Threshold study: queue DVC experiments over values of a tau and plot AP."""
    from gcseg.errors import ConfigError
    from gcseg.sweep import run_sweep, sweep_markdown, write_report

    if params.is_absolute():
        raise ConfigError("--params must be relative to the repository (DVC's -S names a file in it)",
                          path=params, fix="e.g. --params params.yaml")
    values_ok = validate_sweep(key, values, read_params_file(repo / params), stage_models())
    points = run_sweep(key, values_ok, cwd=repo, run=run, rerun=rerun, jobs=jobs, params_file=params.as_posix(),
                       echo=typer.echo)
    dest = out if out is not None else repo / "metrics" / "sweeps" / key
    paths = write_report(dest, key, points)
    typer.echo(sweep_markdown(key, points).rstrip("\n"))
    typer.echo(f"table -> {paths['md']}; plot -> {paths['png']}; data -> {paths['json']}")
    bad = [p.name for p in points if p.status != "success"]
    if bad:
        typer.echo(f"warning: {len(bad)} experiment(s) without results: {', '.join(bad)} "
                   "(see `dvc queue logs <name>`)", err=True)


if __name__ == "__main__":
    run_module(app)
