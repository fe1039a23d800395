"""The training loop shared by Stage 1, 2 and 3: AdamW + OneCycleLR (Segment3D/Mask3D), seeded, resumable.

Outputs under `out_dir`:
    checkpoints/last.pt   full state after every `checkpoint_every` epochs (atomic; DVC `persist: true` out);
                          a rerun with the same inputs resumes from it, a rerun with other inputs/params starts
                          over (the checkpoint carries a fingerprint of config, seed and training data)
    model.pt              final weights {"schema_version", "config", "model", "epoch"}, byte-deterministic
and DVCLive metrics under `metrics_dir` (`Live(dir, dvcyaml=False, save_dvc_exp=False)`): per epoch
`train/loss`, `train/ce`, `train/bce`, `train/dice`, `train/lr`, plus `val/...` from `val_fn`. The per-epoch
history is stored in the checkpoint and replayed on resume, so the metrics of a resumed run equal an
uninterrupted run's.

Determinism: per-epoch torch seed (dropout), per-sample seeds for augmentation, key subsampling and the
matcher's points; resuming restores model, optimizer and scheduler, so a killed-and-resumed run ends with the
same weights as an uninterrupted one (same thread count).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gcseg.atomic import clean_stale_temporaries
from gcseg.errors import ArtifactError, ConfigError
from gcseg.models.loss import set_criterion
from gcseg.models.mask_model import (MaskModel, ModelConfig, build_model, check_architecture, load_state_strict_into,
                                     read_checkpoint, save_checkpoint)
from gcseg.train import ddp
from gcseg.train.config import LossConfig, TrainConfig
from gcseg.train.dataset import Batch, PointSampleDataset, make_batch, mix_samples, sample_seed

__all__ = ["LossConfig", "TrainConfig", "TrainResult", "train", "fingerprint", "recompute_bn_stats"]

ValFn = Callable[[MaskModel, int], dict[str, float]]


@dataclass
class TrainResult:
    model_path: Path
    epochs_done: int
    resumed_from: int
    history: list[dict[str, float]] = field(default_factory=list)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(model_cfg: ModelConfig, cfg: TrainConfig, seed: int, files: list[Path], world_size: int,
                init_checkpoint: Path | None) -> str:
    """What a checkpoint must match to be resumed: configs, seed, world size, training data and init weights."""
    doc = {"model": model_cfg.checkpoint_dict(), "train": cfg.fingerprint_dict(), "seed": seed,
           "world_size": world_size, "files": [[p.name, _file_digest(p)] for p in files],
           "init": None if init_checkpoint is None else _file_digest(Path(init_checkpoint))}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int, world_size: int) -> list[list[int]]:
    order = np.random.default_rng([seed, epoch, 12345]).permutation(n).tolist()
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    # every rank needs at least one sample per step: drop a final batch smaller than the world
    return [b for b in batches if len(b) >= world_size]


def _steps_per_epoch(n: int, batch_size: int, world_size: int) -> int:
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world_size and rest > 0 else 0)


def _batch(ds: PointSampleDataset, draws: list[int], epoch: int, seed: int, model_cfg: ModelConfig,
           mix3d: bool = False) -> Batch:
    """The batch of epoch positions `draws` (position j = sample j mod len(ds), see TrainConfig.repeats); with
    mix3d, consecutive pairs of them mixed into one scene (an odd last one stays alone), seeded by the first."""
    n = len(ds)
    samples = [ds.get(j % n, epoch, draw=j) for j in draws]
    seeds = [sample_seed(seed, epoch, j) for j in draws]
    if mix3d and len(samples) > 1:
        samples = [mix_samples(*samples[i:i + 2]) if i + 1 < len(samples) else samples[i]
                   for i in range(0, len(samples), 2)]
        seeds = seeds[::2]
    return make_batch(samples, seeds, voxel_size=model_cfg.voxel_size, in_channels=model_cfg.in_channels,
                      mask_on=model_cfg.mask_on)


class _Metrics:
    """DVCLive writer (rank 0 only) that replays the stored history, so resumed metrics equal uninterrupted ones."""

    def __init__(self, metrics_dir: Path | None, history: list[dict[str, float]]):
        self.live = None
        if metrics_dir is None:
            return
        from dvclive import Live

        self.live = Live(dir=str(metrics_dir), dvcyaml=False, save_dvc_exp=False, resume=False, report=None)
        for rec in history:
            self.log(rec)

    def log(self, rec: dict[str, float]) -> None:
        if self.live is None:
            return
        for k in sorted(rec):
            if k != "epoch":
                self.live.log_metric(k, rec[k])
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()


def train(cfg: TrainConfig, train_files: list[Path], out_dir: str | Path, *, model_cfg: ModelConfig, seed: int,
          metrics_dir: str | Path | None = None, init_checkpoint: str | Path | None = None,
          val_fn: ValFn | None = None, progress: bool = True, device: str = "cpu",
          superpoints: str | Path | None = None) -> TrainResult:
    """Train a mask model on point-sample files; write `out_dir/model.pt` (rank 0) and return a summary.

    Arguments:
        cfg: training settings; model_cfg: architecture (must equal the init checkpoint's architecture).
        train_files: point-sample HDF5 files (gcseg.io.samples).
        out_dir: receives model.pt and checkpoints/.
        metrics_dir: DVCLive folder (None: no metrics written).
        init_checkpoint: weights to start from (Stage 2 from Stage 1, Stage 3 from Stage 2); optimizer fresh.
        val_fn: called as val_fn(model, epoch) every cfg.val_every epochs and after the last epoch (when
            cfg.val_every > 0) on rank 0; its dict is logged under `val/`.
        device: "cpu" or "cuda"; under torchrun (WORLD_SIZE > 1) the process group is set up here.
        superpoints: folder of gcseg.superpoints files (one per label file, same name); required when
            model_cfg.mask_on is "superpoint".
    """
    rank, world_size = ddp.init_from_env()
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    files = [Path(f) for f in train_files]
    if cfg.batch_size < world_size:
        raise ConfigError(f"batch_size {cfg.batch_size} is smaller than the {world_size} ranks",
                          fix="raise batch_size (the global batch is split across ranks)")
    if model_cfg.mask_on == "superpoint" and superpoints is None:
        raise ConfigError("model.mask_on is superpoint but no superpoints folder was given",
                          fix="pass --superpoints (data/superpoints_keyframes for Stage 1, data/superpoints after)")
    ds = PointSampleDataset(files, augment_cfg=cfg.augment, seed=seed, max_points=cfg.max_points,
                            crop_size=cfg.crop_size,
                            superpoints=superpoints if model_cfg.mask_on == "superpoint" else None,
                            label_confidence=cfg.loss.objectness == "confidence")
    if len(ds) < world_size:
        raise ConfigError(f"{len(ds)} training samples for {world_size} ranks", fix="use fewer ranks")
    ds.check_superpoints()
    steps = _steps_per_epoch(len(ds) * cfg.repeats, cfg.batch_size, world_size)
    init_path = None if init_checkpoint is None else Path(init_checkpoint)
    sp_files = [Path(superpoints) / f.name for f in files] if model_cfg.mask_on == "superpoint" else []
    fp = fingerprint(model_cfg, cfg, seed, files + [f for f in sp_files if f.is_file()], world_size, init_path)

    if cfg.wise_ft != 1.0 and init_checkpoint is None:
        raise ConfigError(f"wise_ft {cfg.wise_ft} interpolates towards the init weights, but there is no init",
                          fix="set wise_ft: 1.0 for a stage trained from scratch (Stage 1)")

    torch.manual_seed(seed)
    model = build_model(model_cfg)
    init_state: dict[str, torch.Tensor] | None = None
    if init_checkpoint is not None:
        ck = read_checkpoint(init_checkpoint)
        check_architecture(ck["config"], model_cfg, init_checkpoint)
        load_state_strict_into(model, ck["model"], init_checkpoint)
        if cfg.wise_ft != 1.0:
            init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    dev = torch.device(device)
    model.to(dev)
    if world_size > 1:
        ddp.convert_batchnorm(model)
        net: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index or 0] if dev.type == "cuda" else None)
    else:
        net = model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps,
                                                pct_start=cfg.pct_start)

    start_epoch, history = 0, []
    last = ckpt_dir / "last.pt"
    if rank == 0:
        clean_stale_temporaries(ckpt_dir)
    if last.is_file():
        try:
            ck = read_checkpoint(last)
        except ArtifactError as exc:  # e.g. an older schema: not resumable, start over (it is overwritten)
            tqdm.write(f"ignoring checkpoint that cannot be resumed: {exc}")
            ck = {}
        if ck.get("fingerprint") == fp:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            start_epoch, history = int(ck["epoch"]), list(ck["history"])
    ddp.barrier()
    resumed_from = start_epoch
    weights = cfg.loss.weights()
    metrics = _Metrics(Path(metrics_dir), history) if (rank == 0 and metrics_dir is not None) else _Metrics(None, [])
    t0 = time.monotonic()
    bn_done: tuple[int, dict[str, torch.Tensor]] | None = None  # (epoch, state) of a validated snapshot
    bar = tqdm(total=cfg.epochs * steps, initial=start_epoch * steps, desc="train", unit="step",
               disable=None if progress and rank == 0 else True, dynamic_ncols=True)  # None: off when not a TTY
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        torch.manual_seed(seed * 100003 + epoch)  # dropout; independent of where a run was resumed
        sums = np.zeros(6)  # loss, ce, bce, dice (sample-weighted), samples, IoU head's term
        for gb in _epoch_batches(len(ds) * cfg.repeats, cfg.batch_size, seed, epoch, world_size):
            mine = ddp.shard(gb, rank, world_size)
            batch = _batch(ds, mine, epoch, seed, model_cfg, mix3d=cfg.mix3d)
            preds = net(batch.coords.to(dev), batch.feats.to(dev), batch.seeds,
                        None if batch.sp is None else batch.sp.to(dev), random_start=True)
            for t in batch.targets:
                t.labels = t.labels.to(dev)
            terms = set_criterion(preds, batch.targets, weights)
            loss = terms["loss"] * (len(mine) * world_size / len(gb))  # DDP averages: see gcseg.train.ddp
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:  # after DDP's all-reduce: every rank clips the same averaged gradient
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            k = len(mine)
            sums += [float(terms["loss"].detach()) * k, float(terms["ce"]) * k, float(terms["bce"]) * k,
                     float(terms["dice"]) * k, k, float(terms["iou"]) * k if "iou" in terms else 0.0]
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(terms['loss'].detach()):.3f}")
        tot = ddp.all_reduce_sum(sums.tolist())
        n = max(tot[4], 1.0)
        rec = {"epoch": float(epoch + 1), "train/loss": tot[0] / n, "train/ce": tot[1] / n,
               "train/bce": tot[2] / n, "train/dice": tot[3] / n, "train/lr": float(sched.get_last_lr()[0])}
        if model_cfg.iou_head:
            rec["train/iou"] = tot[5] / n
        over_budget = cfg.time_budget_s is not None and time.monotonic() - t0 > cfg.time_budget_s
        stop = torch.tensor([1.0 if over_budget else 0.0])
        if world_size > 1:  # all ranks stop together (their clocks differ), and so validate together below
            torch.distributed.broadcast(stop, 0)
        stopping = float(stop) > 0 and epoch + 1 < cfg.epochs
        done = epoch + 1 == cfg.epochs or stopping
        # every val_every epochs, and always after the last one: the final model is checked whatever
        # `epochs` (e.g. `-S stage2_train.epochs=48` with val_every 28) or a time budget makes the last epoch
        if val_fn is not None and cfg.val_every and ((epoch + 1) % cfg.val_every == 0 or done):
            # validate a copy with wise_ft applied and BN statistics recomputed (what model.pt would be now);
            # collective under DDP
            snap = copy.deepcopy(model)
            if init_state is not None:
                wise_ft_(snap, init_state, cfg.wise_ft)
            if cfg.bn_recompute_batches:
                recompute_bn_stats(snap, ds, cfg, model_cfg, seed, epoch + 1, world_size, rank, dev)
            if rank == 0:
                rec.update({f"val/{k}": float(v) for k, v in val_fn(snap.eval(), epoch + 1).items()})
            if cfg.bn_recompute_batches and done:
                # the final model gets exactly these statistics (same weights, same batches): keep, not redo
                bn_done = (epoch + 1, {k: v.clone() for k, v in snap.state_dict().items()})
            del snap
        history.append(rec)
        if rank == 0 and ((epoch + 1) % cfg.checkpoint_every == 0 or done):
            save_checkpoint(last, model, model_cfg, epoch=epoch + 1, optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), history=history, fingerprint=fp,
                            rng={"torch": torch.get_rng_state()})
        metrics.log(rec)
        if stopping:
            tqdm.write(f"time budget of {cfg.time_budget_s} s reached after epoch {epoch + 1}/{cfg.epochs}")
            break
    bar.close()
    done_epochs = len(history)
    if bn_done is not None and bn_done[0] == done_epochs:  # validated after the last epoch: same result
        model.load_state_dict(bn_done[1])
        net.eval()
    else:
        if init_state is not None:
            wise_ft_(model, init_state, cfg.wise_ft)
        if cfg.bn_recompute_batches:
            recompute_bn_stats(net, ds, cfg, model_cfg, seed, done_epochs, world_size, rank, dev)
    metrics.close()
    model_path = out_dir / "model.pt"
    if rank == 0:
        save_checkpoint(model_path, model, model_cfg, epoch=done_epochs)  # weights only: the final model
    ddp.barrier()
    return TrainResult(model_path, done_epochs, resumed_from, history)


@torch.no_grad()
def wise_ft_(model: torch.nn.Module, init_state: dict[str, torch.Tensor], alpha: float) -> None:
    """In place: every floating-point weight and buffer = init + alpha x (current - init) (WiSE-FT). Integer
    buffers (BatchNorm's batch counts) keep the trained values."""
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            v.copy_(torch.lerp(init_state[k].to(v.device, v.dtype), v, alpha))


@torch.no_grad()
def recompute_bn_stats(net: torch.nn.Module, ds: PointSampleDataset, cfg: TrainConfig, model_cfg: ModelConfig,
                       seed: int, epoch: int, world_size: int, rank: int, dev: torch.device) -> None:
    """Replace BatchNorm running statistics by their average over `cfg.bn_recompute_batches` training batches
    with the final weights ("precise BN", detectron2 `PreciseBN`, torch `swa_utils.update_bn`).

    Why: with Mask3D's BN momentum 0.02 the running statistics of a short training run still lag far behind
    the weights, and eval-mode predictions collapse (measured on the toy scene: AP50 0.63 in train mode, 0.0 in
    eval mode after 15 steps). Deterministic: batches of the fixed epoch index `epoch`, per-sample seeds."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    net.train()
    for gb in _epoch_batches(len(ds) * cfg.repeats, cfg.batch_size, seed, epoch,
                             world_size)[: cfg.bn_recompute_batches]:
        mine = ddp.shard(gb, rank, world_size)
        batch = _batch(ds, mine, epoch, seed, model_cfg)
        model = net.module if hasattr(net, "module") else net
        model.backbone(batch.coords.to(dev), batch.feats.to(dev))  # BN lives in the backbone only
    for m, mom in zip(bns, saved):
        m.momentum = mom
    net.eval()
