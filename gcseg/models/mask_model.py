"""The class-agnostic mask model: sparse Res16UNet backbone + Mask3D-style query decoder, its config, builder
and checkpoint format.

Checkpoint (`torch.save` of a dict, written atomically, byte-deterministic for identical content):
    {"schema_version": 1, "config": ModelConfig dict, "model": state_dict, "epoch": int,
     "optimizer": ..., "scheduler": ..., "rng": ..., ...}  (the last three only in training checkpoints)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from gcseg.atomic import write_bytes
from gcseg.errors import ArtifactError, ConfigError
from gcseg.models.config import RUNTIME_FIELDS, ModelConfig
from gcseg.models.decoder import MaskDecoder, Prediction, SuperpointPool

__all__ = ["CHECKPOINT_SCHEMA_VERSION", "RUNTIME_FIELDS", "MaskModel", "ModelConfig", "build_model", "load_model",
           "save_checkpoint", "read_checkpoint", "check_architecture", "point_features"]

CHECKPOINT_SCHEMA_VERSION = 1


def point_features(coord: np.ndarray | Tensor, color: np.ndarray | Tensor, in_channels: int) -> Tensor:
    """Per-point input features: colour scaled to [-0.5, 0.5] (+ xyz centred on the cloud's mean if 6 channels)."""
    c = torch.as_tensor(np.asarray(color), dtype=torch.float32) / 255.0 - 0.5
    if in_channels == 3:
        return c
    xyz = torch.as_tensor(np.asarray(coord), dtype=torch.float32)
    return torch.cat([c, xyz - xyz.mean(0, keepdim=True)], 1)


class MaskModel(nn.Module):
    """Backbone + decoder. `forward(coords [V,4], feats [V,C], seeds, sp) -> list[Prediction]` (last = output);
    `sp` (the batch's superpoints) is required when cfg.mask_on is "superpoint"."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from gcseg.models.backbone import Res16UNet

        self.cfg = cfg
        self.backbone = Res16UNet(cfg.in_channels, list(cfg.planes), list(cfg.layers), cfg.backend,
                                  bn_momentum=cfg.bn_momentum)
        p = cfg.planes
        # BackboneOutput.levels: strides 16, 8, 4, 2, 1 with channels planes[3..7] (gcseg.models.backbone)
        level_channels, mask_channels = [p[3], p[4], p[5], p[6], p[7]], p[7]
        try:
            self.decoder = MaskDecoder(level_channels=level_channels, mask_channels=mask_channels,
                                       hlevels=list(cfg.hlevels), num_decoders=cfg.num_decoders,
                                       hidden_dim=cfg.hidden_dim, num_queries=cfg.num_queries,
                                       num_heads=cfg.num_heads, ffn_dim=cfg.ffn_dim, dropout=cfg.dropout,
                                       max_attn_voxels=cfg.max_attn_voxels,
                                       queries=cfg.queries, test_queries=cfg.test_queries,
                                       seed_sampling=cfg.seed_sampling, test_attn_voxels=cfg.test_attn_voxels,
                                       test_attn_mb=cfg.test_attn_mb, iou_head=cfg.iou_head)
        except ValueError as exc:
            raise ConfigError(f"model: {exc}", fix="set model.hlevels to levels the backbone has") from exc

    def forward(self, coords: Tensor, feats: Tensor, seeds: list[int], sp: SuperpointPool | None = None,
                random_start: bool = False) -> list[Prediction]:
        if (self.cfg.mask_on == "superpoint") != (sp is not None):
            raise ValueError(f"model predicts on {self.cfg.mask_on}s: pass superpoints exactly when it does")
        bo = self.backbone(coords, feats)
        # the backbone gives level coords in the level's own units (floor(c / stride)); the decoder wants them in
        # finest-voxel units (MinkowskiEngine's convention: multiples of the stride)
        levels = [(f, torch.cat([c[:, :1], c[:, 1:] * s], 1)) for (f, c), s in zip(bo.levels, bo.strides)]
        return self.decoder(levels, list(bo.strides), bo.out, coords, seeds, sp, random_start)


def build_model(cfg: ModelConfig) -> MaskModel:
    return MaskModel(cfg)


def _canonical(obj: Any) -> Any:
    """A copy of a tree of containers with fresh containers and interned strings (tensors and numbers as they are).

    Why: pickle writes an object seen twice as a back-reference, so the bytes depend on which equal strings and
    containers happen to be one object. A resumed run's history and optimizer state come from unpickling, a fresh
    run's from literals: the same values, other sharing, other bytes (a DVC out must not depend on a resume)."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if type(obj) is dict:  # exact types: subclasses (OrderedDict, named tuples) pickle as themselves
        return {_canonical(k): _canonical(v) for k, v in obj.items()}
    if type(obj) is list:
        return [_canonical(v) for v in obj]
    if type(obj) is tuple:
        return tuple(_canonical(v) for v in obj)
    return obj


def _tensor_tree_bytes(obj: dict[str, Any]) -> bytes:
    buf = io.BytesIO()  # saving to a buffer: the zip's record names never depend on a temp file name
    torch.save(_canonical(obj), buf)
    return buf.getvalue()


def save_checkpoint(path: str | Path, model: nn.Module, cfg: ModelConfig, *, epoch: int,
                    **extra: Any) -> None:
    """Write a checkpoint atomically (see the module docstring); extra = optimizer, scheduler, rng, ..."""
    m = model.module if hasattr(model, "module") else model
    obj = {"schema_version": CHECKPOINT_SCHEMA_VERSION, "config": cfg.checkpoint_dict(),
           "model": {k: v.detach().cpu() for k, v in m.state_dict().items()}, "epoch": int(epoch)}
    obj.update(extra)
    write_bytes(path, _tensor_tree_bytes(obj))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("model checkpoint not found", path=path, fix="run the training stage that writes it")
    try:
        # tensors and plain values only: a checkpoint a user downloads must not run code when it is read
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises many types
        raise ArtifactError(f"not a readable torch checkpoint ({type(exc).__name__}: {exc})", path=path,
                            fix="rerun the training stage that writes it") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ArtifactError("not a gcseg model checkpoint (no 'model'/'config')", path=path,
                            fix="pass a model.pt written by a gcseg training stage")
    if ckpt.get("schema_version") != CHECKPOINT_SCHEMA_VERSION:
        raise ArtifactError(f"checkpoint schema version {ckpt.get('schema_version')} is not "
                            f"{CHECKPOINT_SCHEMA_VERSION}", path=path, fix="retrain (`dvc repro -f <stage>`)")
    return ckpt


def check_architecture(ckpt_cfg: dict[str, Any], expected: ModelConfig, path: str | Path) -> ModelConfig:
    """The checkpoint's config, with the runtime fields of `expected`; ArtifactError naming every differing
    architecture field."""
    try:
        got = ModelConfig.model_validate(ckpt_cfg)
    except ValidationError as exc:
        raise ArtifactError(f"checkpoint config is invalid ({exc.errors()[0]['msg']})", path=path,
                            fix="retrain with the current code") from exc
    a, b = got.architecture(), expected.architecture()
    diff = [f"{k}: checkpoint {a[k]!r} != expected {b[k]!r}" for k in sorted(a) if a[k] != b[k]]
    if diff:
        raise ArtifactError("checkpoint has another architecture (" + "; ".join(diff) + ")", path=path,
                            fix="use params `model:` equal to the checkpoint's, or retrain the upstream stage")
    return expected


def load_state_strict_into(model: MaskModel, sd: dict[str, Tensor], path: str | Path) -> None:
    res = model.load_state_dict(sd, strict=False)
    if res.missing_keys or res.unexpected_keys:
        raise ArtifactError(f"checkpoint weights do not fit the model (missing {res.missing_keys[:5]}, "
                            f"unexpected {res.unexpected_keys[:5]})", path=path,
                            fix="the checkpoint comes from another backbone backend or version: retrain")


def load_model(path: str | Path, expected_cfg: ModelConfig | None = None, *, backend: str | None = None
               ) -> tuple[MaskModel, dict[str, Any]]:
    """Load a checkpoint into a fresh MaskModel (eval mode). Returns (model, checkpoint dict).

    With `expected_cfg`, a checkpoint of another architecture is rejected (ArtifactError naming the fields);
    runtime fields (backend, max_attn_voxels, dropout) then come from `expected_cfg`.
    """
    ckpt = read_checkpoint(path)
    if expected_cfg is not None:
        cfg = check_architecture(ckpt["config"], expected_cfg, path)
    else:
        try:
            cfg = ModelConfig.model_validate(ckpt["config"])
        except ValidationError as exc:
            raise ArtifactError(f"checkpoint config is invalid ({exc.errors()[0]['msg']})", path=path,
                                fix="retrain with the current code") from exc
    if backend is not None:
        cfg = cfg.model_copy(update={"backend": backend})
    model = build_model(cfg)
    try:
        load_state_strict_into(model, ckpt["model"], path)
    except RuntimeError as exc:  # size mismatch
        raise ArtifactError(f"checkpoint weights do not fit the model ({str(exc)[:300]})", path=path,
                            fix="retrain the stage that wrote it") from exc
    model.eval()
    return model, ckpt
