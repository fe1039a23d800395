"""GT-free statistics of every stage's labels: what the eval stage reports on scans without annotation (and on
scans with it, beside AP). They need nothing but the predictions on the scene's reference points.

Per row (the ablation's rows, :data:`gcseg.eval.ablation.ROWS`, or any others the eval stage adds) and scene:

* ``masks``: the row's raw masks (model rows: every query mask with a point, as the ablation counts them).
* ``instances``: masks that keep at least ``min_points`` points once overlaps are resolved, each point to its
  highest-scoring mask (:func:`gcseg.pseudolabel.resolve.assign_points`, what the instance PLY of
  ``gcseg predict`` / ``gcseg segment`` shows).
* ``labelled_fraction``: the share of reference points in one of those instances.
* ``vote_share`` (the tracked-label rows only: ``lift_only``, ``no_policy``): the mean over labelled points of the
  share of a point's votes, from every frame that saw it, that went to its final id. The tracked-label
  consistency without GT: 1 when every view agreed on the id of every point, low when ids flicker between views
  or objects fragment across frames. It is the point-weighted mean of the ids' mean vote shares that
  :func:`gcseg.eval.ablation.lift_only_predictions` keeps beside their confidences.
* ``agreement`` between two rows: symmetric segmentation covering of their instances, i.e. every instance's best
  IoU with an instance of the other row, weighted by its size, averaged over both directions (1 = the same
  partition into instances; 0 = nothing in common; points in no instance belong to none). Consecutive stages
  that agree are self-consistent, not necessarily right: only AP on scenes with GT says that.

Scene values are averaged over the scenes a row covers (``None``: not defined, e.g. no instance on either side).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.eval.ablation import ROW_TITLES, RowPrediction, ValScene
from gcseg.scene import PointCloud

# rows with mean vote shares: the tracked labels, and sam2_track's tracking without the policy (its
# diagnostics' GT-free row: with the lift-only row beside it, the policy's effect on consistency without GT)
TRACKED_ROWS: tuple[str, ...] = ("lift_only", "no_policy")
TITLES: dict[str, str] = {**ROW_TITLES, "no_policy": "Tracking without the policy, lifted"}
STAT_KEYS: tuple[str, ...] = ("masks", "instances", "labelled_fraction", "vote_share")


def unlabelled_scene(scene_id: str, cloud: PointCloud) -> ValScene:
    """A ValScene of a reference cloud without GT (every point void): rows predict on it, AP skips it."""
    n = len(cloud)
    color = cloud.color if cloud.color is not None else np.zeros((n, 3), np.uint8)
    return ValScene(scene_id=scene_id, coord=np.asarray(cloud.coord, np.float32), color=np.asarray(color, np.uint8),
                    gt_ids=np.zeros(n, np.int64))


def has_gt(scene: ValScene) -> bool:
    """True if the scene has at least one GT object (AP is defined on it): an id >= 1000 (label * 1000 +
    instance; ids under 1000 are void, as in gcseg.eval.ap)."""
    return bool((np.asarray(scene.gt_ids) >= 1000).any())


def instance_labels(pred: RowPrediction, num_points: int, min_points: int) -> np.ndarray:
    """Instance id per point (int64 (N,), -1 = none): overlaps to the highest score, instances under
    `min_points` points dropped (their points go to the next covering mask)."""
    from gcseg.pseudolabel.resolve import assign_points

    masks = np.asarray(pred.masks, dtype=bool).reshape(-1, num_points)
    if masks.shape[0] == 0:
        return np.full(num_points, -1, np.int64)
    return assign_points(masks, np.asarray(pred.scores, np.float64), min_points=min_points)[0].astype(np.int64)


def covering(a: np.ndarray, b: np.ndarray) -> float | None:
    """Size-weighted mean over the instances of labelling `a` of their best IoU with an instance of `b`
    (labels >= 0 are instances, -1 none). None when `a` has no instance."""
    from scipy.sparse import coo_matrix

    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ia, ib = a >= 0, b >= 0
    if not ia.any():
        return None
    _, a_d = np.unique(a[ia], return_inverse=True)
    dense_a = np.full(a.shape, -1, np.int64)
    dense_a[ia] = a_d.reshape(-1)
    size_a = np.bincount(dense_a[ia])
    if not ib.any():
        return 0.0
    _, b_d = np.unique(b[ib], return_inverse=True)
    dense_b = np.full(b.shape, -1, np.int64)
    dense_b[ib] = b_d.reshape(-1)
    size_b = np.bincount(dense_b[ib])
    both = ia & ib
    inter = coo_matrix((np.ones(int(both.sum())), (dense_a[both], dense_b[both])),
                       shape=(size_a.size, size_b.size)).tocsr()
    inter.sum_duplicates()
    inter = inter.tocoo()
    iou = inter.data / (size_a[inter.row] + size_b[inter.col] - inter.data)
    best = np.zeros(size_a.size)
    np.maximum.at(best, inter.row, iou)
    return float((best * size_a).sum() / size_a.sum())


def agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Symmetric segmentation covering of two instance labellings of the same points (see the module
    docstring); None when neither has an instance, 0 when only one has."""
    ab, ba = covering(a, b), covering(b, a)
    if ab is None and ba is None:
        return None
    return float(np.mean([0.0 if x is None else x for x in (ab, ba)]))


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(float(np.mean(vals)), 6) if vals else None


