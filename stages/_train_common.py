"""What the three training stages share: their params models and the run (labels folder -> model.pt,
checkpoints/, DVCLive metrics). The stage modules stay thin Typer commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from gcseg.models.config import ModelConfig
from gcseg.train.config import TrainConfig
from stages._common import Section, load_params


class Stage1Params(Section):
    """Top-level params.yaml keys stage1_train reads (= its `params:` in dvc.yaml)."""

    seed: int
    model: ModelConfig
    stage1_train: TrainConfig


class Stage2Params(Section):
    seed: int
    model: ModelConfig
    stage2_train: TrainConfig


class Stage3Params(Section):
    seed: int
    model: ModelConfig
    stage3_train: TrainConfig


def run_training(stage: str, params_model: type[Section], params: Path, labels: Path, out: Path, metrics: Path,
                 init: Path | None) -> None:
    """Train on every point-sample file of `labels`; `init` = upstream model.pt (None: from scratch)."""
    import torch

    from gcseg.errors import InputError
    from gcseg.train.dataset import list_sample_files
    from gcseg.train.loop import train
    from gcseg.train.quick_metrics import labels_ap_fn

    p = load_params(params, params_model)
    cfg: TrainConfig = getattr(p, stage)
    files = list_sample_files(labels)
    if init is not None and not init.is_file():
        raise InputError("initial model not found", path=init, fix="run the upstream training stage first")
    if torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    else:
        device = "cpu"
    val_fn = labels_ap_fn(files, cfg.val_samples) if cfg.val_every else None
    res = train(cfg, files, out, model_cfg=p.model, seed=p.seed, metrics_dir=metrics, init_checkpoint=init,
                val_fn=val_fn, progress=True, device=device)
    last = res.history[-1] if res.history else {}
    resumed = f" (resumed after epoch {res.resumed_from})" if res.resumed_from else ""
    typer.echo(f"{stage}: {res.epochs_done} epochs on {len(files)} file(s){resumed}, final loss "
               f"{last.get('train/loss', float('nan')):.4f} -> {res.model_path}; metrics -> {metrics}")
