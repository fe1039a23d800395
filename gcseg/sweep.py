"""Threshold studies with DVC experiments: queue one experiment per value of a top-level tau, run the queue, then
collect AP / AP50 / AP25 of every ablation row (metrics/eval.json) and the track statistics
(metrics/sam2_track.json) from ``dvc exp show --json`` into a Markdown table and a plot.

Experiments are named ``<key>-<value>`` (e.g. ``tau_iou-0.6``) on the current Git commit, so a second sweep over
overlapping values reuses finished experiments. Queued experiments run in a temporary copy of the *committed*
tree plus uncommitted changes to tracked files (DVC's stash): untracked files are not in it.

The collection part (:func:`collect`, :func:`sweep_markdown`, :func:`plot_sweep`, :func:`write_report`) is pure:
it takes the parsed ``dvc exp show --json`` payload (DVC 3.x: a list of baseline commits, each with
``experiments: [{name, revs: [{data: {params, metrics}}], executor: {state}}]``).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gcseg.atomic import write_bytes, write_text
from gcseg.errors import ArtifactError, InputError
from gcseg.report.tables import pct

EVAL_METRICS = "metrics/eval.json"
TRACK_METRICS = "metrics/sam2_track.json"
ROWS: tuple[str, ...] = ("lift_only", "stage1", "stage2", "stage3")
FIGURES: tuple[str, ...] = ("AP", "AP50", "AP25")
# Track statistics shown next to AP (path inside metrics/sam2_track.json -> column title).
TRACK_COLUMNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("track_stats", "objects_created"), "tracks"),
    (("track_stats", "mean_track_length_frames"), "track length"),
    (("consistency", "tracked_keyframes", "consistency"), "consistency"),
    (("consistency", "gain_over_stage1"), "gain vs Stage 1"),
)


def format_value(value: float | int) -> str:
    """The value as written in `-S key=value` and in experiment names: ``0.5``, ``3`` (shortest round trip)."""
    if isinstance(value, bool):
        raise TypeError("a threshold cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def experiment_name(key: str, value: float | int, suffix: str = "") -> str:
    """``tau_iou-0.6``: a valid Git ref component, one per (key, value); `suffix` tells apart the same sweep under
    further settings (gcseg.study --set)."""
    return f"{key}-{format_value(value)}{suffix}"


def setting_holds(params: Any, setting: str) -> bool:
    """Whether a parsed params file holds a ``dotted.key=value`` setting (the value read as YAML, as DVC's -S
    does; numbers compared as numbers). Hydra's override prefixes, which DVC's -S takes, count as the key they
    set: ``+key`` / ``++key`` (add a key params.yaml lacks) hold as ``key``, ``~key`` (delete) where it is absent."""
    key, _, raw = setting.partition("=")
    if key.startswith("~"):
        return _dig(params, key[1:].split(".")) is None
    key = key.lstrip("+")
    want, got = yaml.safe_load(raw), _dig(params, key.split("."))
    if _num(want) is not None and _num(got) is not None:
        return abs(float(want) - float(got)) <= 1e-12 * max(1.0, abs(float(want)))
    return bool(want == got)


@dataclass(frozen=True)
class SweepPoint:
    """One experiment of a sweep. status: success | failed | running | queued | missing (not found)."""

    value: float | int
    name: str
    status: str
    rows: dict[str, dict[str, float | None]] = field(default_factory=dict)  # row -> {AP, AP50, AP25}
    track: dict[str, float | None] = field(default_factory=dict)  # column title -> value

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "name": self.name, "status": self.status, "rows": self.rows,
                "track": self.track}


def _dig(tree: Any, path: Sequence[str]) -> Any:
    for k in path:
        if not isinstance(tree, Mapping) or k not in tree:
            return None
        tree = tree[k]
    return tree


def _metrics_file(data: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    entry = _dig(data, ("metrics", name))
    if not isinstance(entry, Mapping) or entry.get("error"):
        return None
    d = entry.get("data")
    return d if isinstance(d, Mapping) else None


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def experiments_by_name(payload: Any) -> dict[str, dict[str, Any]]:
    """Experiment name -> {"state", "data"} over every baseline in a ``dvc exp show --json`` payload."""
    if not isinstance(payload, list):
        raise ArtifactError("`dvc exp show --json` did not return a list of commits",
                            fix="use DVC 3.x (tested with 3.67)")
    out: dict[str, dict[str, Any]] = {}
    for commit in payload:
        for exp in (commit or {}).get("experiments") or []:
            revs = exp.get("revs") or []
            name = exp.get("name") or (revs[0].get("name") if revs else None)
            if not name:
                continue
            state = _dig(exp, ("executor", "state")) or "success"
            data = (revs[0].get("data") if revs else None) or {}
            if revs and revs[0].get("error"):
                state = "failed"
            out[name] = {"state": str(state), "data": data}
    return out


def collect(payload: Any, key: str, values: Sequence[float | int], *, params_file: str = "params.yaml",
            eval_metrics: str = EVAL_METRICS, track_metrics: str = TRACK_METRICS, suffix: str = "",
            settings: Sequence[str] = (), perfect_ranking: bool = False) -> list[SweepPoint]:
    """The sweep's experiments (by name ``<key>-<value><suffix>``) out of a parsed ``dvc exp show --json`` payload.

    An experiment whose params do not hold `key` = value, or one of `settings` (``dotted.key=value``), counts as
    missing (renamed by hand, or run under other settings). perfect_ranking: also the eval stage's perfect-ranking
    diagnostic of each row, as rows ``perfect_<row>`` (experiments of commits before it have none)."""
    exps = experiments_by_name(payload)
    points = []
    for v in values:
        name = experiment_name(key, v, suffix)
        exp = exps.get(name)
        if exp is None:
            points.append(SweepPoint(value=v, name=name, status="missing"))
            continue
        data = exp["data"]
        params = _dig(data, ("params", params_file, "data"))
        got = _dig(params, (key,))
        if got is not None and _num(got) is not None and abs(float(got) - float(v)) > 1e-12:
            points.append(SweepPoint(value=v, name=name, status="missing"))
            continue
        if settings and not all(setting_holds(params, st) for st in settings):
            points.append(SweepPoint(value=v, name=name, status="missing"))
            continue
        ev = _metrics_file(data, eval_metrics) or {}
        rows = {r: {f: _num(_dig(ev, (r, f))) for f in FIGURES} for r in ROWS if isinstance(ev.get(r), Mapping)}
        own = ev.get("own_labels")  # eval.own_labels: the same rows on the train scenes, as own_<row>
        if isinstance(own, Mapping):
            rows.update({f"own_{r}": {f: _num(_dig(own, (r, f))) for f in FIGURES}
                         for r in own if isinstance(own.get(r), Mapping)})
        ranked = _dig(ev, ("diagnostics", "perfect_ranking", "rows")) if perfect_ranking else None
        if isinstance(ranked, Mapping):
            rows.update({f"perfect_{r}": {f: _num(_dig(ranked, (r, f))) for f in FIGURES}
                         for r in ranked if isinstance(ranked.get(r), Mapping)})
        tr = _metrics_file(data, track_metrics)
        track = {title: _num(_dig(tr, path)) for path, title in TRACK_COLUMNS} if tr is not None else {}
        state = exp["state"]
        if state == "success" and not rows:
            state = "no metrics"
        points.append(SweepPoint(value=v, name=name, status=state, rows=rows, track=track))
    return points


def _plain(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.3f}"


def sweep_markdown(key: str, points: Sequence[SweepPoint]) -> str:
    """One table per ablation row present (value, AP, AP50, AP25), then the track statistics if any."""
    lines = [f"# Sweep over `{key}`", "",
             f"{len(points)} experiment(s) `{points[0].name if points else key}` ...; AP in % "
             "(class-agnostic, ScanNet protocol, val scenes).", ""]
    rows = [r for r in ROWS if any(r in p.rows for p in points)]
    rows += sorted({r for p in points for r in p.rows} - set(rows))
    if rows:
        head = "| " + key + " | " + " | ".join(f"{r} {f}" for r in rows for f in FIGURES) + " | status |"
        lines += [head, "|" + "---:|" * (1 + len(rows) * len(FIGURES)) + "---|"]
        for p in points:
            cells = [pct(p.rows.get(r, {}).get(f)) for r in rows for f in FIGURES]
            lines.append(f"| {format_value(p.value)} | " + " | ".join(cells) + f" | {p.status} |")
    else:
        lines.append("No experiment has metrics yet: " + ", ".join(f"{p.name} ({p.status})" for p in points))
    titles = [t for _, t in TRACK_COLUMNS if any(t in p.track for p in points)]
    if titles:
        lines += ["", f"Track statistics ({TRACK_METRICS}):", "",
                  f"| {key} | " + " | ".join(titles) + " |", "|" + "---:|" * (1 + len(titles))]
        for p in points:
            lines.append(f"| {format_value(p.value)} | " + " | ".join(_plain(p.track.get(t)) for t in titles) + " |")
    return "\n".join(lines) + "\n"


def plot_sweep(key: str, points: Sequence[SweepPoint]) -> bytes:
    """PNG bytes: AP / AP50 / AP25 (one panel each) against the value, one line per ablation row.
    Deterministic (Agg backend, no metadata)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), dpi=100)
    axes = fig.subplots(1, len(FIGURES), sharey=True)
    rows = [r for r in ROWS if any(r in p.rows for p in points)]
    for ax, fig_name in zip(axes, FIGURES):
        for r in rows:
            xs = [float(p.value) for p in points if p.rows.get(r, {}).get(fig_name) is not None]
            ys = [100 * p.rows[r][fig_name] for p in points if p.rows.get(r, {}).get(fig_name) is not None]
            if xs:
                ax.plot(xs, ys, marker="o", label=r)
        ax.set_title(fig_name)
        ax.set_xlabel(key)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("%")
    if rows:
        axes[-1].legend(loc="best", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def write_report(out_dir: str | Path, key: str, points: Sequence[SweepPoint]) -> dict[str, Path]:
    """``sweep.md``, ``sweep.png`` and ``sweep.json`` (the points) in `out_dir`, each written atomically."""
    out_dir = Path(out_dir)
    paths = {"md": out_dir / "sweep.md", "png": out_dir / "sweep.png", "json": out_dir / "sweep.json"}
    write_text(paths["json"], json.dumps({"key": key, "points": [p.to_dict() for p in points]}, indent=2,
                                         sort_keys=True, allow_nan=False) + "\n")
    write_bytes(paths["png"], plot_sweep(key, points))
    write_text(paths["md"], sweep_markdown(key, points))
    return paths


# --- talking to DVC -------------------------------------------------------------------------------------------

def dvc_command() -> list[str]:
    """DVC of this interpreter's environment (`python -m dvc`): the one gcseg was installed with."""
    return [sys.executable, "-m", "dvc"]


def dvc_env() -> dict[str, str]:
    """The environment with this interpreter's bin folder first on PATH: DVC's queue workers start `dvc` by
    name, which must be the DVC of this environment (else they fail to spawn and the queue waits forever)."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def _run(cmd: Sequence[str], cwd: Path, capture: bool = False) -> str:
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, check=False, text=True, env=dvc_env(),
                              stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    except FileNotFoundError as exc:
        raise InputError(f"cannot run {cmd[0]}", fix="install dvc (pip install dvc) in this environment") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()[-3:] if capture else []
        raise ArtifactError(f"`{' '.join(['dvc', *cmd[3:]])}` failed (exit {proc.returncode})"
                            + (": " + " / ".join(detail) if detail else ""), path=cwd,
                            fix="see the DVC message above; the repository must be a Git + DVC repository")
    return proc.stdout or ""


def head_commit(cwd: Path) -> str | None:
    """The commit checked out in cwd (None outside a Git repository)."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, check=False, text=True, capture_output=True)
    except FileNotFoundError:
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def exp_show(cwd: Path, rev: str | None = None) -> Any:
    """Parsed ``dvc exp show --json`` of a baseline commit (`rev`; None = HEAD) and its experiments."""
    text = _run([*dvc_command(), "exp", "show", "--json", *(["--rev", rev] if rev else [])], cwd, capture=True)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ArtifactError("`dvc exp show --json` printed no JSON", path=cwd, fix="check the DVC version") from exc


def queue_commands(key: str, values: Sequence[float | int], *, params_file: str = "params.yaml",
                   extra: Sequence[str] = (), suffix: str = "") -> list[list[str]]:
    """``dvc exp run --queue -S <key>=<v> [-S <extra> ...] -n <key>-<v>`` per value (explicit values: never DVC's
    range()); `extra` are further ``key=value`` settings every experiment gets."""
    prefix = "" if params_file == "params.yaml" else f"{params_file}:"
    more = [x for e in extra for x in ("-S", f"{prefix}{e}")]
    return [[*dvc_command(), "exp", "run", "--queue", "-S", f"{prefix}{key}={format_value(v)}", *more,
             "-n", experiment_name(key, v, suffix)] for v in values]


def run_sweep(key: str, values: Sequence[float | int], *, cwd: str | Path = ".", run: bool = True,
              rerun: bool = False, jobs: int = 1, params_file: str = "params.yaml", extra: Sequence[str] = (),
              echo: Any = print, suffix: str = "", perfect_ranking: bool = False) -> list[SweepPoint]:
    """Queue the missing experiments, run the queue (``dvc exp run --run-all -j jobs``, blocks until every
    queued experiment finished) and collect. run=False: collect only. rerun: remove this sweep's finished
    experiments first (``dvc exp remove``) so that they run again. The experiments are queued on the commit
    checked out at the start and collected from that commit, also when a commit lands while they run (DVC files
    experiments under the commit they were queued on; a new HEAD has none). perfect_ranking: as collect."""
    cwd = Path(cwd)
    names = [experiment_name(key, v, suffix) for v in values]
    baseline = None
    if run:
        baseline = head_commit(cwd)
        existing = experiments_by_name(exp_show(cwd, baseline))
        if rerun:
            old = [n for n in names if n in existing]
            if old:
                _run([*dvc_command(), "exp", "remove", *old], cwd)
                existing = {k: v for k, v in existing.items() if k not in old}
        pending = [(v, n) for v, n in zip(values, names) if existing.get(n, {}).get("state") != "success"]
        todo = [v for v, _ in pending]
        reuse = [n for n in names if existing.get(n, {}).get("state") == "success"]
        if reuse:
            echo(f"reusing finished experiment(s) {', '.join(reuse)} (--rerun to run them again)")
        stale = [n for _, n in pending if n in existing]
        if stale:  # failed or interrupted runs of an earlier sweep: their names must be free to queue again
            _run([*dvc_command(), "exp", "remove", *stale], cwd)
        for cmd in queue_commands(key, todo, params_file=params_file, extra=extra, suffix=suffix):
            echo("queue: dvc " + " ".join(cmd[3:]))
            _run(cmd, cwd)
        if todo:
            echo(f"running {len(todo)} experiment(s), {jobs} at a time: dvc exp run --run-all -j {jobs}")
            _run([*dvc_command(), "exp", "run", "--run-all", "-j", str(jobs)], cwd)
        now = head_commit(cwd)
        if baseline and now != baseline:
            echo(f"note: HEAD moved from {baseline[:7]} to {(now or '?')[:7]} while the experiments ran; collecting "
                 f"those of {baseline[:7]}")
    return collect(exp_show(cwd, baseline), key, values, params_file=params_file, suffix=suffix, settings=extra,
                   perfect_ranking=perfect_ranking)
