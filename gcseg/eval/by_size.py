"""Objects found by size (a diagnostic: uses GT). For every row and every GT object, the best IoU any of the row's
masks reaches with it; per object-size bin, the share of objects found at IoU > 0.5 (the recall that AP50 ranks)
and the mean best IoU. It shows where a row loses against another: on the synthetic default the models find the
large objects as often as their tracked labels do and lose on the small ones (docs/model_study.md, round 5). For
the objects a row misses it says why: the best mask is larger than the object ("merged": it spills into what
surrounds the object), smaller ("partial"), or no mask overlaps it ("none"); round 7 found the small objects'
misses merged, in the labels and in the models trained on them.

GT objects and masks are those the AP counts (gcseg.eval.ap): ids >= 1000 of the class set, at least
`min_region_size` points, masks of at least `min_region_size` points, points outside `valid` left out."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from gcseg.eval.ablation import RowPrediction, ValScene
from gcseg.eval.ap import SceneEval, best_match_per_gt

# object sizes in points (reference cloud): the synthetic default's small objects hold 100-500 points
SIZE_BINS: tuple[int, ...] = (100, 300, 1000, 3000)
FOUND_IOU = 0.5


def bin_names(bins: Sequence[int] = SIZE_BINS) -> list[str]:
    """"100-300", ..., "3000+" for the bins' lower edges."""
    return [f"{lo}-{hi}" for lo, hi in zip(bins[:-1], bins[1:])] + [f"{bins[-1]}+"]


def found_by_size(val_scenes: Sequence[ValScene], rows: Mapping[str, Mapping[str, RowPrediction]], *,
                  min_region_size: int = 100, valid_labels: Collection[int] | None = None,
                  bins: Sequence[int] = SIZE_BINS, iou: float = FOUND_IOU) -> dict[str, Any]:
    """{"bins": [names], "objects": [count per bin], "iou": iou, "rows": {row: {"found": [share per bin or None],
    "mean_best_iou": [...], "merged": [...], "partial": [...]}}}; objects under bins[0] points are not binned.
    merged / partial: share of the bin's objects missed (best IoU <= iou) whose best mask holds more / at most as
    many points as the object; found + merged + partial + (no overlapping mask) = 1."""
    sizes: list[np.ndarray] = []
    best: dict[str, list[np.ndarray]] = {name: [] for name in rows}
    best_size: dict[str, list[np.ndarray]] = {name: [] for name in rows}
    for s in val_scenes:
        for name, preds in rows.items():
            p = preds[s.scene_id]
            masks = np.asarray(p.masks, dtype=bool).reshape(-1, s.gt_ids.shape[0])
            _, b, bs = best_match_per_gt(SceneEval(scene_id=s.scene_id, gt_ids=s.gt_ids, valid=s.valid,
                                                   pred_masks=masks, pred_scores=np.ones(len(masks))),
                                         min_region_size=min_region_size, valid_labels=valid_labels)
            best[name].append(b)
            best_size[name].append(bs)
        # object sizes come from the GT alone (no masks), so they exist with no row at all
        counts, _, _ = best_match_per_gt(SceneEval(scene_id=s.scene_id, gt_ids=s.gt_ids, valid=s.valid,
                                                   pred_masks=np.zeros((0, s.gt_ids.shape[0]), bool),
                                                   pred_scores=np.zeros(0)),
                                         min_region_size=min_region_size, valid_labels=valid_labels)
        sizes.append(counts)
    size = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
    which = np.searchsorted(np.asarray(bins), size, side="right") - 1  # -1: under the first edge
    objects = [int((which == i).sum()) for i in range(len(bins))]
    out: dict[str, Any] = {"bins": bin_names(bins), "objects": objects, "iou": iou, "rows": {}}
    for name, parts in best.items():
        v = np.concatenate(parts) if parts else np.zeros(0)
        bs = np.concatenate(best_size[name]) if parts else np.zeros(0, np.int64)
        missed = (v <= iou) & (bs > 0)

        def share(sel: np.ndarray) -> list[float | None]:
            return [float(sel[which == i].mean()) if objects[i] else None for i in range(len(bins))]

        out["rows"][name] = {"found": share(v > iou), "mean_best_iou": share(v), "merged": share(missed & (bs > size)),
                             "partial": share(missed & (bs <= size))}
    return out


