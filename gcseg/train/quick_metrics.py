"""A quick class-agnostic AP of a model against its own training pseudo-labels (a fit check during training; the
stages have no ground truth). Scored by the project's one AP implementation, gcseg.eval.ap (ScanNet's benchmark
semantics), with the pseudo-labels as GT: every labelled instance counts, unlabelled points (-1) are removed from
GT and predictions alike (the evaluator's ignore mask), and no size filter (min region 1 point).
"""

from __future__ import annotations

import numpy as np

from gcseg.eval.ap import OVERLAPS, SceneEval, evaluate_scenes


def average_precision(scenes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], iou_thr: float = 0.5) -> float:
    """AP at IoU > iou_thr (one of gcseg.eval.ap.OVERLAPS: 0.25, 0.5, ..., 0.9) over scenes, each (pred masks
    bool [K, N], scores [K], pseudo-label instance ids int [N], -1 = ignore). NaN without any labelled point."""
    hit = np.flatnonzero(np.isclose(OVERLAPS, iou_thr))
    if not hit.size:
        raise ValueError(f"iou_thr must be one of {[round(float(t), 2) for t in OVERLAPS]}, got {iou_thr}")
    evals = []
    for i, (masks, scores, ids) in enumerate(scenes):
        ids = np.asarray(ids, np.int64)
        # one class (label 1): instance k -> 1000 + k + 1; unlabelled points leave the evaluation (ignore mask)
        evals.append(SceneEval(scene_id=str(i), gt_ids=np.where(ids >= 0, 1001 + ids, 0), valid=ids >= 0,
                               pred_masks=np.asarray(masks, bool).reshape(-1, ids.shape[0]),
                               pred_scores=np.asarray(scores, np.float64)))
    return float(evaluate_scenes(evals, min_region_size=1).ap_per_threshold[hit[0]])


def labels_ap_fn(files: list, max_samples: int = 8, iou_thr: float = 0.5,  # type: ignore[no-untyped-def]
                 superpoints=None):
    """A `val_fn` for gcseg.train.loop.train: AP (IoU > iou_thr) of the model's predictions against the training
    pseudo-labels of the first `max_samples` labelled samples (a fit check: the stages have no ground truth).
    `superpoints`: the samples' superpoints folder (superpoint models). Returns {"labels_AP50": ...}.

    The decoder attends to the training's key subsample (`max_attn_voxels`) here, not to every voxel as at
    inference (`test_attn_voxels`): the check reads the model as it was fitted, and on full-scene samples every
    voxel would cost the default's training stages about a minute (measured: docs/model_study.md round 13)."""
    from gcseg.models.inference import predict_points
    from gcseg.train.dataset import PointSampleDataset

    ds = PointSampleDataset(list(files), augment_cfg=None, seed=0, superpoints=superpoints)
    idx = list(range(min(max_samples, len(ds))))

    def val_fn(model, epoch: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
        dec = model.decoder
        saved, dec.test_attn_voxels = dec.test_attn_voxels, dec.max_attn_voxels
        try:
            scenes = []
            for i in idx:
                s = ds.raw(i)
                masks, scores = predict_points(model, s["coord"], s["color"], superpoint=s.get("superpoint"))
                scenes.append((masks, scores, s["instance"]))
        finally:
            dec.test_attn_voxels = saved
        return {"labels_AP50": average_precision(scenes, iou_thr)}

    return val_fn
