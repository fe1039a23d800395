"""The mask model's architecture config (params.yaml `model:`) and its inference pieces' settings (`eval.fragments`),
importable without torch or scipy (stage modules build their params model from them at import time)."""

from __future__ import annotations

import copy
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# fields that change no weight: a checkpoint trained with other values loads fine
RUNTIME_FIELDS = ("backend", "max_attn_voxels", "dropout", "test_queries", "nms_iou", "seed_sampling", "score",
                  "test_attn_voxels", "test_attn_mb", "matrix_nms")
# fields added after checkpoints of the default existed, with the value that changes nothing (see checkpoint_dict)
ADDED_FIELDS: dict[str, Any] = {"iou_head": False, "matrix_nms": None}


def without_added(d: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """`d` without the fields of `added` that hold their value there (a config dumped as it was before they existed)."""
    return {k: v for k, v in d.items() if not (k in added and v == added[k])}


class ModelConfig(BaseModel):
    """Architecture of the mask model (params.yaml `model:`; Segment3D `conf/model/mask3d.yaml` for the GPU values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["auto", "minkowski", "torch"] = "auto"
    voxel_size: float = Field(0.05, gt=0)
    in_channels: int = 3
    planes: tuple[int, ...] = (16, 32, 48, 64, 64, 48, 32, 32)  # RES16UNET_TINY
    layers: tuple[int, ...] = (1, 1, 1, 1, 1, 1, 1, 1)
    bn_momentum: float = Field(0.02, gt=0, le=1)
    hidden_dim: int = Field(64, gt=0)
    num_queries: int = Field(20, gt=0)
    num_heads: int = Field(4, gt=0)
    hlevels: tuple[int, ...] = (0, 1, 2, 3)
    num_decoders: int = Field(1, ge=1)
    ffn_dim: int = Field(128, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    max_attn_voxels: int = Field(800, gt=0)
    # inference only: keys per scene and level at test time (None = every voxel of the level, as Mask3D evaluates;
    # an int caps it with a seeded random subsample, as in training, to bound memory on very large scenes)
    test_attn_voxels: int | None = Field(None, gt=0)
    # inference only: attention runs over chunks of queries, each chunk's attention weights and its masks pooled onto
    # the voxels under this many MB (None = all queries at once). Queries attend independently, so the result is the
    # same; memory is bounded
    test_attn_mb: float | None = Field(None, gt=0)
    # learned (spec) | fps (Segment3D/Mask3D non-parametric queries) | superpoint (OneFormer3D: seeded at superpoints)
    queries: Literal["learned", "fps", "superpoint"] = "learned"
    mask_on: Literal["voxel", "superpoint"] = "voxel"  # what a mask is predicted over (Mask3D train_on_segments)
    # how superpoint queries pick their seeds: fps (farthest-point samples of the superpoint centroids: spread in
    # space) | random (uniform over superpoints: dense where the scene is, where small objects make small
    # superpoints). No weight depends on it
    seed_sampling: Literal["fps", "random"] = "fps"
    # inference only (no weight depends on them): seeded queries at test time (superpoint queries; None = as in
    # training; OneFormer3D seeds every superpoint) and the mask-IoU above which a lower-scored mask is dropped
    # (None = no NMS, Mask3D; OneFormer3D uses matrix NMS)
    test_queries: int | None = Field(None, gt=0)
    nms_iou: float | None = Field(None, gt=0, le=1)
    # inference only: after that NMS, scores decay by their masks' overlap with better-scored ones (matrix NMS,
    # SOLOv2; OneFormer3D's test_cfg matrix_nms_kernel 'linear') | None = off
    matrix_nms: Literal["linear", "gaussian"] | None = None
    # inference only: a mask's confidence = objectness probability x mask quality, the quality being mask3d (Mask3D
    # get_mask_and_scores: mean sigmoid inside the mask) | stability (SAM's stability score: IoU of the masks at
    # logit > +1 and > -1, point-weighted: a mask whose extent hangs on near-zero logits ranks lower)
    score: Literal["mask3d", "stability"] = "mask3d"
    # a second query head predicting its mask's IoU with the matched target (SPFormer / OneFormer3D `out_score`),
    # trained by `loss.iou_score`; its sigmoid multiplies the confidence. Off: no such head, no such weights
    iou_head: bool = False

    @field_validator("in_channels")
    @classmethod
    def _in_channels(cls, v: int) -> int:
        if v not in (3, 6):
            raise ValueError("in_channels must be 3 (rgb) or 6 (rgb + xyz)")
        return v

    @model_validator(mode="after")
    def _heads(self) -> ModelConfig:
        if self.hidden_dim % self.num_heads or self.hidden_dim % 2:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be even and divisible by num_heads {self.num_heads}")
        if self.queries == "superpoint" and self.mask_on != "superpoint":
            raise ValueError("queries: superpoint needs mask_on: superpoint")
        return self

    def architecture(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        return {k: v for k, v in d.items() if k not in RUNTIME_FIELDS}

    def checkpoint_dict(self) -> dict[str, Any]:
        """The config as a checkpoint stores it: fields added later are left out at their off value, so that a model
        of the default keeps the bytes it had before they existed (DVC's cache, the committed lock)."""
        return without_added(self.model_dump(mode="json"), ADDED_FIELDS)


# where a model is used for its masks rather than trained (the eval stage, `gcseg predict`, `gcseg unseen`): the
# checkpoint's own model.matrix_nms, or this kernel / off in its place (docs/model_study.md round 30)
MatrixNmsSetting = Literal["checkpoint", "linear", "gaussian", "off"]
MATRIX_NMS_SETTINGS: tuple[str, ...] = get_args(MatrixNmsSetting)


def matrix_nms_override(cfg: ModelConfig, setting: MatrixNmsSetting) -> ModelConfig:
    """`cfg` with model.matrix_nms as `setting` has it ("checkpoint": unchanged)."""
    if setting == "checkpoint":
        return cfg
    if setting not in MATRIX_NMS_SETTINGS:
        raise ValueError(f"unknown matrix NMS setting {setting!r} ({' | '.join(MATRIX_NMS_SETTINGS)})")
    return cfg.model_copy(update={"matrix_nms": None if setting == "off" else setting})


def with_matrix_nms(model: Any, setting: MatrixNmsSetting) -> Any:
    """A model (anything with a ModelConfig `cfg`) ranking its masks with `setting` (matrix_nms_override): the
    model itself where that changes nothing, else a shallow copy sharing its weights, so that neither the caller's
    model nor its checkpoint changes."""
    cfg = matrix_nms_override(model.cfg, setting)
    if cfg == model.cfg:
        return model
    model = copy.copy(model)
    model.cfg = cfg
    return model


class FragmentConfig(BaseModel):
    """Settings of gcseg.models.fragments.add_fragments (params.yaml `eval.fragments`, `gcseg predict
    --fragment-eps`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eps: float = Field(0.05, gt=0)  # metres: points closer than this are connected (Segment3D eval dbscan_eps 0.05)
    min_points: int = Field(100, ge=1)  # smaller pieces are no candidates (the eval's min region size)
    score_factor: float = Field(0.5, gt=0, le=1)  # a piece's score = factor x its mask's (the whole ranks first)
