"""Set criterion (Mask3D `SetCriterion`, Segment3D's loss): per decoder layer, match queries to targets, then

  w_ce * cross-entropy(object / no-object; no-object class weighted by eos_coef)
  + w_bce * mean sigmoid BCE of matched masks + w_dice * dice of matched masks

summed over the initial and every decoder layer's prediction (auxiliary losses) and averaged over the scenes of the
batch (so that a batch split over DDP ranks averages to the same loss). Voxels whose label is -1 (unlabelled)
never enter the mask terms (unless LossWeights.unlabelled_bce > 0: then matched masks are also pushed to 0 on a
sample of them); the mask terms use a per-scene random subsample of at most `num_points` labelled
voxels, shared by the matcher and the loss (Mask3D samples points the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gcseg.models.decoder import Prediction
from gcseg.models.matcher import hungarian_match


@dataclass(frozen=True)
class LossWeights:
    """Loss weights = matcher costs, as in Mask3D/Segment3D (`conf/loss/set_criterion.yaml`: class 2, mask 5,
    dice 2, eos_coef 0.1; Segment3D stage 2 sets the class cost to 0)."""

    ce: float = 2.0
    bce: float = 5.0
    dice: float = 2.0
    eos_coef: float = 0.1
    num_points: int = 4096
    # weight of a BCE pushing every matched mask to 0 on a sample of UNLABELLED voxels (0 = they never enter
    # the loss, Mask3D/Segment3D). Why: with sparse pseudo-labels (Stage 2: ~16 % of a scene's points labelled)
    # nothing bounds a mask outside the labelled points, and masks bleed over the whole scene.
    unlabelled_bce: float = 0.0


@dataclass
class SceneTarget:
    """One scene's supervision on its voxels: labels int64 [V] (instance index 0..K-1, -1 unlabelled)."""

    labels: Tensor
    seed: int

    @property
    def num_instances(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.numel() and int(self.labels.max()) >= 0 else 0


def _sample(where: Tensor, num_points: int, seed: int) -> Tensor:
    """Indices of `where`'s true entries, a seeded random subset of `num_points` when there are more."""
    idx = torch.nonzero(where).squeeze(1)
    if len(idx) > num_points:
        g = torch.Generator().manual_seed(int(seed))
        idx = idx[torch.randperm(len(idx), generator=g)[:num_points].to(idx.device)]
    return idx


def _sample_points(labels: Tensor, num_points: int, seed: int) -> Tensor:
    return _sample(labels >= 0, num_points, int(seed) + 7919)


def _sample_unlabelled(labels: Tensor, num_points: int, seed: int) -> Tensor:
    return _sample(labels < 0, num_points, int(seed) + 104729)


def scene_loss(pred_logits: Tensor, pred_masks: Tensor, target: SceneTarget, pts: Tensor, w: LossWeights,
               free: Tensor | None = None) -> dict[str, Tensor]:
    """Loss terms of one layer's prediction for one scene (logits [Q, 2], masks [Q, V]) on sampled voxels pts."""
    k = target.num_instances
    lab = target.labels[pts]
    tmasks = (lab[None, :] == torch.arange(k, device=lab.device)[:, None]).float()  # [K, P]
    keep = tmasks.sum(1) > 0  # an instance none of whose voxels were sampled cannot be supervised here
    tmasks = tmasks[keep]
    pm = pred_masks[:, pts]
    qi, ti = hungarian_match(pred_logits, pm, tmasks, w_class=w.ce, w_bce=w.bce, w_dice=w.dice)
    q = pred_logits.shape[0]
    cls_t = torch.ones(q, dtype=torch.long, device=pred_logits.device)
    cls_t[torch.as_tensor(qi, device=cls_t.device)] = 0
    weight = torch.tensor([1.0, w.eos_coef], device=pred_logits.device, dtype=pred_logits.dtype)
    ce = F.cross_entropy(pred_logits, cls_t, weight=weight)
    n = max(len(qi), 1)
    if len(qi):
        x = pm[torch.as_tensor(qi, device=pm.device)]
        t = tmasks[torch.as_tensor(ti, device=pm.device)]
        bce = F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1).sum() / n
        s = x.sigmoid()
        dice = (1 - (2 * (s * t).sum(1) + 1) / (s.sum(1) + t.sum(1) + 1)).sum() / n
        if w.unlabelled_bce and free is not None and len(free):
            xf = pred_masks[torch.as_tensor(qi, device=pm.device)][:, free]
            bce = bce + w.unlabelled_bce * F.binary_cross_entropy_with_logits(
                xf, torch.zeros_like(xf), reduction="none").mean(1).sum() / n
    else:
        bce = dice = pred_masks.sum() * 0.0
    return {"ce": ce, "bce": bce, "dice": dice}


def set_criterion(preds: list[Prediction], targets: list[SceneTarget], w: LossWeights) -> dict[str, Tensor]:
    """Total loss over all layers (key "loss") plus the final layer's unweighted terms ("ce", "bce", "dice")."""
    total = preds[-1].logits.new_zeros(())
    final = {"ce": total.new_zeros(()), "bce": total.new_zeros(()), "dice": total.new_zeros(())}
    nb = len(targets)
    pts = [_sample_points(t.labels, w.num_points, t.seed) for t in targets]
    free = [_sample_unlabelled(t.labels, w.num_points, t.seed) if w.unlabelled_bce else None for t in targets]
    for li, p in enumerate(preds):
        for b, t in enumerate(targets):
            terms = scene_loss(p.logits[b], p.masks[b], t, pts[b], w, free[b])
            total = total + (w.ce * terms["ce"] + w.bce * terms["bce"] + w.dice * terms["dice"]) / nb
            if li == len(preds) - 1:
                for key in final:
                    final[key] = final[key] + terms[key].detach() / nb
    return {"loss": total, **final}
