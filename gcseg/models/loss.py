"""Set criterion (Mask3D `SetCriterion`, Segment3D's loss): per decoder layer, match queries to targets, then

  w_ce * cross-entropy(object / no-object; no-object class weighted by eos_coef)
  + w_bce * mean sigmoid BCE of matched masks + w_dice * dice of matched masks

summed over the initial and every decoder layer's prediction (auxiliary losses) and averaged over the scenes of the
batch (so that a batch split over DDP ranks averages to the same loss).

Targets (LossWeights.targets): "all" = Mask3D/Segment3D: a target mask spans every voxel (or superpoint) of the
scene, so unlabelled ones (-1) are negatives of every matched mask (Segment3D `datasets/utils.py`
`get_instance_masks` compares the instance column of all voxels; its matcher and loss use all points,
`num_points: -1`). "labelled" = unlabelled ones never enter the mask terms. The mask terms use a per-scene
random subsample of at most `num_points` of those elements, shared by the matcher and the loss.

Matching (LossWeights.matcher): "hungarian" (Mask3D) or "seeded" (OneFormer3D's SparseMatcher: a target may
only be matched by a query seeded inside it, i.e. whose seed superpoint carries its label, and takes its
`seeded_topk` cheapest such queries, 0 = all of them; needs superpoint queries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gcseg.models.decoder import Prediction
from gcseg.models.matcher import hungarian_match, pairwise_bce, pairwise_dice
from gcseg.train.config import LossConfig

_DEFAULT = LossConfig()  # the typed config holds the defaults; the library follows it


@torch.no_grad()
def seeded_match(logits: Tensor, masks: Tensor, targets: Tensor, allowed: Tensor, w: LossWeights, topk: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """OneFormer3D's SparseMatcher with topk != 1: every target takes its `topk` cheapest allowed queries (0 =
    all). A query is allowed for at most one target (its seed lies in one), so the pairs never conflict."""
    if targets.shape[0] == 0 or not bool(allowed.any()):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    qi, ti = torch.nonzero(allowed, as_tuple=True)
    if topk > 0:
        cost = (w.bce * pairwise_bce(masks.float(), targets.float())
                + w.dice * pairwise_dice(masks.float(), targets.float()))[qi, ti]
        if w.ce:
            cost = cost - w.ce * logits.float().softmax(-1)[qi, 0]
        order = np.lexsort((cost.cpu().numpy(), ti.cpu().numpy()))  # by target, cheapest first
        qs, ts = qi.cpu().numpy()[order], ti.cpu().numpy()[order]
        start = np.searchsorted(ts, ts, side="left")
        keep = np.arange(len(ts)) - start < topk
        qs, ts = qs[keep], ts[keep]
    else:
        qs, ts = qi.cpu().numpy(), ti.cpu().numpy()
    o = np.argsort(qs, kind="stable")
    return qs[o].astype(np.int64), ts[o].astype(np.int64)


@dataclass(frozen=True)
class LossWeights:
    """Loss weights = matcher costs, as in Mask3D/Segment3D (`conf/loss/set_criterion.yaml`: class 2, mask 5,
    dice 2, eos_coef 0.1; Segment3D stage 2 sets the class cost to 0)."""

    ce: float = _DEFAULT.ce
    bce: float = _DEFAULT.bce
    dice: float = _DEFAULT.dice
    eos_coef: float = _DEFAULT.eos_coef
    num_points: int = _DEFAULT.num_points
    targets: str = _DEFAULT.targets  # all (Mask3D/Segment3D: unlabelled = negatives) | labelled (unlabelled ignored)
    matcher: str = _DEFAULT.matcher  # hungarian (Mask3D) | seeded (OneFormer3D: only queries seeded inside a target)
    seeded_topk: int = _DEFAULT.seeded_topk  # seeded: k cheapest in-target queries per target (OneFormer3D 1; 0 = all)
    balance_targets: bool = _DEFAULT.balance_targets  # mask terms: mean per target, then over targets
    # matched | quality (IoU >= 0.5) | iou (soft: IoU) | best (per target, its matched query of the highest IoU)
    # | confidence (quality's positives, soft: their label's confidence)
    objectness: str = _DEFAULT.objectness
    balance_objectness: bool = _DEFAULT.balance_objectness  # objectness positives: 1 per target, shared
    iou_score: float = _DEFAULT.iou_score  # IoU head (when the model has one): MSE weight
    iou_score_min: float = _DEFAULT.iou_score_min  # IoU head: matched queries above this IoU are its samples


@dataclass
class SceneTarget:
    """One scene's supervision on its voxels: labels int64 [V] (instance index 0..K-1, -1 unlabelled)."""

    labels: Tensor
    seed: int
    confidence: Tensor | None = None  # [K] each instance's label confidence (objectness "confidence"), or None

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


