"""Hungarian matching of predicted query masks to target instance masks (Mask3D `HungarianMatcher`).

cost = w_bce * mean sigmoid-BCE + w_dice * dice + w_class * (-objectness probability), computed on a subsample of
a scene's labelled voxels, minimised with scipy's `linear_sum_assignment`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
import torch.nn.functional as F


def pairwise_bce(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean sigmoid BCE of every prediction row [Q, P] against every target row [K, P] -> [Q, K]."""
    p = logits.shape[1]
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / max(p, 1)


def pairwise_dice(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice loss 1 - (2|a b| + 1) / (|a| + |b| + 1) of every prediction row against every target row -> [Q, K]."""
    s = logits.sigmoid()
    num = 2 * (s @ targets.T)
    den = s.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (num + 1) / (den + 1)


@torch.no_grad()
def hungarian_match(logits: Tensor, masks: Tensor, targets: Tensor, *, w_class: float, w_bce: float,
                    w_dice: float, allowed: Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Match one scene's queries to its targets.

    Arguments:
        logits: [Q, 2] objectness logits (index 0 = object).
        masks: [Q, P] mask logits on the P sampled voxels.
        targets: [K, P] float {0, 1} target masks on the same voxels.
        allowed: optional bool [Q, K]: which pairs may match (OneFormer3D's SparseMatcher: a query may only take
            the target its seed lies in; then each target takes its cheapest allowed query, targets without one
            stay unmatched).
    Returns:
        (query indices, target indices), each int64 [min(Q, K)], sorted by query index.
    """
    if targets.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    masks = masks.float()
    targets = targets.float()
    cost = w_bce * pairwise_bce(masks, targets) + w_dice * pairwise_dice(masks, targets)
    if w_class:
        cost = cost - w_class * logits.float().softmax(-1)[:, :1]
    if allowed is not None:
        big = float(cost.abs().max()) * 10 + 1e6
        cost = torch.where(allowed, cost, torch.full_like(cost, big))
        qi, ti = linear_sum_assignment(cost.cpu().numpy())
        ok = allowed.cpu().numpy()[qi, ti]
        qi, ti = qi[ok], ti[ok]
    else:
        qi, ti = linear_sum_assignment(cost.cpu().numpy())
    order = np.argsort(qi, kind="stable")
    return qi[order].astype(np.int64), ti[order].astype(np.int64)
