"""DVC stage `eval`: the ablation on the val scenes. Class-agnostic AP / AP50 / AP25 (ScanNet protocol) of the
Stage 2 tracked labels used directly (lift-only; confidences = the vote shares sam2_track stored), of the
Stage 1, 1+2 and 1+2+3 models on every val scene's reference cloud and of the training-free baselines
(`--baselines`, the `baselines` stage's files); writes metrics/eval.json (one entry per row), the Markdown ablation
table and one PR-curve CSV per row (IoU 0.5) for `dvc plots`, and prints the table.

Apart from the rows, it scores the diagnostics sam2_track wrote for these scenes (gcseg.eval.diagnostics: GT
ceiling, proposals with perfect identity, proposal coverage; and the no-policy tracking row) into the
``diagnostics`` block of metrics/eval.json and the Markdown's "Diagnostics (use GT; not methods)" tables; per
row, the share of the GT objects it finds by object size (gcseg.eval.by_size: metrics/eval/by_size.json and the
Markdown's by-size tables); and, for the lift-only and model rows, the same masks in the order the GT gives them
(gcseg.eval.ranking: the block's ``perfect_ranking``), which parts a row's AP into its masks and their order.

With ``eval.own_labels`` it also scores, on the train scenes, the tracked labels the models were trained on and
the Stage 1 + 2 and 1 + 2 + 3 models (``own_labels`` in metrics/eval.json and a table): whether the model ends
better than its own training labels, which the val rows cannot say (they compare it with the labels of other
rooms).

GT-free statistics of every row (masks and instances per scene, labelled fraction, tracked-label vote share,
agreement between rows; gcseg.eval.gt_free) are written for every scene, with or without GT; AP and the
diagnostics are computed on the scenes that have GT, and scans without any (your own captures) get the GT-free
statistics only, never an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gcseg.models.config import with_matrix_nms

from stages._common import (DataSection, Section, load_params, make_app, run_module, scene_files, split_scenes,
                            user_errors)
from stages._eval_params import EvalSection

app = make_app(__doc__ or "")

MODEL_ROWS: tuple[str, ...] = ("stage1", "stage2", "stage3")


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    seed: int
    data: DataSection
    eval: EvalSection


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


def model_paths(models: Path) -> dict[str, Path]:
    """``<models>/stage{1,2,3}/model.pt``, checked up front: a missing file is named with its fix."""
    from gcseg.errors import ArtifactError

    paths = {row: models / row / "model.pt" for row in MODEL_ROWS}
    for row, path in paths.items():
        if not path.is_file():
            raise ArtifactError(f"{row} model checkpoint is missing", path=path,
                                fix=f"run `dvc repro {row}_train` (or pass --models DIR with {row}/model.pt)")
    return paths


def track_paths(tracks: Path, scene_ids: list[str]) -> dict[str, Path]:
    """``<tracks>/<scene>.h5`` of every val scene, checked up front."""
    return scene_files(tracks, scene_ids, "tracked labels", split="val",
                       fix="track the val scenes too: set sam2_track.split: all and `dvc repro sam2_track`")


def read_tracks(track_path: Path, val: Any) -> dict[str, Any]:
    """One val scene's sam2_track artifact: the lift-only prediction (its labels with the vote shares stored
    beside them) and the scene's diagnostics ({"rows": {name: RowPrediction}, "coverage", "settings"} or None)."""
    import numpy as np

    from gcseg.errors import ArtifactError
    from gcseg.eval.ablation import lift_only_predictions
    from gcseg.tracking.artifact import read_lifted

    art = read_lifted(track_path)
    coord = art["coord"]
    if coord.shape != val.coord.shape or not np.allclose(coord, val.coord, atol=1e-5):
        raise ArtifactError(f"tracked labels of {val.scene_id} were made on another reference cloud "
                            f"({coord.shape[0]} points, scene has {val.coord.shape[0]})", path=track_path,
                            fix="rerun `dvc repro sam2_track` on the current scenes")
    diag = art["diagnostics"]
    if diag is not None:
        diag = {**diag, "rows": {k: lift_only_predictions(*v) for k, v in diag["rows"].items()}}
    return {"lift_only": lift_only_predictions(art["labels"], art["shares"], art["votes"]), "diagnostics": diag}


