"""A quick class-agnostic AP50 by IoU matching (a training sanity check, not the benchmark evaluator).

Predictions are visited by descending score; each is a true positive if its best IoU with a not yet matched
ground-truth instance exceeds the threshold (strictly, as ScanNet's evaluate_semantic_instance.py). AP = area
under the interpolated precision/recall curve (COCO-style 101 recall points).
"""

from __future__ import annotations

import numpy as np

from gcseg.masks import mask_iou


def average_precision(scenes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], iou_thr: float = 0.5) -> float:
    """AP over scenes, each (pred masks bool [K, N], scores [K], gt instance ids int [N], -1 = ignore).

    Points with gt -1 are excluded from the IoU (as the benchmark ignores unannotated points)."""
    records: list[tuple[float, bool]] = []
    n_gt = 0
    for masks, scores, gt_ids in scenes:
        valid = gt_ids >= 0
        ids = np.unique(gt_ids[valid])
        gt = gt_ids[None, valid] == ids[:, None]
        n_gt += len(ids)
        pm = masks[:, valid]
        iou = mask_iou(pm, gt) if len(pm) and len(ids) else np.zeros((len(pm), len(ids)))
        used = np.zeros(len(ids), bool)
        for k in np.argsort(-scores, kind="stable"):
            cand = np.where(used, -1.0, iou[k]) if len(ids) else np.zeros(0)
            j = int(np.argmax(cand)) if len(cand) else -1
            hit = j >= 0 and cand[j] > iou_thr  # strictly greater, as ScanNet's evaluator
            if hit:
                used[j] = True
            records.append((float(scores[k]), bool(hit)))
    if n_gt == 0:
        return float("nan")
    if not records:
        return 0.0
    order = np.argsort([-s for s, _ in records], kind="stable")
    tp = np.array([records[i][1] for i in order], dtype=np.float64)
    ctp = np.cumsum(tp)
    prec = ctp / np.arange(1, len(tp) + 1)
    rec = ctp / n_gt
    prec = np.maximum.accumulate(prec[::-1])[::-1]
    ap = 0.0
    for r in np.linspace(0, 1, 101):
        i = np.searchsorted(rec, r, side="left")
        ap += prec[i] if i < len(prec) else 0.0
    return ap / 101


def labels_ap_fn(files: list, max_samples: int = 8, iou_thr: float = 0.5):  # type: ignore[no-untyped-def]
    """A `val_fn` for gcseg.train.loop.train: AP (IoU > iou_thr) of the model's predictions against the training
    pseudo-labels of the first `max_samples` labelled samples (a fit check: the stages have no ground truth).
    Returns {"labels_AP50": ...}."""
    from gcseg.models.inference import predict_points
    from gcseg.train.dataset import PointSampleDataset

    ds = PointSampleDataset(list(files), augment_cfg=None, seed=0)
    idx = list(range(min(max_samples, len(ds))))

    def val_fn(model, epoch: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
        scenes = []
        for i in idx:
            s = ds.raw(i)
            masks, scores = predict_points(model, s["coord"], s["color"])
            scenes.append((masks, scores, s["instance"]))
        return {"labels_AP50": average_precision(scenes, iou_thr)}

    return val_fn
