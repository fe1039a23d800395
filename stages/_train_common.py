"""What the three training stages share: their params models and the run (labels folder -> model.pt,
checkpoints/, DVCLive metrics). The stage modules stay thin Typer commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from gcseg.models.config import ModelConfig
from gcseg.train.config import Stage3TrainConfig, TrainConfig
from stages._common import DataSection, Section, load_params


class Stage1Params(Section):
    """Top-level params.yaml keys stage1_train reads (= its `params:` in dvc.yaml)."""

    seed: int
    data: DataSection
    model: ModelConfig
    stage1_train: TrainConfig


class Stage2Params(Section):
    seed: int
    data: DataSection
    model: ModelConfig
    stage2_train: TrainConfig


class Stage3Params(Section):
    seed: int
    data: DataSection
    model: ModelConfig
    stage3_train: Stage3TrainConfig


def gt_val_fn(source: str, scenes: Path, ref_superpoints: Path | None = None):  # type: ignore[no-untyped-def]
    """A val_fn scoring class-agnostic AP / AP50 / AP25 (gcseg.eval, ScanNet protocol, min region 100) on the
    `val` split's reference clouds with GT; None (with a note) if the source has no val scenes with GT.
    ref_superpoints: the superpoints stage's folder (superpoint models; else computed per val scene once)."""
    from gcseg.errors import InputError
    from gcseg.eval.ablation import evaluate_rows, model_predictions, val_scene_from_cloud
    from gcseg.readers import list_scenes, open_scene

    try:
        val = []
        for sid in list_scenes(source, scenes, "val"):
            cloud = open_scene(source, scenes, sid).reference()
            if cloud is None:
                raise InputError(f"val scene {sid} has no reference cloud")
            v = val_scene_from_cloud(sid, cloud)
            if ref_superpoints is not None:
                from dataclasses import replace

                from gcseg.superpoints import REFERENCE, read_superpoints

                v = replace(v, superpoint=read_superpoints(ref_superpoints / f"{sid}.h5", REFERENCE, cloud.coord))
            val.append(v)
    except InputError as exc:
        typer.echo(f"note: no GT validation during training ({exc})")
        return None

    def val_fn(model, epoch: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
        rows = {"model": {s.scene_id: model_predictions(model, s) for s in val}}
        m = evaluate_rows(val, rows)["model"].metrics()
        return {k: float("nan") if m[k] is None else float(m[k]) for k in ("AP", "AP50", "AP25")}

    return val_fn


def train_split_files(files: list[Path], source: str, scenes: Path) -> list[Path]:
    """Keep the label files of train-split and unlabelled scenes only (Stage 3 pseudo-labels the unlabelled ones):
    upstream stages also label val scenes (the eval stage's lift-only row needs them), and training on them would
    leak the val split."""
    from gcseg.errors import InputError
    from gcseg.readers import list_scenes

    train_ids = set(list_scenes(source, scenes, "train+unlabelled"))
    kept = [f for f in files if f.stem in train_ids]
    if not kept:
        raise InputError(f"none of the {len(files)} label files belongs to a train-split scene of {scenes}",
                         path=files[0].parent if files else scenes,
                         fix="check data.root / splits.json, or rerun the upstream stage on the train split")
    return kept


def run_training(stage: str, params_model: type[Section], params: Path, labels: Path | list[Path], out: Path,
                 metrics: Path, init: Path | None, scenes: Path | None = None, superpoints: Path | None = None,
                 ref_superpoints: Path | None = None) -> None:
    """Train on every point-sample file of `labels` (one folder or several, their files in the order given);
    `init` = upstream model.pt (None: from scratch).

    With `scenes` (the data root) and `val_gt`, every `val_every` epochs the model is also scored against the GT of
    the val split (logged as val/AP, val/AP50, val/AP25; monitoring only, never used to pick a model), besides
    val/labels_AP50 (AP50 against the first `val_samples` training pseudo-labels: a fit check).
    `superpoints`: superpoints of the label files' clouds; `ref_superpoints`: of the reference clouds (GT val)."""
    from gcseg.atomic import check_output
    from gcseg.errors import InputError

    p = load_params(params, params_model)  # params, outputs and init checked before torch is even imported
    for path in (out, metrics):  # create nothing
        check_output(path)
    if init is not None and not init.is_file():
        raise InputError("initial model not found", path=init, fix="run the upstream training stage first")
    import torch

    from gcseg.train.dataset import list_sample_files
    from gcseg.train.loop import train
    from gcseg.train.quick_metrics import labels_ap_fn
    from gcseg.determinism import configure_torch

    configure_torch()
    cfg: TrainConfig = getattr(p, stage)
    files = [f for folder in ([labels] if isinstance(labels, Path) else labels) for f in list_sample_files(folder)]
    if scenes is not None:
        files = train_split_files(files, p.data.source, scenes)  # type: ignore[attr-defined]
    if torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    else:
        device = "cpu"
    val_fn = None
    if cfg.val_every:
        sp_dir = superpoints if p.model.mask_on == "superpoint" else None  # type: ignore[attr-defined]
        ref_dir = ref_superpoints if p.model.mask_on == "superpoint" else None  # type: ignore[attr-defined]
        fns = [labels_ap_fn(files, cfg.val_samples, superpoints=sp_dir)]
        gt_fn = (gt_val_fn(p.data.source, scenes, ref_dir)  # type: ignore[attr-defined]
                 if scenes is not None and cfg.val_gt else None)
        if gt_fn is not None:
            fns.append(gt_fn)

        def val_fn(model, epoch: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
            return {k: v for fn in fns for k, v in fn(model, epoch).items()}
    res = train(cfg, files, out, model_cfg=p.model, seed=p.seed, metrics_dir=metrics, init_checkpoint=init,
                val_fn=val_fn, progress=True, device=device, superpoints=superpoints)
    last = res.history[-1] if res.history else {}
    resumed = f" (resumed after epoch {res.resumed_from})" if res.resumed_from else ""
    typer.echo(f"{stage}: {res.epochs_done} epochs on {len(files)} file(s){resumed}, final loss "
               f"{last.get('train/loss', float('nan')):.4f} -> {res.model_path}; metrics -> {metrics}")