def _sample_points(labels: Tensor, num_points: int, seed: int, targets: str = "labelled") -> Tensor:
    where = labels >= 0 if targets == "labelled" else torch.ones_like(labels, dtype=torch.bool)
    return _sample(where, num_points, int(seed) + 7919)


def _balanced_ce(logits: Tensor, cls_t: Tensor, weight: Tensor, pos_target: Tensor) -> Tensor:
    """Class-weighted cross-entropy whose positives (cls_t 0; pos_target [P]: their targets, in query order)
    weigh 1 per target, shared by its positives, scaled so their total stays P: the normaliser is that of
    F.cross_entropy, to which it reduces with one positive per target."""
    w = weight[cls_t]
    per_t = torch.bincount(pos_target)
    share = (1.0 / per_t[pos_target].to(w.dtype)) * (len(pos_target) / int((per_t > 0).sum()))
    w[cls_t == 0] = share
    nll = -logits.log_softmax(-1).gather(1, cls_t[:, None]).squeeze(1)
    return (w * nll).sum() / w.sum()


def best_per_target(ti: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Indices into the matched pairs (targets `ti`, mask IoUs `iou`) of each target's highest-IoU pair; ties go
    to the earlier pair (the lower query index), so the choice is deterministic."""
    order = np.lexsort((-iou, ti))  # by target, then IoU descending; lexsort is stable
    first = np.ones(len(order), bool)
    first[1:] = ti[order][1:] != ti[order][:-1]
    return np.sort(order[first])


def scene_loss(pred_logits: Tensor, pred_masks: Tensor, target: SceneTarget, pts: Tensor, w: LossWeights,
               seed_sp: Tensor | None = None, pred_iou: Tensor | None = None) -> dict[str, Tensor]:
    """Loss terms of one layer's prediction for one scene (logits [Q, 2], masks [Q, V]) on sampled elements pts
    (voxels or superpoints); seed_sp [Q]: each query's seed superpoint (the seeded matcher); pred_iou [Q]: the IoU
    head's logits (adds the term "iou")."""
    k = target.num_instances
    lab = target.labels[pts]
    tmasks = (lab[None, :] == torch.arange(k, device=lab.device)[:, None]).float()  # [K, P]
    keep = tmasks.sum(1) > 0  # an instance none of whose elements were sampled cannot be supervised here
    tmasks = tmasks[keep]
    pm = pred_masks[:, pts]
    allowed = None
    if w.matcher == "seeded":
        if seed_sp is None:
            raise ValueError("the seeded matcher needs superpoint queries (model.queries: superpoint)")
        ids = torch.nonzero(keep).squeeze(1)  # target row t = instance ids[t]
        allowed = target.labels[seed_sp][:, None] == ids[None, :]  # [Q, K']
    if allowed is not None and w.seeded_topk != 1:
        qi, ti = seeded_match(pred_logits, pm, tmasks, allowed, w, w.seeded_topk)
    else:
        qi, ti = hungarian_match(pred_logits, pm, tmasks, w_class=w.ce, w_bce=w.bce, w_dice=w.dice, allowed=allowed)
    q = pred_logits.shape[0]
    cls_t = torch.ones(q, dtype=torch.long, device=pred_logits.device)
    positive = torch.as_tensor(qi, device=cls_t.device)
    if (w.objectness in ("quality", "iou", "best", "confidence") or pred_iou is not None) and len(qi):
        with torch.no_grad():  # a target, not a path for gradients
            hit = (pm[positive] > 0).to(tmasks.dtype)
            t = tmasks[torch.as_tensor(ti, device=pm.device)]
            inter = (hit * t).sum(1)
            iou = inter / (hit.sum(1) + t.sum(1) - inter).clamp_min(1.0)
    if w.objectness in ("iou", "confidence") and len(qi):
        # soft targets (iou: object = the mask's IoU, SPFormer's IoU score in the objectness; confidence: the
        # positives of "quality", object = their label's confidence, so that the score ranks as the labels do);
        # class-weighted and normalised by the summed weights as the hard cross-entropy is, to which it reduces
        # at targets 0 or 1
        p_obj = torch.zeros(q, device=pred_logits.device, dtype=pred_logits.dtype)
        if w.objectness == "iou":
            p_obj[positive] = iou.to(p_obj.dtype)
        else:
            if target.confidence is None:
                raise ValueError("objectness confidence needs the targets' label confidences (SceneTarget.confidence)")
            rows = torch.nonzero(keep).squeeze(1)[torch.as_tensor(ti, device=keep.device)]  # instance of each pair
            good = iou >= 0.5
            p_obj[positive[good]] = target.confidence.to(p_obj)[rows[good]]
        weight = torch.tensor([1.0, w.eos_coef], device=pred_logits.device, dtype=pred_logits.dtype)
        probs = torch.stack([p_obj, 1 - p_obj], 1) * weight
        ce = -(probs * pred_logits.log_softmax(-1)).sum() / probs.sum()
    else:
        if w.objectness == "quality" and len(qi):
            positive = positive[iou >= 0.5]
        elif w.objectness == "best" and len(qi):
            positive = positive[torch.from_numpy(best_per_target(np.asarray(ti), iou.cpu().numpy())).to(positive.device)]
        cls_t[positive] = 0
        weight = torch.tensor([1.0, w.eos_coef], device=pred_logits.device, dtype=pred_logits.dtype)
        if w.balance_objectness and len(positive):
            target_of = torch.full((q,), -1, dtype=torch.long, device=cls_t.device)
            target_of[torch.as_tensor(qi, device=cls_t.device)] = torch.as_tensor(ti, device=cls_t.device)
            ce = _balanced_ce(pred_logits, cls_t, weight, target_of[cls_t == 0])
        else:
            ce = F.cross_entropy(pred_logits, cls_t, weight=weight)
    if len(qi):
        tj = torch.as_tensor(ti, device=pm.device)
        x = pm[torch.as_tensor(qi, device=pm.device)]
        t = tmasks[tj]
        if w.balance_targets:  # each matched target weighs 1, shared by its queries
            per_t = torch.bincount(tj, minlength=tmasks.shape[0]).to(x.dtype)
            pw = 1.0 / (per_t[tj] * int((per_t > 0).sum()))
        else:
            pw = x.new_full((len(qi),), 1.0 / len(qi))
        bce = (F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1) * pw).sum()
        s = x.sigmoid()
        dice = ((1 - (2 * (s * t).sum(1) + 1) / (s.sum(1) + t.sum(1) + 1)) * pw).sum()
    else:
        bce = dice = pred_masks.sum() * 0.0
    terms = {"ce": ce, "bce": bce, "dice": dice}
    if pred_iou is not None:  # SPFormer's score loss, over the matched queries with good masks
        good = iou > w.iou_score_min if len(qi) else torch.zeros(0, dtype=torch.bool)
        if bool(good.any()):
            got = pred_iou[torch.as_tensor(qi, device=pred_iou.device)][good].sigmoid()
            terms["iou"] = F.mse_loss(got, iou[good].to(got.dtype))
        else:
            terms["iou"] = pred_iou.sum() * 0.0
    return terms


