"""The per-scene artifact of the `baselines` stage and the rows it holds (read by `eval` as ablation rows).

Layout (HDF5, schema ``gcseg.baselines``): root attributes ``scene_id``, ``num_points`` and ``coord_digest``
(sha256 of the reference cloud's float32 coordinates: a reader refuses predictions made on another cloud); one
group per row, ``rows/<name>/{indptr int64 (K+1,), points int32, scores float32 (K,), title}``: the row's
instances as CSR point lists over the reference points, in descending confidence (gcseg.baselines.views.Instances).
Light on imports: eval and the report read titles from here without loading scikit-learn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gcseg.errors import ArtifactError

SCHEMA = "gcseg.baselines"
SCHEMA_VERSION = 1
ROWS: tuple[str, ...] = ("maskclustering", "sai3d_keyframes", "sai3d_tracked")
ROW_TITLES: dict[str, str] = {
    "maskclustering": "Training-free: MaskClustering view consensus on keyframe proposals (no 3D model)",
    "sai3d_keyframes": "Training-free: SAI3D superpoint growing on keyframe proposals (no 3D model)",
    "sai3d_tracked": "Training-free: SAI3D superpoint growing on Stage 2 tracked masks (no 3D model)",
}
NOTE = ("The training-free rows lift the same 2D masks without any 3D model: MaskClustering "
        "(PKU-EPIC/MaskClustering, view-consensus clustering of the containment-filtered keyframe proposals, "
        "configs/scannet.json thresholds) and SAI3D (yd-yin/SAI3D, region growing of superpoints by the "
        "similarity of their per-view mask histograms, thresholds 0.9 -> 0.5) on the keyframe proposals and on "
        "the Stage 2 tracked id maps of every frame (as SAM2Object grows SAM2 tracks); confidences: detection "
        "rate (MaskClustering) and dominant-mask share (SAI3D) instead of the references' constant 1.0.")


def coord_digest(coord: np.ndarray) -> str:
    """sha256 of the cloud's float32 coordinates (identifies the reference cloud the rows were made on)."""
    return hashlib.sha256(np.ascontiguousarray(coord, dtype=np.float32).tobytes()).hexdigest()


def write_baselines(path: str | Path, scene_id: str, coord: np.ndarray, rows: Mapping[str, object]) -> None:
    """Write a scene's rows (name -> gcseg.baselines.views.Instances) atomically and deterministically."""
    from gcseg.io.h5 import write_h5

    n = int(np.asarray(coord).shape[0])
    tree = {"rows": {}}
    for name, inst in rows.items():
        if name not in ROW_TITLES:
            raise ValueError(f"unknown baseline row {name!r} (known: {', '.join(ROWS)})")
        if inst.num_points != n:  # type: ignore[attr-defined]
            raise ValueError(f"row {name}: instances over {inst.num_points} points, cloud has {n}")  # type: ignore[attr-defined]
        tree["rows"][name] = {"indptr": np.asarray(inst.indptr, np.int64),  # type: ignore[attr-defined]
                              "points": np.asarray(inst.points, np.int32),  # type: ignore[attr-defined]
                              "scores": np.asarray(inst.scores, np.float32),  # type: ignore[attr-defined]
                              "title": ROW_TITLES[name]}
    write_h5(path, tree, schema=SCHEMA, version=SCHEMA_VERSION,
             attrs={"scene_id": scene_id, "num_points": n, "coord_digest": coord_digest(coord)})


def read_baselines(path: str | Path, coord: np.ndarray | None = None
                   ) -> dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Rows of a scene in ROWS order: name -> (title, indptr, points, scores). With `coord`, the file must have
    been made on that cloud (ArtifactError otherwise, naming the fix)."""
    from gcseg.io.h5 import read_h5

    data, attrs = read_h5(path, schema=SCHEMA, version=SCHEMA_VERSION)
    fix = "rerun `dvc repro baselines` on the current scenes"
    if coord is not None and (int(attrs.get("num_points", -1)) != len(coord)
                              or attrs.get("coord_digest") != coord_digest(coord)):
        raise ArtifactError(f"baseline predictions were made on another reference cloud ({attrs.get('num_points')} "
                            f"points, the scene has {len(coord)})", path=path, fix=fix)
    rows = data.get("rows", {})
    out: dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]] = {}
    for name in [r for r in ROWS if r in rows] + sorted(r for r in rows if r not in ROWS):
        g = rows[name]
        try:
            indptr, points, scores = (np.asarray(g[k]) for k in ("indptr", "points", "scores"))
            title = str(g["title"])
        except KeyError as exc:
            raise ArtifactError(f"row {name} lacks {exc}", path=path, fix=fix) from None
        n = int(attrs.get("num_points", 0))
        ok = (indptr.ndim == 1 and indptr.size == scores.size + 1 and indptr[0] == 0
              and indptr[-1] == points.size and np.all(np.diff(indptr) >= 0)
              and (points.size == 0 or (points.min() >= 0 and points.max() < n)) and np.isfinite(scores).all())
        if not ok:
            raise ArtifactError(f"row {name} is malformed (instance offsets, point ids or scores)", path=path, fix=fix)
        out[name] = (title, indptr.astype(np.int64), points.astype(np.int64), scores.astype(np.float32))
    return out


def dense_masks(indptr: np.ndarray, points: np.ndarray, num_points: int) -> np.ndarray:
    """bool (K, N) masks from CSR point lists."""
    k = indptr.size - 1
    out = np.zeros((k, num_points), bool)
    out[np.repeat(np.arange(k), np.diff(indptr)), points] = True
    return out