def scene_stats(scene: ValScene, preds: Mapping[str, RowPrediction], *, min_points: int,
                tracked_rows: Collection[str] = TRACKED_ROWS) -> dict[str, Any]:
    """The statistics of one scene: ``{"rows": {row: {masks, instances, labelled_fraction[, vote_share]}},
    "agreement": {row: {later row: value}}}`` (rows in the order of `preds`)."""
    n = int(scene.coord.shape[0])
    labels: dict[str, np.ndarray] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, pred in preds.items():
        lab = instance_labels(pred, n, min_points)
        labels[name] = lab
        stats: dict[str, Any] = {
            "masks": int(np.asarray(pred.masks).reshape(-1, n).shape[0]),
            "instances": int(np.unique(lab[lab >= 0]).size),
            "labelled_fraction": round(float((lab >= 0).mean()) if n else 0.0, 6),
        }
        if name in tracked_rows:  # disjoint masks with their mean vote shares: the point-weighted mean
            sizes = np.asarray(pred.masks, bool).reshape(-1, n).sum(1)
            share = pred.vote_share if pred.vote_share is not None else pred.scores
            stats["vote_share"] = (round(float((np.asarray(share, np.float64) * sizes).sum() / sizes.sum()), 6)
                                   if sizes.sum() else None)
        rows[name] = stats
    names = list(preds)
    agree = {a: {b: (None if (v := agreement(labels[a], labels[b])) is None else round(v, 6))
                 for b in names[i + 1:]} for i, a in enumerate(names[:-1])}
    return {"rows": rows, "agreement": agree}


def gt_free_stats(scenes: Sequence[ValScene], rows: Mapping[str, Mapping[str, RowPrediction]], *,
                  min_points: int = 100, tracked_rows: Collection[str] = TRACKED_ROWS) -> dict[str, Any]:
    """GT-free statistics of every row on every scene it covers, averaged over scenes (JSON-ready).

    rows: row name -> scene id -> that row's prediction on the scene's reference points (the eval stage's)."""
    per_scene = {}
    for s in scenes:
        preds = {name: by_scene[s.scene_id] for name, by_scene in rows.items() if s.scene_id in by_scene}
        per_scene[s.scene_id] = scene_stats(s, preds, min_points=min_points, tracked_rows=tracked_rows)
    summary: dict[str, dict[str, Any]] = {}
    for name in rows:
        covered = [v["rows"][name] for v in per_scene.values() if name in v["rows"]]
        summary[name] = {f"{k}_per_scene" if k in ("masks", "instances") else k:
                         _mean([c.get(k) for c in covered]) for k in STAT_KEYS
                         if any(k in c for c in covered)}
    names = list(rows)
    agree = {a: {b: _mean([v["agreement"].get(a, {}).get(b) for v in per_scene.values()]) for b in names[i + 1:]}
             for i, a in enumerate(names[:-1])}
    return {"scenes": len(scenes), "scenes_with_gt": sum(has_gt(s) for s in scenes), "min_points": int(min_points),
            "rows": summary, "agreement": agree, "per_scene": dict(sorted(per_scene.items()))}