def set_criterion(preds: list[Prediction], targets: list[SceneTarget], w: LossWeights) -> dict[str, Tensor]:
    """Total loss over all layers (key "loss") plus the final layer's unweighted terms ("ce", "bce", "dice"; "iou"
    with the IoU head)."""
    total = preds[-1].logits.new_zeros(())
    final = {"ce": total.new_zeros(()), "bce": total.new_zeros(()), "dice": total.new_zeros(())}
    if preds[-1].iou is not None:
        final["iou"] = total.new_zeros(())
    nb = len(targets)
    if w.targets not in ("all", "labelled") or w.matcher not in ("hungarian", "seeded"):
        raise ValueError(f"unknown loss targets {w.targets!r} or matcher {w.matcher!r}")
    pts = [_sample_points(t.labels, w.num_points, t.seed, w.targets) for t in targets]
    for li, p in enumerate(preds):
        for b, t in enumerate(targets):
            terms = scene_loss(p.logits[b], p.masks[b], t, pts[b], w, None if p.seeds is None else p.seeds[b],
                               None if p.iou is None else p.iou[b])
            total = total + (w.ce * terms["ce"] + w.bce * terms["bce"] + w.dice * terms["dice"]) / nb
            if "iou" in terms:
                total = total + w.iou_score * terms["iou"] / nb
            if li == len(preds) - 1:
                for key in final:
                    final[key] = final[key] + terms[key].detach() / nb
    return {"loss": total, **final}