def _markdown_table(first: str, head: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """The lines of a Markdown table: header (`first` column, then `head`), then one line per (title, cells)."""
    return ([f"| {first} | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
            + [f"| {title} | " + " | ".join(cells) + " |" for title, cells in rows])


def by_size_markdown(table: Mapping[str, Any], titles: Mapping[str, str]) -> str:
    """The Markdown table: per row and size bin, % of the objects found at IoU > 0.5 (mean best IoU)."""
    head = [f"{b} pts ({n})" for b, n in zip(table["bins"], table["objects"])]

    def rows(a: str, b: str, cell: Callable[[float, float], str]) -> list[str]:  # one table, cell(row[a][i], row[b][i])
        return _markdown_table("Row", head, [(titles.get(name, name), ["n/a" if x is None else cell(x, y)
                                                                      for x, y in zip(r[a], r[b])])
                                             for name, r in table["rows"].items()])

    lines = rows("found", "mean_best_iou", lambda f, m: f"{100 * f:.0f} ({m:.2f})")
    lines += ["", f"Objects found by size (uses GT): per GT object size in points (objects in brackets), the % of the "
              f"objects some mask of the row overlaps at IoU > {table['iou']} (in brackets the mean best IoU), "
              "whatever its score. Where a row loses against another, by object size.", ""]
    lines += rows("merged", "partial", lambda g, p: f"{100 * g:.0f} / {100 * p:.0f}")
    lines += ["", "Missed objects: % of the objects of each size that the row misses with a best mask larger than the "
              "object (merged: it spills into the surroundings) / not larger (partial); the rest of the misses have "
              "no overlapping mask."]
    return "\n".join(lines) + "\n"


VIEW_TITLES: dict[str, str] = {
    "proposals": "Some proposal matches the object (before the containment filter)",
    "kept": "Some kept proposal matches it (after the containment filter)",
}


def views_by_size(views: Sequence[Mapping[str, np.ndarray]], *, bins: Sequence[int] = SIZE_BINS) -> dict[str, Any]:
    """Per keyframe view, by object size: the per-object counts sam2_track's diagnostics wrote (one mapping per
    scene: gcseg.eval.diagnostics.ViewCounts fields) pooled over scenes. {"bins", "pairs": [(object, keyframe)
    pairs per bin], "objects": [objects shown on some keyframe per bin], "rows": {"proposals" | "kept": {"found":
    [share of the pairs or None], "title"}}}. Objects under bins[0] points are not binned."""
    cat = {k: np.concatenate([np.asarray(v[k], np.int64) for v in views]) if views else np.zeros(0, np.int64)
           for k in ("points", "views", "hits_proposals", "hits_kept")}
    which = np.searchsorted(np.asarray(bins), cat["points"], side="right") - 1
    pairs = [int(cat["views"][which == i].sum()) for i in range(len(bins))]
    objects = [int(((which == i) & (cat["views"] > 0)).sum()) for i in range(len(bins))]

    def share(hits: np.ndarray) -> list[float | None]:
        return [float(hits[which == i].sum() / pairs[i]) if pairs[i] else None for i in range(len(bins))]

    return {"bins": bin_names(bins), "pairs": pairs, "objects": objects,
            "rows": {name: {"title": VIEW_TITLES[name], "found": share(cat[key])}
                     for name, key in (("proposals", "hits_proposals"), ("kept", "hits_kept"))}}


def views_markdown(table: Mapping[str, Any], *, min_area_px: Any = None, iou: Any = 0.5) -> str:
    """The per-view table of :func:`views_by_size` and what it means."""
    head = [f"{b} pts ({n} views)" for b, n in zip(table["bins"], table["pairs"])]
    lines = _markdown_table("Per keyframe view", head, [(r.get("title", name), ["n/a" if x is None else f"{100 * x:.0f}"
                                                                               for x in r["found"]])
                                                        for name, r in table["rows"].items()])
    area = f"{min_area_px} px" if min_area_px is not None else "the minimum area"
    lines += ["", f"Proposals per keyframe view (uses GT): of the (object, keyframe) pairs where the object shows on >= "
              f"{area} (the ceiling's objects; views in brackets), the % where some proposal matches the object at "
              f"IoU >= {iou}, before and after the containment filter. The ceiling has every such view by construction; "
              "the perfect-identity row above lifts the kept masks, so the drop from this table to that row is what "
              "the vote across views loses."]
    return "\n".join(lines) + "\n"
