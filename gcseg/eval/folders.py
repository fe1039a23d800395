"""Score a ScanNet-format prediction folder against a GT folder, and present the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import sparse

from gcseg.atomic import write_text
from gcseg.errors import InputError
from gcseg.eval.ap import OVERLAPS, EvalResult, SceneEval
from gcseg.eval.benchmark_io import list_scenes, read_gt, read_ignore, read_predictions


def load_scenes(gt_dir: str | Path, pred_dir: str | Path, *, allow_missing: bool = False,
                ignore_dir: str | Path | None = None) -> list[SceneEval]:
    """Every ``<gt_dir>/<scene>.txt`` with its predictions; a prediction scene without GT is an error.

    allow_missing: a GT scene without a prediction file counts as an empty prediction (else an error).
    ignore_dir: ScanNet++ ignore files ``<ignore_dir>/<scene>.txt`` (vertex indices left out).
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    gt_scenes = list_scenes(gt_dir)
    if not gt_scenes:
        raise InputError("no GT files (<scene>.txt) in the folder", path=gt_dir, fix="pass the GT folder as --gt")
    pred_scenes = list_scenes(pred_dir)
    extra = sorted(set(pred_scenes) - set(gt_scenes))
    if extra:
        raise InputError(f"prediction file(s) without GT: {', '.join(extra[:5])}"
                         + (f" and {len(extra) - 5} more" if len(extra) > 5 else ""),
                         path=pred_dir / f"{extra[0]}.txt", fix="remove them or add their GT files")
    scenes = []
    for scene in gt_scenes:
        gt = read_gt(gt_dir / f"{scene}.txt")
        n = gt.shape[0]
        if scene not in pred_scenes and allow_missing:
            masks, scores = sparse.csr_matrix((0, n), dtype=bool), np.zeros(0)
        else:
            masks, scores = read_predictions(pred_dir, scene, n)
        valid = read_ignore(Path(ignore_dir) / f"{scene}.txt", n) if ignore_dir is not None else None
        scenes.append(SceneEval(scene_id=scene, gt_ids=gt, valid=valid, pred_masks=masks, pred_scores=scores))
    return scenes


def read_label_list(path: str | Path) -> list[str]:
    """A dataset label list: one class name per line (ScanNet++ ``metadata/semantic_classes.txt``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("label list not found", path=path, fix="pass <data>/metadata/semantic_classes.txt")
    return [line.strip() for line in path.read_text().splitlines()]


def format_table(result: EvalResult) -> str:
    """AP / AP50 / AP25 of the GT set and its subsets, then mask counts."""

    def cell(x: float) -> str:
        return f"{100 * x:7.1f}" if np.isfinite(x) else f"{'nan':>7}"

    rows = [("all", result)] + sorted(result.subsets.items())
    lines = [f"{'GT set':<8}{'AP':>8}{'AP50':>8}{'AP25':>8}{'#GT':>8}", "-" * 40]
    for name, r in rows:
        lines.append(f"{name:<8} {cell(r.ap)} {cell(r.ap50)} {cell(r.ap25)}{r.num_gt:>8}")
    given = np.array(list(result.num_pred_masks.values()) or [0])
    kept = np.array(list(result.num_pred_kept.values()) or [0])
    lines.append("-" * 40)
    lines.append(f"{len(result.num_pred_masks)} scenes; masks per scene: mean {given.mean():.1f} "
                 f"(>= min size: {kept.mean():.1f}), max {int(given.max())}")
    lines.append(f"AP = mean over IoU {OVERLAPS[0]:.2f}..{OVERLAPS[-2]:.2f} (9 thresholds); values in %")
    return "\n".join(lines)


def write_pr_curves(path: str | Path, result: EvalResult) -> None:
    """Precision-recall points at IoU 0.50 and 0.25 as CSV (``iou,recall,precision``) for ``dvc plots``."""
    lines = ["iou,recall,precision"]
    for th in sorted(result.pr_curves, reverse=True):
        lines += [f"{th:.2f},{row['recall']:.6f},{row['precision']:.6f}" for row in result.pr_rows(th)]
    write_text(path, "\n".join(lines) + "\n")


def write_metrics(path: str | Path, result: EvalResult, **extra: object) -> None:
    """metrics.json for DVC: sorted keys, NaN written as null, no timestamps (deterministic bytes)."""
    data = {**result.to_dict(), **extra}
    write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
