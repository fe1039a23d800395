"""DVC stage `eval`: the ablation on the val scenes. Class-agnostic AP / AP50 / AP25 (ScanNet protocol) of the
Stage 2 tracked labels used directly (lift-only) and of the Stage 1, 1+2 and 1+2+3 models on every val scene's
reference cloud; writes metrics/eval.json (one entry per row), the Markdown ablation table and one PR-curve CSV
per row (IoU 0.5) for `dvc plots`, and prints the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import Field

from stages._common import DataSection, Section, load_params, make_app, run_module, split_scenes, user_errors

app = make_app(__doc__ or "")

MODEL_ROWS: tuple[str, ...] = ("stage1", "stage2", "stage3")


class LiftOnlySection(Section):
    """`eval.lift_only`: how the lift-only row's confidences are recovered (gcseg.eval.ablation.vote_shares).
    The tracked id maps are re-voted onto the reference cloud with the association `sam2_track` used."""

    association: Literal["point", "pixel"] = "point"  # keep equal to sam2_track.lift.association
    max_dist: float = Field(0.05, gt=0)  # metres; keep equal to sam2_track.lift.max_dist
    voxel: float | None = Field(0.01, gt=0)  # association grid in metres (None = exact); = sam2_track.lift.voxel


class EvalSection(Section):
    """`eval:` in params.yaml."""

    gt_classes: Literal["synthetic", "scannet200", "scannetv2_18", "scannetpp_84"] = "synthetic"
    min_region_size: int = Field(100, ge=1)
    use_scores: bool = True
    split: Literal["train", "val", "all"] = "val"
    lift_only: LiftOnlySection = LiftOnlySection()


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
    from gcseg.errors import ArtifactError

    paths = {sid: tracks / f"{sid}.h5" for sid in scene_ids}
    missing = [sid for sid, p in paths.items() if not p.is_file()]
    if missing:
        raise ArtifactError(f"no tracked labels for val scene(s) {', '.join(missing[:5])}"
                            + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                            path=paths[missing[0]],
                            fix="track the val scenes too: set sam2_track.split: all and `dvc repro sam2_track`")
    return paths


def lift_only_row(scene: Any, track_path: Path, val: Any, cfg: LiftOnlySection) -> Any:
    """The lift-only prediction of one scene from its sam2_track artifact (labels + id maps)."""
    import numpy as np

    from gcseg.errors import ArtifactError
    from gcseg.eval.ablation import lift_only_predictions, vote_shares
    from gcseg.io.h5 import open_h5
    from gcseg.io.samples import SCHEMA_VERSION
    from gcseg.tracking.artifact import SCHEMA

    with open_h5(track_path, schema=SCHEMA, version=SCHEMA_VERSION) as f:
        if "samples/scene/instance" not in f or "id_maps" not in f or "frames" not in f:
            raise ArtifactError("tracked-label artifact lacks samples/scene, id_maps or frames", path=track_path,
                                fix="rerun `dvc repro sam2_track`")
        coord = f["samples/scene/coord"][()]
        labels = f["samples/scene/instance"][()].astype(np.int64)
        if coord.shape != val.coord.shape or not np.allclose(coord, val.coord, atol=1e-5):
            raise ArtifactError(f"tracked labels of {val.scene_id} were made on another reference cloud "
                                f"({coord.shape[0]} points, scene has {val.coord.shape[0]})", path=track_path,
                                fix="rerun `dvc repro sam2_track` on the current scenes")
        frames = f["frames"][()].astype(np.int64)
        id_maps = f["id_maps"]
        views = ((scene.frame(int(fi)), id_maps[i]) for i, fi in enumerate(frames))
        shares = vote_shares(val.coord, labels, views, max_dist=cfg.max_dist, voxel=cfg.voxel,
                             association=cfg.association)
    return lift_only_predictions(labels, shares)


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
    superpoints: Annotated[Path | None, typer.Option("--superpoints", help="superpoints stage folder (<scene>.h5): "
                                                     "superpoint models predict on them (else computed).")] = None,
) -> None:
    """Class-agnostic AP/AP50/AP25 of every stage side by side (the ablation table)."""
    from gcseg.atomic import check_output

    p = load_params(params, Params)  # params and outputs checked before torch is even imported
    for path in (out, table, plots):  # create nothing
        check_output(path)
    import numpy as np
    import torch
    from tqdm import tqdm

    from gcseg.atomic import write_text
    from gcseg.errors import InputError
    from gcseg.eval.ablation import (ROWS, ablation_markdown, evaluate_rows, metrics_json, model_predictions,
                                     val_scene_from_cloud, write_pr_csvs)
    from gcseg.eval.classes import subsets_for, valid_labels_for
    from gcseg.eval.folders import read_label_list
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
    nets = {row: load_model(path)[0] for row, path in ckpts.items()}

    torch.manual_seed(p.seed)
    np.random.seed(p.seed)
    val_scenes = []
    rows: dict[str, dict[str, Any]] = {r: {} for r in ROWS}
    for sid in tqdm(scene_ids, desc="eval", unit="scene", disable=None):
        scene = open_scene(p.data.source, scenes, sid)
        cloud = scene.reference()
        if cloud is None:
            raise InputError(f"scene {sid} has no reference points with GT", path=scenes / sid,
                             fix="evaluate scenes with a labelled reference cloud (mesh or reference.ply)")
        val = val_scene_from_cloud(sid, cloud)
        if superpoints is not None:
            from dataclasses import replace

            from gcseg.superpoints import REFERENCE, read_superpoints

            val = replace(val, superpoint=read_superpoints(superpoints / f"{sid}.h5", REFERENCE, cloud.coord))
        val_scenes.append(val)
        rows["lift_only"][sid] = lift_only_row(scene, track_files[sid], val, cfg.lift_only)
        for row, net in nets.items():
            rows[row][sid] = model_predictions(net, val)

    if not any(bool((v.gt_ids > 0).any()) for v in val_scenes):  # AP over no GT instance is undefined
        raise InputError(f"no GT object in the {cfg.split} scene(s) {', '.join(scene_ids[:5])}: AP is undefined",
                         path=scenes, fix="evaluate scenes whose reference cloud has GT instances "
                                          "(check eval.split, splits.json and the scenes' reference.ply)")
    results = evaluate_rows(val_scenes, rows, min_region_size=cfg.min_region_size, valid_labels=valid_labels,
                            use_scores=cfg.use_scores, subsets=subsets_for(cfg.gt_classes))
    text = ablation_markdown(results, gt_classes=cfg.gt_classes, num_scenes=len(val_scenes))
    write_text(out, json.dumps(metrics_json(results), indent=2, sort_keys=True, allow_nan=False) + "\n")
    write_text(table, text)
    write_pr_csvs(plots, results)
    typer.echo(text.rstrip("\n"))
    typer.echo(f"metrics -> {out}; table -> {table}; PR curves -> {plots}/<row>.csv")


if __name__ == "__main__":
    run_module(app)
