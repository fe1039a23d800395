"""Full-scene pseudo-labels for Stage 3: run a trained model on a whole scene's reference cloud, keep the
confident masks, split disconnected ones, give each point to one mask, and write the scene's HDF5.

Order (Segment3D ``generate_mask`` + ``get_instance_masks``, assumption where noted): top-k queries by score,
score > tau_conf, size >= min_points; then DBSCAN splitting (fragments inherit the score; Segment3D splits
before its top-k, we split after so that only kept masks pay for DBSCAN); then overlaps resolved by score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import ArtifactError, InputError
from gcseg.pseudolabel.resolve import assign_points
from gcseg.pseudolabel.select import select_masks
from gcseg.pseudolabel.split import split_disconnected
from gcseg.scene import PointCloud

SCHEMA = "gcseg.full_scene_pseudolabel"
SAMPLE_NAME = "scene"  # the one full-scene sample in the file (gcseg.io.samples layout)
HIST_EDGES = np.round(np.linspace(0.0, 1.0, 11), 2)  # score histogram bins of the summary


def score_histogram(scores: np.ndarray) -> dict[str, list[float] | list[int]]:
    """Counts of `scores` in ten bins over [0, 1] (values outside are clipped into the end bins)."""
    clipped = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    counts, _ = np.histogram(clipped, bins=HIST_EDGES)
    return {"edges": [float(e) for e in HIST_EDGES], "counts": [int(c) for c in counts]}


def pseudolabel_masks(masks: np.ndarray, scores: np.ndarray, coord: np.ndarray, *, top_k: int, tau_conf: float,
                      dbscan_eps: float | None, dbscan_min_samples: int, min_points: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """The pseudo-labelling chain on given predictions (no model): see the module docstring.

    Arguments:
        masks: bool (K, N) predicted masks; scores: float (K,).
        coord: float (N, 3).
        dbscan_eps: DBSCAN radius in metres, or None to keep masks whole.

    Returns:
        labels int32 (N,) (-1 = unlabelled, ids 0..M-1 best score first), kept masks bool (M, N) (before
        overlap resolution: label m's points are a subset of masks[m]), scores float32 (M,), summary dict.
    """
    masks = np.asarray(masks, dtype=bool)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    n = int(coord.shape[0])
    keep = select_masks(masks, scores, top_k=top_k, tau_conf=tau_conf, min_points=min_points)
    sel_masks, sel_scores = masks[keep], scores[keep]
    if dbscan_eps is not None and sel_masks.shape[0]:
        sel_masks, sel_scores, _ = split_disconnected(sel_masks, coord, scores=sel_scores, eps=dbscan_eps,
                                                      min_samples=dbscan_min_samples, min_points=min_points)
    labels, source = assign_points(sel_masks, sel_scores, min_points=min_points)
    kept_masks, kept_scores = sel_masks[source], sel_scores[source].astype(np.float32)
    labelled = int((labels >= 0).sum())
    summary: dict[str, Any] = {
        "num_points": n,
        "num_predicted": int(masks.shape[0]),
        "num_selected": int(keep.size),
        "num_after_split": int(sel_masks.shape[0]),
        "num_kept": int(kept_masks.shape[0]),
        "labelled_fraction": round(labelled / n, 6) if n else 0.0,
        "mean_score": round(float(kept_scores.mean()), 6) if kept_scores.size else 0.0,
        "score_histogram": score_histogram(kept_scores),
    }
    return labels, kept_masks, kept_scores, summary


def pseudolabel_scene(model: Any, cloud: PointCloud, *, top_k: int, tau_conf: float, dbscan_eps: float | None,
                      dbscan_min_samples: int, min_points: int, superpoint: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Predict masks on `cloud` with `model` (gcseg.models.inference.predict_points) and pseudo-label them.

    Returns (labels int32 (N,), kept masks bool (M, N), scores float32 (M,), summary), as `pseudolabel_masks`.
    """
    from gcseg.models.inference import predict_points  # torch stays out of import time

    if len(cloud) == 0:
        raise InputError("the scene's reference cloud has no points", fix="check the scan (empty depth?)")
    color = cloud.color if cloud.color is not None else np.full((len(cloud), 3), 128, dtype=np.uint8)
    masks, scores = predict_points(model, cloud.coord, color, superpoint=superpoint)
    return pseudolabel_masks(masks, scores, cloud.coord, top_k=top_k, tau_conf=tau_conf, dbscan_eps=dbscan_eps,
                             dbscan_min_samples=dbscan_min_samples, min_points=min_points)


def pack_masks(masks: np.ndarray) -> dict[str, np.ndarray]:
    """Bit-pack bool (M, N) masks row-wise: {"packed": uint8 (M, ceil(N/8)), "num_points": N}."""
    masks = np.asarray(masks, dtype=bool)
    return {"packed": np.packbits(masks, axis=1), "num_points": np.int64(masks.shape[1])}


def unpack_masks(group: dict[str, Any]) -> np.ndarray:
    n = int(group["num_points"])
    packed = np.asarray(group["packed"], dtype=np.uint8)
    return np.unpackbits(packed, axis=1, count=n).astype(bool) if packed.size else np.zeros((packed.shape[0], n), bool)


def _summary_tree(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as HDF5-writable values (nested dicts of scalars / arrays)."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        out[k] = _summary_tree(v) if isinstance(v, dict) else np.asarray(v)
    return out


def write_scene_pseudolabel(path: str | Path, scene_id: str, cloud: PointCloud, labels: np.ndarray,
                            masks: np.ndarray, scores: np.ndarray, summary: dict[str, Any],
                            config: dict[str, Any] | None = None) -> None:
    """One HDF5 per scene in the shared point-sample layout (sample ``scene``: coord, color, instance = labels,
    score = float32 (M,) per instance id) plus top-level ``scores`` (the same), ``masks`` (bit-packed kept
    masks, before overlap resolution), ``summary`` and ``config`` (the run config, JSON:
    gcseg.io.samples.is_finished)."""
    from gcseg.io.samples import config_json, write_point_samples

    color = cloud.color if cloud.color is not None else np.full((len(cloud), 3), 128, dtype=np.uint8)
    write_point_samples(
        path, {SAMPLE_NAME: {"coord": cloud.coord, "color": color, "instance": labels,
                             "score": np.asarray(scores, np.float32)}},  # per instance id (samples.py layout)
        schema=SCHEMA, scene_id=scene_id,
        extra={"scores": np.asarray(scores, np.float32), "masks": pack_masks(masks),
               "summary": _summary_tree(summary), "config": config_json(config)})


def read_scene_pseudolabel(path: str | Path) -> dict[str, Any]:
    """Read a file written by `write_scene_pseudolabel`: {scene_id, coord, color, instance, scores, masks,
    summary}. Raises ArtifactError for a foreign, stale or corrupt file."""
    from gcseg.io.h5 import read_h5
    from gcseg.io.samples import SCHEMA_VERSION

    tree, attrs = read_h5(path, schema=SCHEMA, version=SCHEMA_VERSION)
    try:
        sample = tree["samples"][SAMPLE_NAME]
        out = {"scene_id": str(attrs.get("scene_id", "")), "coord": sample["coord"], "color": sample["color"],
               "instance": sample["instance"], "scores": np.asarray(tree["scores"], np.float32),
               "masks": unpack_masks(tree["masks"]), "summary": _plain(tree["summary"])}
    except KeyError as exc:
        raise ArtifactError(f"pseudo-label file lacks {exc}", path=path,
                            fix="rerun full_scene_pseudolabel (`dvc repro -f full_scene_pseudolabel`)") from exc
    return out


def read_summary(path: str | Path) -> dict[str, Any]:
    """Only the ``summary`` group of a pseudo-label file (cheap: no points, no masks)."""
    from gcseg.io.h5 import _read_group, open_h5
    from gcseg.io.samples import SCHEMA_VERSION

    with open_h5(path, schema=SCHEMA, version=SCHEMA_VERSION) as f:
        if "summary" not in f:
            raise ArtifactError("pseudo-label file lacks 'summary'", path=path,
                                fix="rerun full_scene_pseudolabel (`dvc repro -f full_scene_pseudolabel`)")
        return _plain(_read_group(f["summary"]))


def _plain(tree: dict[str, Any]) -> dict[str, Any]:
    """HDF5-read summary back to JSON-able Python values."""
    out: dict[str, Any] = {}
    for k in sorted(tree):
        v = tree[k]
        if isinstance(v, dict):
            out[k] = _plain(v)
        else:
            arr = np.asarray(v)
            out[k] = arr.tolist() if arr.ndim else arr.item()
    return out
