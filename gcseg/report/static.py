"""The report's figures as static PNGs (matplotlib, Agg) for the README and papers: ablation bars, PR curves,
training loss and a five-panel label view per scene. Deterministic bytes: no PNG metadata, fixed sizes/dpi."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.atomic import write_bytes
from gcseg.colors import instance_palette
from gcseg.report.curves import FIGURES, ROW_COLORS, Curve
from gcseg.report.inputs import ROW_TITLES, finite
from gcseg.report.views3d import (LAYER_TITLES, LAYERS, VOID_OPACITY, Layer, SceneViews, scene_bounds, subsample,
                                  view_points)


def _figure(*args: Any, **kwargs: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    write_bytes(path, buf.getvalue())
    return path


def ablation_png(rows: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """Grouped bars: AP / AP50 / AP25 (%) per ablation row."""
    fig, ax = _figure(figsize=(7, 4))
    names = list(rows)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(FIGURES))
    for i, name in enumerate(names):
        vals = [100 * (finite(rows[name].get(f)) or 0.0) for f in FIGURES]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, vals, width, label=ROW_TITLES.get(name, name),
                      color=ROW_COLORS.get(name))
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, FIGURES)
    ax.set_ylabel("%")
    ax.set_title("Class-agnostic AP on the val scenes")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def by_size_png(table: Mapping[str, Any], path: Path) -> Path:
    """Grouped bars: % of the GT objects each row finds (IoU > 0.5) per object-size bin (gcseg.eval.by_size);
    stacked on each, hatched, the % it misses merged (best mask larger than the object) where the table has it."""
    fig, ax = _figure(figsize=(7, 5.5))
    rows = table["rows"]
    names = [r for r in ROW_COLORS if r in rows] + [r for r in rows if r not in ROW_COLORS]
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(table["bins"]))
    merged_drawn = False
    for i, name in enumerate(names):
        vals = [0.0 if f is None else 100 * f for f in rows[name]["found"]]
        pos = x + (i - (len(names) - 1) / 2) * width
        ax.bar(pos, vals, width, label=ROW_TITLES.get(name, name), color=ROW_COLORS.get(name))
        if "merged" in rows[name]:
            merged = [0.0 if g is None else 100 * g for g in rows[name]["merged"]]
            ax.bar(pos, merged, width, bottom=vals, color=ROW_COLORS.get(name), alpha=0.3, hatch="///",
                   edgecolor="0.3", linewidth=0)
            merged_drawn = True
    ax.set_xticks(x, [f"{b} points\n({n} objects)" for b, n in zip(table["bins"], table["objects"])])
    ax.set_ylabel(f"% of GT objects (solid: found at IoU > {table.get('iou', 0.5)})")
    ax.set_ylim(0, 105)
    ax.set_title("Objects found (and missed merged) by size on the val scenes")
    handles, _ = ax.get_legend_handles_labels()
    if merged_drawn:  # one neutral swatch explains the hatching of every row
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="///",
                             label="hatched, on top: missed with a larger mask (merged)"))
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: bars fill the plot
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def curves_png(curves: Mapping[str, Curve], path: Path, *, title: str, xlabel: str, ylabel: str,
               step: bool = False, unit_box: bool = False) -> Path:
    """One line per curve (PR curves: step=True, unit_box=True; training loss: markers)."""
    fig, ax = _figure(figsize=(7, 4))
    for name, c in curves.items():
        label = ROW_TITLES.get(name, name)
        if step:
            ax.step(c.x, c.y, where="post", label=label, color=ROW_COLORS.get(name), lw=2)
        else:
            ax.plot(c.x, c.y, marker="o", ms=3, label=label, color=ROW_COLORS.get(name), lw=2)
    if unit_box:
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def oblique(xyz: np.ndarray, azim_deg: float = -50.0, elev_deg: float = 35.0) -> tuple[np.ndarray, np.ndarray]:
    """Screen coordinates (N, 2) and depth (N,) of an orthographic view from azimuth/elevation (z up)."""
    a, e = np.deg2rad(azim_deg), np.deg2rad(elev_deg)
    right = np.array([-np.sin(a), np.cos(a), 0.0])
    toward = np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])  # from scene to viewer
    up = np.cross(toward, right)
    return np.stack([xyz @ right, xyz @ up], 1), xyz @ toward


def scene_png(views: SceneViews, path: Path, max_points: int, seed: int) -> Path:
    """Five panels GT / Stage 1 / Stage 2 / Stage 3 / prediction, oblique orthographic scatter, far points
    first; unlabelled points faint."""
    fig, axes = _figure(1, len(LAYERS), figsize=(3.2 * len(LAYERS), 3.4))
    bounds = scene_bounds(views)
    limits = None
    if bounds is not None:  # one frame for all panels: the projected corners of the scene's bounding box
        corners = np.array([[bounds[i, 0], bounds[j, 1], bounds[k, 2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        uv, _ = oblique(corners)
        limits = (uv.min(0), uv.max(0))
    for ax, name in zip(np.atleast_1d(axes), LAYERS, strict=True):
        layer = views.layers.get(name)
        ax.set_axis_off()
        ax.set_aspect("equal")
        ax.set_title(getattr(layer, "title", None) or LAYER_TITLES[name], fontsize=10)
        if not isinstance(layer, Layer):
            msg = getattr(layer, "message", "not available")
            ax.text(0.5, 0.5, f"not available:\n{msg}", ha="center", va="center", fontsize=8, wrap=True,
                    transform=ax.transAxes)
            continue
        xyz, ids = view_points(layer, max_points, seed)
        uv, depth = oblique(xyz.astype(np.float64))
        order = np.argsort(depth, kind="stable")  # far to near (painter's order)
        uv, ids = uv[order], ids[order]
        if layer.rgb is not None:  # the scan's own colours
            rgb = layer.rgb[subsample(len(layer.ids), max_points, seed)][order]
            ax.scatter(uv[:, 0], uv[:, 1], s=2.5, c=rgb / 255.0, linewidths=0)
        else:
            void = ids <= 0
            ax.scatter(uv[void, 0], uv[void, 1], s=1, c="#9a9a9a", alpha=VOID_OPACITY, linewidths=0)
            ax.scatter(uv[~void, 0], uv[~void, 1], s=2.5, c=instance_palette(ids[~void]) / 255.0, linewidths=0)
        if limits is not None:
            ax.set_xlim(limits[0][0], limits[1][0])
            ax.set_ylim(limits[0][1], limits[1][1])
        ax.text(0.5, -0.02, layer.note, ha="center", va="top", fontsize=7, transform=ax.transAxes)
    fig.suptitle(f"{views.scene_id} ({views.split})", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def cloud_pair_png(path: Path, coord: np.ndarray, color: np.ndarray | None, ids: np.ndarray, *, title: str,
                   max_points: int = 80_000, seed: int = 0) -> Path:
    """Two panels of one upright (z-up) cloud: its own colours (grey without) and its instance ids (gcseg.colors;
    unlabelled faint grey), oblique from above, far points first. For previews of `gcseg segment` / `predict`."""
    from gcseg.report.views3d import subsample

    idx = subsample(len(ids), max_points, seed)
    xyz, ids = np.asarray(coord, np.float64)[idx], np.asarray(ids, np.int64)[idx]
    rgb = (np.full((len(idx), 3), 150, np.uint8) if color is None else np.asarray(color, np.uint8)[idx]) / 255.0
    uv, depth = oblique(xyz, azim_deg=-60.0, elev_deg=55.0)
    order = np.argsort(depth, kind="stable")  # far to near (painter's order)
    uv, ids, rgb = uv[order], ids[order], rgb[order]
    span = np.ptp(uv, axis=0) if len(uv) else np.ones(2)
    aspect = float(span[1] / max(span[0], 1e-9))
    fig, axes = _figure(1, 2, figsize=(14, max(3.0, min(9.0, 7 * aspect + 0.8))))
    void = ids <= 0
    size = max(0.5, min(4.0, 80_000 / max(len(idx), 1)))
    for ax, name in zip(axes, ("colours", "instances"), strict=True):
        ax.set_axis_off()
        ax.set_aspect("equal")
        if name == "colours":
            ax.scatter(uv[:, 0], uv[:, 1], s=size, c=rgb, linewidths=0)
            ax.set_title("the scan (its colours)", fontsize=11)
        else:
            ax.scatter(uv[void, 0], uv[void, 1], s=size, c="#9a9a9a", alpha=VOID_OPACITY, linewidths=0)
            ax.scatter(uv[~void, 0], uv[~void, 1], s=size, c=instance_palette(ids[~void]) / 255.0, linewidths=0)
            n = int(np.unique(ids[~void]).size)
            ax.set_title(f"{n} instances (one colour each; grey = unlabelled)", fontsize=11)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return _save(fig, path)
