"""Curves of the report: precision-recall per ablation row, training losses per stage, AP against swept
thresholds. Loaders return plain lists; figure builders return plotly figure specs as plain dicts (what
``Plotly.newPlot`` takes), so the HTML is a deterministic JSON dump."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcseg.errors import ArtifactError
from gcseg.report.inputs import ROW_TITLES, ROWS, TRAIN_STAGES, finite, load_json, read_columns

# One fixed colour per ablation row / training stage (matplotlib's tab10, so PNGs and HTML agree).
ROW_COLORS: dict[str, str] = {"lift_only": "#7f7f7f", "stage1": "#1f77b4", "stage2": "#ff7f0e",
                              "stage3": "#2ca02c", "maskclustering": "#d62728", "sai3d_keyframes": "#9467bd",
                              "sai3d_tracked": "#8c564b"}
FIGURES: tuple[str, ...] = ("AP", "AP50", "AP25")


@dataclass(frozen=True)
class Curve:
    """One line: x and y values with a name."""

    name: str
    x: list[float]
    y: list[float]


@dataclass(frozen=True)
class Sweep:
    """One threshold study (metrics/sweeps/<key>/sweep.json of gcseg.sweep)."""

    key: str
    values: list[float]
    ap: dict[str, list[float | None]]  # row -> AP per value (None: experiment without result)
    status: list[str]


def load_pr_curves(folder: Path) -> dict[str, Curve]:
    """``<folder>/<row>.csv`` (recall, precision at IoU 0.5, from stages/eval) of every row present."""
    fix = "run `dvc repro eval` (writes metrics/eval/pr/<row>.csv)"
    if not Path(folder).is_dir():
        raise ArtifactError("no PR-curve folder", path=folder, fix=fix)
    names = [r for r in ROWS if (folder / f"{r}.csv").is_file()]
    names += sorted(p.stem for p in Path(folder).glob("*.csv") if p.stem not in ROWS)
    if not names:
        raise ArtifactError("no <row>.csv in the PR-curve folder", path=folder, fix=fix)
    out = {}
    for name in names:
        cols = read_columns(folder / f"{name}.csv", fix)
        if "recall" not in cols or "precision" not in cols:
            raise ArtifactError("expected columns recall,precision", path=folder / f"{name}.csv", fix=fix)
        out[name] = Curve(name, cols["recall"], cols["precision"])
    return out


def load_train_curves(metrics_dir: Path, metric: str = "train/loss") -> dict[str, Curve]:
    """DVCLive ``<metrics_dir>/<stage>_train/plots/metrics/<metric>.tsv`` (step, value) of every stage present;
    x = epoch number counted on from the end of the previous stage (fine-tuning continues the run)."""
    out: dict[str, Curve] = {}
    offset = 0.0
    for stage in TRAIN_STAGES:
        path = metrics_dir / f"{stage}_train" / "plots" / "metrics" / f"{metric}.tsv"
        if not path.is_file():
            continue
        cols = read_columns(path, f"run `dvc repro {stage}_train`", delimiter="\t")
        value_col = metric.rsplit("/", 1)[-1]
        if "step" not in cols or value_col not in cols:
            raise ArtifactError(f"expected columns step,{value_col}", path=path, fix=f"rerun {stage}_train")
        steps = [offset + s + 1 for s in cols["step"]]
        out[stage] = Curve(stage, steps, cols[value_col])
        offset = steps[-1] if steps else offset
    if not out:
        raise ArtifactError(f"no training curves ({metric}.tsv) under <stage>_train/plots/metrics/",
                            path=metrics_dir, fix="run `dvc repro stage1_train` (DVCLive writes them)")
    return out


def load_sweeps(metrics_dir: Path) -> list[Sweep]:
    """Every ``<metrics_dir>/sweeps/<key>/sweep.json`` (written by `gcseg sweep`), sorted by key."""
    folder = metrics_dir / "sweeps"
    files = sorted(folder.glob("*/sweep.json")) if folder.is_dir() else []
    if not files:
        raise ArtifactError("no sweep results", path=folder,
                            fix="run e.g. `gcseg sweep tau_iou 0.5 0.6 0.7 0.8 0.9` (optional)")
    sweeps = []
    for path in files:
        data = load_json(path, "rerun `gcseg sweep <key> ...`")
        points = data.get("points") if isinstance(data, dict) else None
        if not isinstance(points, list) or not isinstance(data.get("key"), str):
            raise ArtifactError("expected {key, points: [...]}", path=path, fix="rerun `gcseg sweep`")
        points = sorted((p for p in points if finite(p.get("value")) is not None), key=lambda p: p["value"])
        rows = [r for r in ROWS if any(r in (p.get("rows") or {}) for p in points)]
        ap = {r: [finite(((p.get("rows") or {}).get(r) or {}).get("AP")) for p in points] for r in rows}
        sweeps.append(Sweep(data["key"], [float(p["value"]) for p in points], ap,
                            [str(p.get("status", "")) for p in points]))
    return sweeps


def _layout(title: str, xtitle: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    # title at the left: plotly's mode bar sits at the top right
    return {"title": {"text": title, "x": 0.01, "xanchor": "left"},
            "xaxis": {"title": {"text": xtitle}, "zeroline": False},
            "yaxis": {"title": {"text": ytitle}, "zeroline": False}, "height": 380,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "legend": {"orientation": "h", "y": -0.2},
            "template": None, **extra}


def _line(c: Curve, title: str, color: str | None, **extra: Any) -> dict[str, Any]:
    trace = {"type": "scatter", "mode": "lines", "name": title, "x": [round(v, 6) for v in c.x],
             "y": [round(v, 6) for v in c.y], **extra}
    trace["line"] = {"width": 2, **({"color": color} if color else {})}
    return trace


def pr_figure(curves: dict[str, Curve]) -> dict[str, Any]:
    """Precision against recall at IoU 0.5, one line per ablation row."""
    data = [_line(c, ROW_TITLES.get(n, n), ROW_COLORS.get(n)) for n, c in curves.items()]
    for t in data:
        t["line"]["shape"] = "hv"  # precision is a step function of recall
    return {"data": data, "layout": _layout("Precision-recall at IoU 0.5 (val scenes)", "recall", "precision",
                                            xaxis={"title": {"text": "recall"}, "range": [0, 1.02]},
                                            yaxis={"title": {"text": "precision"}, "range": [0, 1.02]})}


def train_figure(curves: dict[str, Curve], metric: str = "train/loss") -> dict[str, Any]:
    """Training loss per epoch, stages one after another."""
    data = [_line(c, f"{c.name} ({metric})", ROW_COLORS.get(c.name), mode="lines+markers") for c in curves.values()]
    return {"data": data, "layout": _layout("Training loss (Stage 1, then fine-tuning Stages 2 and 3)",
                                            "epoch (cumulative over stages)", metric)}


def sweep_figure(sweep: Sweep) -> dict[str, Any]:
    """AP (%) of every ablation row against the swept threshold's values."""
    data = [{"type": "scatter", "mode": "lines+markers", "name": ROW_TITLES.get(r, r), "x": sweep.values,
             "y": [None if v is None else round(100 * v, 4) for v in ys], "line": {"color": ROW_COLORS.get(r)}}
            for r, ys in sweep.ap.items()]
    return {"data": data, "layout": _layout(f"AP against {sweep.key}", sweep.key, "AP (%)")}
