"""SAM automatic mask generation (segment-anything's `SamAutomaticMaskGenerator`) as a MaskProposer.

Weights: the official SAM release files (https://github.com/facebookresearch/segment-anything#model-checkpoints,
e.g. ``sam_vit_b_01ec64.pth``) are plain state dicts; files saved as ``{"model": state_dict}`` are accepted too.
The checkpoint value ``random-init-for-tests`` builds a deliberately small, randomly initialised SAM
(`build_sam_random`) so that the real code path (encoder, prompt grid, decoder, NMS, RLE) runs in tests on a CPU;
its masks are meaningless and it is never a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import ConfigError, InputError
from gcseg.proposals.base import Proposals, backend_config
from gcseg.scene import Frame

SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
RANDOM_INIT = "random-init-for-tests"
CHECKPOINT_FILES = {"vit_b": "sam_vit_b_01ec64.pth", "vit_l": "sam_vit_l_0b3195.pth", "vit_h": "sam_vit_h_4b8939.pth"}


@dataclass(frozen=True)
class SamConfig:
    """Model and AMG knobs (defaults: segment-anything's AMG defaults, which the paper's SAM stage uses)."""

    model_type: str = "vit_b"
    checkpoint: str = "data/weights/sam_vit_b_01ec64.pth"
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0
    device: str = "auto"  # "cpu" | "cuda" | "auto" (cuda when available)
    test_img_size: int = 256  # input size of the random test model only


def missing_checkpoint_error(cfg: SamConfig) -> InputError:
    name = CHECKPOINT_FILES.get(cfg.model_type, "sam_vit_b_01ec64.pth")
    return InputError(
        f"SAM checkpoint not found (sam_keyframes.sam.checkpoint = {cfg.checkpoint!r})", path=cfg.checkpoint,
        fix=(f"download the official SAM release weights ({name} for model_type {cfg.model_type}, from "
             "https://dl.fbaipublicfiles.com/segment_anything/" + name + ", listed at "
             "https://github.com/facebookresearch/segment-anything#model-checkpoints) to data/weights/, track it "
             f"with `dvc add data/weights/{name}`, and set sam_keyframes.sam.checkpoint to that path; or use the "
             "weight-free backend: `dvc exp run -S sam_keyframes.backend=classical`"))


def check_model_type(model_type: str) -> None:
    if model_type not in SAM_MODEL_TYPES:
        raise ConfigError(f"unknown SAM model_type {model_type!r}",
                          fix=f"set sam_keyframes.sam.model_type to one of {list(SAM_MODEL_TYPES)}")


def _segment_anything():
    """Import segment_anything (which imports torchvision) with torchvision's ops made usable first."""
    from gcseg.compat.torchvision_nms import ensure_torchvision_ops

    ensure_torchvision_ops()
    import segment_anything

    return segment_anything


