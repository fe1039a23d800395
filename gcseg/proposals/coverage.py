"""How useful proposals are: the fraction of GT instances some proposal matches (recall at an IoU)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from gcseg.proposals.base import MaskProposer, Proposals
from gcseg.proposals.containment import containment_filter
from gcseg.scene import Frame


def instance_best_iou(instance: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every GT instance (id >= 1) of an id map: its id, its area in pixels and the best IoU of any mask, each
    (n_instances,) in ascending id order. Callers with several minimum areas filter one result (no recount)."""
    ids, counts = np.unique(instance[instance > 0], return_counts=True)
    if len(ids) == 0 or masks.shape[0] == 0:
        return ids, counts, np.zeros((len(ids),), np.float64)
    gt = np.stack([instance == i for i in ids]).reshape(len(ids), -1)
    pm = masks.reshape(masks.shape[0], -1)
    inter = np.asarray((sp.csr_matrix(gt.astype(np.int32)) @ sp.csr_matrix(pm.astype(np.int32)).T).toarray(),
                       np.float64)
    union = counts[:, None] + pm.sum(1)[None, :] - inter
    return ids, counts, (inter / np.maximum(union, 1)).max(1)


def best_iou_per_instance(instance: np.ndarray, masks: np.ndarray, min_area: int) -> np.ndarray:
    """For each GT instance (id >= 1, >= min_area pixels), the best IoU of any mask; (n_instances,) float64."""
    _, counts, best = instance_best_iou(instance, masks)
    return best[counts >= min_area]


def proposal_coverage(frames: Iterable[Frame], proposer: MaskProposer, min_area: int = 500, iou: float = 0.5,
                      *, tau_contain: float | None = None) -> float:
    """Fraction of GT instances (>= min_area pixels in a frame, counted per frame) matched by some proposal at
    IoU >= iou. With `tau_contain`, proposals pass the containment filter first (what Stage 1 keeps).
    Frames without GT are skipped; NaN if no frame has a qualifying instance."""
    hits = total = 0
    for frame in frames:
        if frame.instance is None:
            continue
        props: Proposals = proposer(frame)
        masks = props.masks
        if tau_contain is not None and len(props):
            masks = masks[containment_filter(masks, props.scores, tau_contain)]
        best = best_iou_per_instance(np.asarray(frame.instance), masks, min_area)
        hits += int((best >= iou).sum())
        total += len(best)
    return float(hits / total) if total else float("nan")