def _cell(x: Any, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * float(x):.1f}" if pct else f"{float(x):.1f}"


def gt_free_markdown(stats: Mapping[str, Any], titles: Mapping[str, str] = TITLES) -> str:
    """Two Markdown tables (per-row statistics; agreement between rows) and what they mean."""
    rows = stats["rows"]
    names = list(rows)
    lines = [f"GT-free statistics ({stats['scenes']} scene(s), {stats['scenes_with_gt']} with GT; instances of at "
             f"least {stats['min_points']} points after overlaps are resolved):", "",
             "| Labels | masks / scene | instances / scene | labelled points (%) | vote share (%) |",
             "|---|---:|---:|---:|---:|"]
    for name in names:
        r = rows[name]
        lines.append(f"| {titles.get(name, name)} | {_cell(r.get('masks_per_scene'))} | "
                     f"{_cell(r.get('instances_per_scene'))} | {_cell(r.get('labelled_fraction'), True)} | "
                     f"{_cell(r.get('vote_share'), True)} |")
    if len(names) > 1:
        lines += ["", "| Agreement (%) | " + " | ".join(titles.get(n, n) for n in names[1:]) + " |",
                  "|---|" + "---:|" * (len(names) - 1)]
        for i, a in enumerate(names[:-1]):
            cells = ["" if j <= i else _cell(stats["agreement"][a].get(b), True) for j, b in enumerate(names[1:], 1)]
            lines.append(f"| {titles.get(a, a)} | " + " | ".join(cells) + " |")
    lines += ["", "Vote share: of every labelled point's votes from all frames that saw it, the share for its "
              "tracked id (tracked-label consistency without GT). Agreement: symmetric segmentation covering of two "
              "rows' instances (size-weighted best IoU, both directions). Both measure self-consistency, not "
              "correctness."]
    return "\n".join(lines) + "\n"


def tracked_diagnostic_rows(diagnosed: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, RowPrediction]]:
    """The GT-free rows among the diagnostics sam2_track wrote (scene -> {"rows": {name: RowPrediction}} or None):
    ``{"no_policy": {scene: prediction}}`` for the scenes that have it, {} when none has."""
    rows: dict[str, dict[str, RowPrediction]] = {}
    for sid, diag in diagnosed.items():
        for name in TRACKED_ROWS[1:]:
            pred = ((diag or {}).get("rows") or {}).get(name)
            if pred is not None:
                rows.setdefault(name, {})[sid] = pred
    return rows


def no_gt_metrics(stats: Mapping[str, Any], rows: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """metrics/eval.json rows when no scene has GT: AP / AP50 / AP25 undefined (null), masks per scene kept,
    so `dvc exp show` and the report keep their columns. `rows`: which of the statistics' rows (default all)."""
    return {name: {"AP": None, "AP50": None, "AP25": None,
                   "masks_per_scene": float(r.get("masks_per_scene") or 0.0)}
            for name, r in stats["rows"].items() if rows is None or name in rows}


def write_empty_pr_csvs(folder: str | Path, rows: Sequence[str]) -> list[Path]:
    """One header-only ``<row>.csv`` per row: without GT there is no PR curve, but the eval stage's plots
    output (and `dvc plots`) still finds its files."""
    from gcseg.atomic import write_text

    folder = Path(folder)
    for name in rows:
        write_text(folder / f"{name}.csv", "recall,precision\n")
    return [folder / f"{name}.csv" for name in rows]
