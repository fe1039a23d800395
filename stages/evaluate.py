"""`gcseg evaluate`: class-agnostic AP / AP50 / AP25 of ScanNet benchmark-format predictions against GT files,
by the official ScanNet protocol (gcseg.eval.ap). Needs nothing but the two folders. Not a DVC stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages._common import make_app, run_module, user_errors

app = make_app(__doc__ or "")


@app.command()
@user_errors
def main(
    gt: Annotated[Path, typer.Option("--gt", help="Folder of GT <scene>.txt files (label*1000+instance per vertex).")],
    pred: Annotated[Path, typer.Option("--pred", help="Folder of prediction <scene>.txt files and their masks.")],
    gt_classes: Annotated[str, typer.Option(
        "--gt-classes", help="Which GT instances count: synthetic | scannet200 | scannetv2_18 | scannetpp_84.")
    ] = "synthetic",
    out: Annotated[Path | None, typer.Option("--out", help="Write metrics JSON here (e.g. metrics.json).")] = None,
    pr_curves: Annotated[Path | None, typer.Option(
        "--pr-curves", help="Write the precision-recall points at IoU 0.50 and 0.25 here (CSV).")] = None,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Score a GT scene without prediction file as an empty prediction.")] = False,
    label_list: Annotated[Path | None, typer.Option(
        "--label-list", help="scannetpp_84: the dataset's metadata/semantic_classes.txt (names -> ids).")] = None,
    ignore_dir: Annotated[Path | None, typer.Option(
        "--ignore-dir", help="ScanNet++: folder of <scene>.txt vertex indices to leave out.")] = None,
    min_region_size: Annotated[int, typer.Option(
        "--min-region-size", help="GT instances and masks below this many vertices are ignored.")] = 100,
    no_scores: Annotated[bool, typer.Option(
        "--no-scores", help="Every confidence 1.0 (Open3DIS's mistake; only to reproduce their numbers).")] = False,
    perfect_ranking: Annotated[bool, typer.Option(
        "--perfect-ranking", help="Also score the same masks in the order the GT gives them (each GT object's "
        "best mask first, by IoU): what the confidences cost (gcseg.eval.ranking).")] = False,
) -> None:
    """Score ScanNet-format predictions against GT files (no DVC needed)."""
    from gcseg.eval.ap import evaluate_scenes
    from gcseg.eval.classes import GT_CLASS_MODES, subsets_for, valid_labels_for
    from gcseg.eval.folders import format_table, load_scenes, read_label_list, write_metrics, write_pr_curves
    from gcseg.errors import ConfigError

    if gt_classes not in GT_CLASS_MODES:
        raise ConfigError(f"--gt-classes {gt_classes!r} is not a GT class mode",
                          fix=f"use one of {', '.join(GT_CLASS_MODES)}")
    labels = read_label_list(label_list) if label_list is not None else None
    valid = valid_labels_for(gt_classes, labels)
    scenes = load_scenes(gt, pred, allow_missing=allow_missing, ignore_dir=ignore_dir)  # read once, scored once or twice
    score = dict(min_region_size=min_region_size, valid_labels=valid, subsets=subsets_for(gt_classes))
    result = evaluate_scenes(scenes, use_scores=not no_scores, **score)
    typer.echo(format_table(result))
    extra: dict[str, object] = {}
    if perfect_ranking:
        from gcseg.eval.ranking import with_perfect_ranking

        ranked = evaluate_scenes(with_perfect_ranking(scenes, min_region_size=min_region_size, valid_labels=valid),
                                 **score)
        typer.echo("\nThe same masks with perfect ranking (uses GT: each GT object's best mask first, by IoU):")
        typer.echo(format_table(ranked))
        extra["perfect_ranking"] = ranked.to_dict()
    if out is not None:
        write_metrics(out, result, gt_classes=gt_classes, min_region_size=min_region_size,
                      use_scores=not no_scores, **extra)
        typer.echo(f"metrics -> {out}")
    if pr_curves is not None:
        write_pr_curves(pr_curves, result)
        typer.echo(f"precision-recall curves -> {pr_curves}")


if __name__ == "__main__":
    run_module(app)
