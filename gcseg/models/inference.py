"""Point-level predictions of a trained mask model on one point cloud."""

from __future__ import annotations

import numpy as np
import torch

from gcseg.errors import InputError
from gcseg.models.mask_model import MaskModel, point_features
from gcseg.models.voxelize import scatter_mean, voxelize


def voxel_input(model: MaskModel, coord: np.ndarray, color: np.ndarray, batch: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(voxel coords [V,4] with batch column = `batch`, voxel features [V,C], point->voxel inverse [N]).

    The cloud is centred on its mean first, as in training (gcseg.train.dataset)."""
    c = torch.as_tensor(np.ascontiguousarray(coord, dtype=np.float32))
    c = c - c.mean(0, keepdim=True)
    vox = voxelize(c, model.cfg.voxel_size, None)
    coords = vox.coords.clone()
    coords[:, 0] = batch
    feats = scatter_mean(point_features(coord, color, model.cfg.in_channels), vox.inverse, len(coords))
    return coords, feats, vox.inverse


def masks_and_scores(obj_logits: torch.Tensor, mask_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask3D `get_mask_and_scores`: binary masks (logit > 0) and score = objectness probability x mean sigmoid
    inside the mask. obj_logits [Q, 2], mask_logits [Q, V] -> (bool [Q, V], float [Q])."""
    binary = mask_logits > 0
    heat = mask_logits.sigmoid()
    inside = (heat * binary).sum(1) / (binary.sum(1) + 1e-6)
    return binary, obj_logits.softmax(-1)[:, 0] * inside


@torch.inference_mode()
def predict_points(model: MaskModel, coord: np.ndarray, color: np.ndarray, *, min_points: int = 1
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Class-agnostic instance masks of one point cloud.

    Arguments:
        model: a trained MaskModel (switched to eval mode here).
        coord: float [N, 3] metres; color: uint8 [N, 3].
        min_points: drop masks with fewer points.
    Returns:
        masks bool [K, N] and scores float32 [K], sorted by score descending (ties by query index), deterministic
        (the decoder's key subsample is drawn from a fixed seed).
    """
    coord = np.asarray(coord)
    color = np.asarray(color)
    if coord.ndim != 2 or coord.shape[1] != 3 or color.shape != coord.shape:
        raise InputError(f"expected coord [N,3] and color [N,3], got {coord.shape} and {color.shape}",
                         fix="pass one point cloud with one colour per point")
    if len(coord) == 0:
        raise InputError("empty point cloud: nothing to segment", fix="check the depth/mask inputs of this scene")
    if not np.isfinite(coord).all():
        raise InputError("point coordinates contain NaN or inf", fix="drop invalid depth before lifting")
    model.eval()
    dev = next(model.parameters()).device
    coords, feats, inverse = voxel_input(model, coord, color)
    pred = model(coords.to(dev), feats.to(dev), seeds=[0])[-1]
    binary, score = masks_and_scores(pred.logits[0].float(), pred.masks[0].float())
    pmasks = binary.cpu()[:, inverse]
    score = score.cpu()
    keep = pmasks.sum(1) >= max(min_points, 1)
    pmasks, score = pmasks[keep].numpy(), score[keep].numpy().astype(np.float32)
    order = np.argsort(-score, kind="stable")
    return pmasks[order], score[order]