def eval_scene(sid: str, cloud: Any, superpoints: Path | None) -> Any:
    """The ValScene eval scores: GT from the cloud (or none: GT-free statistics only), and the superpoints stage's
    ids of its reference cloud when given (superpoint models predict on them)."""
    from dataclasses import replace

    from gcseg.eval.ablation import val_scene_from_cloud
    from gcseg.eval.gt_free import unlabelled_scene

    val = val_scene_from_cloud(sid, cloud) if cloud.instance is not None else unlabelled_scene(sid, cloud)
    if superpoints is not None:
        from gcseg.superpoints import REFERENCE, read_superpoints

        val = replace(val, superpoint=read_superpoints(superpoints / f"{sid}.h5", REFERENCE, cloud.coord))
    return val


OWN_ROWS: tuple[str, ...] = ("lift_only", "stage2", "stage3")  # the tracked labels and the models trained on them


def own_label_results(p: Params, scenes: Path, tracks: Path, superpoints: Path | None, nets: dict[str, Any],
                      score: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """AP of the tracked labels of the train scenes (what Stages 2 and 3 trained on) and of the Stage 1 + 2 and
    1 + 2 + 3 models on those scenes, against their GT. Returns (results by row, number of scenes with GT)."""
    from tqdm import tqdm

    from gcseg.eval.ablation import evaluate_rows, model_predictions
    from gcseg.eval.gt_free import has_gt
    from gcseg.readers import open_scene

    ids = split_scenes(p.data.source, scenes, "train")
    files = scene_files(tracks, ids, "tracked labels", split="train",
                        fix="eval.own_labels scores the train scenes' tracked labels: set sam2_track.split: all")
    rows: dict[str, dict[str, Any]] = {r: {} for r in OWN_ROWS}
    own = []
    for sid in tqdm(ids, desc="eval own labels", unit="scene", disable=None):
        cloud = open_scene(p.data.source, scenes, sid).reference()
        if cloud is None or cloud.instance is None:
            continue
        val = eval_scene(sid, cloud, superpoints)
        if not has_gt(val):
            continue
        own.append(val)
        rows["lift_only"][sid] = read_tracks(files[sid], val)["lift_only"]
        for r in OWN_ROWS[1:]:
            rows[r][sid] = model_predictions(nets[r], val, p.eval.fragments)
    return (evaluate_rows(own, rows, **score) if own else {}), len(own)


def own_labels_markdown(results: dict[str, Any], num_scenes: int) -> str:
    from gcseg.eval.ablation import ROW_TITLES

    titles = {**ROW_TITLES, "lift_only": "Stage 2 tracked labels, lifted (what Stages 2 and 3 trained on)"}
    lines = ["## The models against their own training labels (train scenes, uses GT)", "",
             "| Method | AP | AP50 | AP25 |", "|---|---:|---:|---:|"]
    for name, r in results.items():
        m = r.metrics()
        lines.append(f"| {titles[name]} | " + " | ".join(f"{100 * m[k]:.1f}" for k in ("AP", "AP50", "AP25")) + " |")
    lines += ["", f"{num_scenes} train scene(s). The val rows compare the models with the labels of rooms they never "
              "saw; these compare them with the labels they learned from, on the same rooms (the paper's claim "
              "that the model ends better than its labels)."]
    return "\n".join(lines) + "\n"


def baseline_paths(folder: Path, scene_ids: list[str]) -> dict[str, Path]:
    """``<baselines>/<scene>.h5`` of every val scene, checked up front."""
    return scene_files(folder, scene_ids, "baseline predictions", split="val",
                       fix="set baselines.split equal to eval.split and `dvc repro baselines`")


def add_baseline_rows(rows: dict[str, dict[str, Any]], titles: dict[str, str], path: Path, val: Any) -> None:
    """Every row of one scene's baselines file as a prediction of that scene (rows keep the file's order)."""
    from gcseg.baselines.artifact import dense_masks, read_baselines
    from gcseg.eval.ablation import RowPrediction

    for name, (title, indptr, points, scores) in read_baselines(path, val.coord).items():
        rows.setdefault(name, {})[val.scene_id] = RowPrediction(dense_masks(indptr, points, len(val.coord)), scores)
        titles[name] = title


@app.command()
@user_errors
def main(
    scenes: Annotated[Path, typer.Option("--scenes", help="Data root holding the scenes (data.root).")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read.")] = Path("params.yaml"),
    tracks: Annotated[Path, typer.Option("--tracks", help="sam2_track output folder (<scene>.h5).")] = Path("data/sam2_track"),
    models: Annotated[Path, typer.Option("--models", help="Folder with stage1/, stage2/, stage3/ model.pt.")] = Path("data/models"),
    out: Annotated[Path, typer.Option("--out", help="Metrics JSON (one entry per ablation row).")] = Path("metrics/eval.json"),
    table: Annotated[Path, typer.Option("--table", help="Markdown ablation table.")] = Path("metrics/eval/ablation.md"),
    plots: Annotated[Path, typer.Option("--plots", help="Folder of PR-curve CSVs (<row>.csv, IoU 0.5).")] = Path("metrics/eval/pr"),
    baselines: Annotated[Path | None, typer.Option("--baselines", help="baselines output folder (<scene>.h5): its rows join the table (training-free baselines).")] = None,
    gt_free: Annotated[Path | None, typer.Option("--gt-free", help="GT-free statistics JSON (every scene, GT or "
                                                 "not; default: eval/gt_free.json beside --out).")] = None,
    by_size: Annotated[Path | None, typer.Option("--by-size", help="Objects found by size JSON (uses GT; default: "
                                                 "eval/by_size.json beside --out).")] = None,
    superpoints: Annotated[Path | None, typer.Option("--superpoints", help="superpoints stage folder (<scene>.h5): "
                                                     "superpoint models predict on them (else computed).")] = None,
) -> None:
    """Class-agnostic AP/AP50/AP25 of every stage side by side (the ablation table)."""
    from gcseg.atomic import check_output

    p = load_params(params, Params)  # params and outputs checked before torch is even imported
    gt_free = gt_free or out.parent / "eval" / "gt_free.json"
    by_size = by_size or out.parent / "eval" / "by_size.json"
    for path in (out, table, plots, gt_free, by_size):  # create nothing
        check_output(path)
    import numpy as np
    import torch
    from tqdm import tqdm

    from gcseg.atomic import write_text
    from gcseg.errors import InputError
    from gcseg.eval.ablation import (ROW_TITLES, ROWS, ablation_markdown, evaluate_rows, metrics_json,
                                     model_predictions, write_pr_csvs)
    from gcseg.eval.by_size import by_size_markdown, found_by_size, views_by_size, views_markdown
    from gcseg.eval.diagnostics import (DIAGNOSTIC_ROWS, DIAGNOSTIC_TITLES, POLICY_ROWS, diagnostics_markdown,
                                        evaluate_diagnostics, setting_text)
    from gcseg.eval.classes import subsets_for, valid_labels_for
    from gcseg.eval.ranking import perfect_ranking_block, perfect_ranking_markdown
    from gcseg.eval.folders import read_label_list
    from gcseg.eval.gt_free import (gt_free_markdown, gt_free_stats, has_gt, no_gt_metrics,
                                    tracked_diagnostic_rows, write_empty_pr_csvs)
    from gcseg.models.mask_model import load_model
    from gcseg.readers import open_scene
    from gcseg.determinism import configure_torch

    configure_torch()
    cfg = p.eval
    scene_ids = split_scenes(p.data.source, scenes, cfg.split)
    label_list = None
    if cfg.gt_classes == "scannetpp_84":
        # gcseg.readers.scannetpp numbers a vertex's segment by the 1-based line of its class in the dataset's
        # top100_instance.txt: index 0 of the list is void, so names resolve to the reader's ids.
        from gcseg.readers.scannetpp import CLASS_LIST

        label_list = ["<void>", *read_label_list(scenes / CLASS_LIST)]
    valid_labels = valid_labels_for(cfg.gt_classes, label_list)
    ckpts = model_paths(models)
    track_files = track_paths(tracks, scene_ids)
    extra_files = baseline_paths(baselines, scene_ids) if baselines is not None else {}
    # inference only: the weights and the checkpoints stay as trained
    nets = {row: with_matrix_nms(load_model(path)[0], cfg.matrix_nms) for row, path in ckpts.items()}

    torch.manual_seed(p.seed)
    np.random.seed(p.seed)
    val_scenes = []
    rows: dict[str, dict[str, Any]] = {r: {} for r in ROWS}
    titles: dict[str, str] = {}  # rows from the baselines folder name their source
    diagnosed: dict[str, Any] = {}
    for sid in tqdm(scene_ids, desc="eval", unit="scene", disable=None):
        scene = open_scene(p.data.source, scenes, sid)
        cloud = scene.reference()
        if cloud is None:
            raise InputError(f"scene {sid} has no reference points", path=scenes / sid,
                             fix="give the scene a mesh, reference.ply or frames to fuse")
        val = eval_scene(sid, cloud, superpoints)
        val_scenes.append(val)
        tracked = read_tracks(track_files[sid], val)
        rows["lift_only"][sid] = tracked["lift_only"]
        diagnosed[sid] = tracked["diagnostics"]
        for row, net in nets.items():
            rows[row][sid] = model_predictions(net, val, cfg.fragments)
        if extra_files:
            add_baseline_rows(rows, titles, extra_files[sid], val)

    # GT-free statistics on every scene (the rows, and the no-policy tracking row where sam2_track wrote one);
    # AP and the diagnostics only on the scenes with GT (AP over no GT object is undefined)
    free = gt_free_stats(val_scenes, {**rows, **tracked_diagnostic_rows(diagnosed)}, min_points=cfg.min_region_size)
    gt_scenes = [v for v in val_scenes if has_gt(v)]
    if gt_scenes:
        score = dict(min_region_size=cfg.min_region_size, valid_labels=valid_labels, use_scores=cfg.use_scores,
                     subsets=subsets_for(cfg.gt_classes))
        results = evaluate_rows(gt_scenes, rows, **score)
        diagnostics = evaluate_diagnostics(gt_scenes, diagnosed, **score)
        from gcseg.baselines.artifact import NOTE

        notes = [NOTE] if titles else []
        if cfg.fragments is not None:
            f = cfg.fragments
            notes.append(f"Model rows: every predicted mask, plus the connected pieces (points {f.eps:g} m apart, "
                         f">= {f.min_points} points) of a mask that falls apart, scored {f.score_factor:g} x its "
                         "mask's (eval.fragments; Mask3D / Segment3D evaluate with DBSCAN pieces).")
        kernels = sorted({net.cfg.matrix_nms for net in nets.values()} - {None})  # as applied (or checkpoint's)
        if kernels:
            notes.append(f"Model rows ranked by matrix NMS ({' / '.join(kernels)} kernel) after the hard NMS: a "
                         "mask's score decays by its overlap with better-scored masks (eval.matrix_nms; OneFormer3D's "
                         "ranking; inference only).")
        text = ablation_markdown(results, gt_classes=cfg.gt_classes, num_scenes=len(gt_scenes), titles=titles,
                                 notes=notes)
        text += "\n" + diagnostics_markdown(diagnostics, num_scenes=len(gt_scenes))
        # the label diagnostics by size too: where along ceiling -> proposals -> tracked labels the objects of a
        # size are lost or merged (only rows that every scene with GT has); one pass over both sets of rows
        diag_rows = {name: {v.scene_id: diagnosed[v.scene_id]["rows"][name] for v in gt_scenes}
                     for name in DIAGNOSTIC_ROWS + POLICY_ROWS
                     if all(name in ((diagnosed.get(v.scene_id) or {}).get("rows") or {}) for v in gt_scenes)}
        sizes = found_by_size(gt_scenes, {**rows, **diag_rows}, min_region_size=cfg.min_region_size,
                              valid_labels=valid_labels)
        found = sizes["rows"]
        sizes["rows"] = {name: found[name] for name in rows}
        text += "\n## Objects found by size (uses GT)\n\n" + by_size_markdown(sizes, {**ROW_TITLES, **titles})
        if diag_rows:
            sizes["diagnostic_rows"] = {name: found[name] for name in diag_rows}
            text += ("\n### Label diagnostics by size (use GT)\n\n"
                     + by_size_markdown({**sizes, "rows": sizes["diagnostic_rows"]}, DIAGNOSTIC_TITLES))
        # the same objects per keyframe view: what the proposer finds view by view, before the vote
        views = [(diagnosed.get(v.scene_id) or {}).get("views") for v in gt_scenes]
        if views and all(x is not None for x in views):
            sizes["view_rows"] = views_by_size(views)
            settings = [diagnosed[v.scene_id].get("settings") or {} for v in gt_scenes]
            text += ("\n### Proposals per keyframe view by size (use GT)\n\n"
                     + views_markdown(sizes["view_rows"], min_area_px=setting_text(settings, "min_area_px"),
                                      iou=setting_text(settings, "coverage_iou")))
        # what the confidences cost each row of the ablation: the same masks in the order the GT gives them
        diagnostics["perfect_ranking"] = perfect_ranking_block(
            gt_scenes, {r: rows[r] for r in ROWS}, results, min_region_size=cfg.min_region_size,
            valid_labels=valid_labels)
        text += "\n" + perfect_ranking_markdown(diagnostics["perfect_ranking"], ROW_TITLES)
        metrics = {**metrics_json(results), "diagnostics": diagnostics}
        if cfg.own_labels:
            own, n_own = own_label_results(p, scenes, tracks, superpoints, nets, score)
            if own:
                metrics["own_labels"] = metrics_json(own)
                text += "\n" + own_labels_markdown(own, n_own)
    else:
        text = (f"No GT object in the {len(val_scenes)} {cfg.split} scene(s) ({', '.join(scene_ids[:5])}"
                f"{', ...' if len(scene_ids) > 5 else ''}): AP is undefined, so only the GT-free statistics below "
                "are reported (scans without annotation; give a labelled reference.ply, mesh or splits.json "
                "with labelled val scenes for AP).\n")
        results, metrics = None, no_gt_metrics(free, rows)
        sizes = {"bins": [], "objects": [], "rows": {}, "note": "no scene with GT"}
    text += "\n" + gt_free_markdown(free)
    write_text(out, json.dumps(metrics, indent=2, sort_keys=True, allow_nan=False) + "\n")
    write_text(gt_free, json.dumps(free, indent=2, sort_keys=True, allow_nan=False) + "\n")
    write_text(by_size, json.dumps(sizes, indent=2, sort_keys=True, allow_nan=False) + "\n")
    write_text(table, text)
    if results is not None:
        write_pr_csvs(plots, results)
    else:  # the plots output still exists: one header-only CSV per row (no curve without GT)
        write_empty_pr_csvs(plots, list(rows))
    typer.echo(text.rstrip("\n"))
    typer.echo(f"metrics -> {out}; GT-free statistics -> {gt_free}; by size -> {by_size}; table -> {table}; "
               f"PR curves -> {plots}/<row>.csv")


if __name__ == "__main__":
    run_module(app)