def build_sam_random(img_size: int = 256, seed: int = 0):
    """A small randomly initialised SAM (vit_b layout: windowed + global attention, rel-pos; shallow and narrow)
    for CPU tests of the real segment-anything code path. Not SAM: its masks carry no learned meaning."""
    import torch

    _segment_anything()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    if img_size % 16:
        raise ConfigError(f"test_img_size must be a multiple of 16, got {img_size}", fix="e.g. 256")
    prompt_dim, patch = 64, 16
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = Sam(
            image_encoder=ImageEncoderViT(
                img_size=img_size, patch_size=patch, embed_dim=96, depth=2, num_heads=2, mlp_ratio=2,
                out_chans=prompt_dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                use_rel_pos=True, window_size=4, global_attn_indexes=(1,)),
            prompt_encoder=PromptEncoder(
                embed_dim=prompt_dim, image_embedding_size=(img_size // patch, img_size // patch),
                input_image_size=(img_size, img_size), mask_in_chans=8),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3, transformer=TwoWayTransformer(
                    depth=1, embedding_dim=prompt_dim, mlp_dim=128, num_heads=2),
                transformer_dim=prompt_dim, iou_head_depth=2, iou_head_hidden_dim=64),
            pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


def load_sam_checkpoint(model, path: str | Path, model_type: str = "?") -> None:
    """Load a SAM checkpoint (plain state dict, as released, or {"model": state_dict}) strictly into `model`."""
    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise InputError(f"cannot read SAM checkpoint ({type(exc).__name__}: {exc})", path=path,
                         fix="download the file again; it must be a torch state dict") from exc
    state = obj["model"] if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else obj
    if not isinstance(state, dict):
        raise InputError("SAM checkpoint holds no state dict", path=path, fix="use an official SAM .pth file")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"checkpoint does not fit SAM model_type {model_type!r} ({first})", path=path,
                         fix=f"set sam_keyframes.sam.model_type to the checkpoint's type {list(SAM_MODEL_TYPES)} "
                             "(sam_vit_b_* -> vit_b, sam_vit_l_* -> vit_l, sam_vit_h_* -> vit_h)") from exc


def build_sam_model(cfg: SamConfig, seed: int = 0):
    """The SAM network named by `cfg`, on cfg.device, in eval mode."""
    import torch

    sam_model_registry = _segment_anything().sam_model_registry

    check_model_type(cfg.model_type)
    if cfg.checkpoint == RANDOM_INIT:
        model = build_sam_random(cfg.test_img_size, seed)
    else:
        if not Path(cfg.checkpoint).is_file():
            raise missing_checkpoint_error(cfg)
        model = sam_model_registry[cfg.model_type](checkpoint=None)
        load_sam_checkpoint(model, cfg.checkpoint, cfg.model_type)
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"sam.device is {cfg.device!r} but no CUDA device is available", fix="set sam.device: cpu")
    return model.to(device).eval()


class SamProposer:
    """SAM AMG on a frame's colour image; score = SAM's predicted IoU of the mask."""

    name = "sam"

    def __init__(self, cfg: SamConfig | Any = None, seed: int = 0):
        self.cfg = backend_config(SamConfig, cfg, "sam")
        check_model_type(self.cfg.model_type)
        if self.cfg.checkpoint != RANDOM_INIT and not Path(self.cfg.checkpoint).is_file():
            raise missing_checkpoint_error(self.cfg)  # before any heavy import: fail fast
        SamAutomaticMaskGenerator = _segment_anything().SamAutomaticMaskGenerator

        self.model = build_sam_model(self.cfg, seed)
        self.random_weights = self.cfg.checkpoint == RANDOM_INIT
        c = self.cfg
        self.generator = SamAutomaticMaskGenerator(
            self.model, points_per_side=c.points_per_side, points_per_batch=c.points_per_batch,
            pred_iou_thresh=c.pred_iou_thresh, stability_score_thresh=c.stability_score_thresh,
            box_nms_thresh=c.box_nms_thresh, min_mask_region_area=c.min_mask_region_area)

    def __call__(self, frame: Frame) -> Proposals:
        import torch

        h, w = frame.hw
        if frame.color.shape != (h, w, 3) or frame.color.dtype != np.uint8:
            raise InputError(f"frame {frame.index}: colour must be uint8 ({h}, {w}, 3), got "
                             f"{frame.color.dtype} {frame.color.shape}", fix="check the scene reader")
        with torch.inference_mode():
            records = self.generator.generate(np.ascontiguousarray(frame.color))
        if not records:
            return Proposals.empty(h, w)
        # AMG returns records in its own order; sort by (score desc, area desc) for determinism downstream
        records = sorted(records, key=lambda r: (-float(r["predicted_iou"]), -int(r["area"])))
        masks = np.stack([np.asarray(r["segmentation"], bool) for r in records])
        scores = np.asarray([r["predicted_iou"] for r in records], np.float32)
        return Proposals(masks, scores)
