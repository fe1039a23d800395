"""Segment one new scan with a trained model, without DVC: ``gcseg predict --input PATH --checkpoint model.pt``.

Input: any scan the readers support (a posed RGB-D folder -> its reference.ply or a fused cloud; a ScanNet or
ScanNet++ scene folder -> its mesh vertices) or a bare point-cloud PLY (x, y, z [+ red, green, blue]).
Output, in one folder (several scenes may share it, as in the ScanNet benchmark):

  <scene>.txt                     ScanNet benchmark prediction list (``predicted_masks/<scene>_NNN.txt 1 <conf>``)
  predicted_masks/<scene>_NNN.txt one 0/1 per point per mask (masks may overlap; the evaluator allows it)
  <scene>_instances.ply           points coloured by instance (overlaps given to the higher score;
                                  property ``instance``: 1..M in score order, 0 = no instance)
  <scene>_summary.json            scene id, source, point count, and per mask its file, score and size

A scene's files are written as one set (staged in a hidden folder inside the output folder, then moved into place
with <scene>.txt last), so an interrupted run leaves no partial set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gcseg.errors import ArtifactError, InputError
from gcseg.models.config import FragmentConfig, MatrixNmsSetting, with_matrix_nms
from gcseg.scene import PointCloud

Source = Literal["auto", "posed_rgbd", "scannet", "scannetpp", "ply"]
SOURCES: tuple[str, ...] = ("auto", "posed_rgbd", "scannet", "scannetpp", "ply")
SUPPORTED = ("a posed RGB-D folder (color/, depth/, pose/, intrinsic/; ScanNet exported layout), a ScanNet scene "
             "folder (<scene>_vh_clean_2.ply), a ScanNet++ scene folder (scans/mesh_aligned_0.05.ply), or a "
             "point-cloud .ply file with vertex x, y, z (+ red, green, blue)")


@dataclass(frozen=True)
class ScanInput:
    """A scan resolved to the points that get labels."""

    scene_id: str
    source: str  # the reader used: posed_rgbd | scannet | scannetpp | ply
    cloud: PointCloud


def detect_source(path: Path, *, supported: str = SUPPORTED) -> str:
    """Which reader handles `path` (``auto``). Raises InputError naming what is supported: `supported`, the
    inputs of the calling command (gcseg segment reads no bare point clouds)."""
    if path.is_file():
        if path.suffix.lower() == ".ply":
            return "ply"
        raise InputError(f"unsupported file type '{path.suffix or path.name}'", path=path,
                         fix=f"give {supported}")
    if not path.exists():
        raise InputError("input not found", path=path, fix=f"give {supported}")
    if any(path.glob("*_vh_clean_2.ply")):
        return "scannet"
    if (path / "scans" / "mesh_aligned_0.05.ply").is_file():
        return "scannetpp"
    has_color, has_depth = (path / "color").is_dir(), (path / "depth").is_dir()
    if has_color and has_depth:
        return "posed_rgbd"
    if has_color != has_depth:  # half a posed RGB-D folder: say which half is missing
        missing, present = ("depth", "color") if has_color else ("color", "depth")
        raise InputError(f"folder has {present}/ but no {missing}/ subfolder", path=path,
                         fix=f"export the {missing} frames into {missing}/ (a posed RGB-D scan needs color/, "
                             "depth/, pose/ and intrinsic/, ScanNet exported layout)")
    raise InputError("folder is not a scan gcseg can read", path=path, fix=f"give {supported}")


def mesh_path(scene_dir: Path, source: str) -> Path:
    """The benchmark mesh of a ScanNet (``<scene>_vh_clean_2.ply``) or ScanNet++ (``scans/mesh_aligned_0.05.ply``)
    scene folder, as the readers (gcseg.readers.scannet / scannetpp) load it."""
    if source == "scannet":
        found = sorted(scene_dir.glob("*_vh_clean_2.ply"))
        mesh = scene_dir / f"{scene_dir.name}_vh_clean_2.ply"
        if not mesh.is_file() and len(found) == 1:
            mesh = found[0]
        if not mesh.is_file():
            raise InputError("ScanNet scene folder has no <scene>_vh_clean_2.ply mesh", path=scene_dir,
                             fix="download the scene's _vh_clean_2.ply (the benchmark mesh)")
        return mesh
    mesh = scene_dir / "scans" / "mesh_aligned_0.05.ply"
    if not mesh.is_file():
        raise InputError("ScanNet++ scene folder has no scans/mesh_aligned_0.05.ply", path=scene_dir,
                         fix="download the scene's scans/ folder (the benchmark mesh)")
    return mesh


def read_cloud_ply(path: Path) -> PointCloud:
    """A bare point-cloud (or mesh) PLY -> PointCloud (colours optional; mesh faces ignored)."""
    from gcseg.io.ply import read_ply

    d = read_ply(path)  # InputError for missing / corrupt / no x, y, z
    return PointCloud(coord=np.ascontiguousarray(d["coord"], dtype=np.float32), color=d.get("color"))


def load_scan(path: str | Path, *, source: str = "auto", scene_id: str | None = None) -> ScanInput:
    """Resolve `path` to the point cloud to segment. Checks that it is non-empty and finite."""
    path = Path(path)
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r}", fix=f"use one of {', '.join(SOURCES)}")
    if source == "auto":
        source = detect_source(path)
    if source == "ply":
        if not path.is_file():
            raise InputError("PLY file not found", path=path, fix="give a .ply file with vertex x, y, z")
        cloud = read_cloud_ply(path)
        sid = scene_id or path.stem
    else:
        if not path.is_dir():
            raise InputError(f"a {source} scan must be a folder", path=path, fix=f"give {SUPPORTED}")
        sid = scene_id or path.name
        if source == "posed_rgbd":
            from gcseg.readers.posed_rgbd import open_posed_rgbd

            cloud = open_posed_rgbd(path, scene_id=sid).reference()  # reference.ply, else fused depth
        else:
            # the benchmark labels mesh vertices: read the mesh alone (no frames or label tables needed)
            cloud = read_cloud_ply(mesh_path(path, source))
    check_cloud(cloud, path)
    return ScanInput(scene_id=_safe_scene_id(sid, path), source=source, cloud=cloud)


def _safe_scene_id(scene_id: str, path: Path) -> str:
    """Scene ids name output files: no separators or leading dots."""
    if not scene_id or re.search(r"[\s/\\]", scene_id) or scene_id.startswith("."):
        raise InputError(f"scene id {scene_id!r} cannot name output files", path=path,
                         fix="pass --scene-id NAME (letters, digits, _ and -)")
    return scene_id


def check_cloud(cloud: PointCloud, path: Path) -> None:
    if len(cloud) == 0:
        raise InputError("the scan has no points (empty cloud)", path=path,
                         fix="give a scan with points (for RGB-D: frames with valid depth)")
    if not np.all(np.isfinite(cloud.coord)):
        raise InputError("the point cloud has non-finite coordinates (nan/inf)", path=path,
                         fix="remove invalid points before predicting")


def load_checkpoint(path: str | Path) -> tuple[Any, Any]:
    """(model, config) from a gcseg checkpoint; wrong architecture or a corrupt file -> ArtifactError."""
    from gcseg.models.mask_model import load_model

    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path=path,
                         fix="pass --checkpoint data/models/stage3/model.pt (or another stage's model.pt)")
    try:
        return load_model(path)
    except (ArtifactError, InputError):
        raise
    except Exception as exc:  # torch.load raises many types for truncated / foreign pickles
        raise ArtifactError(f"cannot load the checkpoint ({type(exc).__name__}: {exc})", path=path,
                            fix="the file is corrupt or not a gcseg model: re-download it or retrain") from exc


def predict_masks(model: Any, cloud: PointCloud, *, tau_conf: float = 0.0, fragments: FragmentConfig | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Masks bool (K, N) and scores float32 (K,) with score > tau_conf and at least one point, best first; with
    `fragments` (gcseg.models.config.FragmentConfig) the connected pieces of masks that fall apart too."""
    from gcseg.models.inference import predict_points
    from gcseg.pseudolabel.select import select_masks

    color = cloud.color if cloud.color is not None else np.full((len(cloud), 3), 128, dtype=np.uint8)
    masks, scores = predict_points(model, cloud.coord, color, fragments=fragments)
    keep = select_masks(masks, scores, top_k=0, tau_conf=tau_conf, min_points=1)
    return np.asarray(masks, bool)[keep], np.asarray(scores, np.float32)[keep]


def write_prediction(out: str | Path, scan: ScanInput, masks: np.ndarray, scores: np.ndarray, *,
                     extra: dict[str, Any] | None = None,
                     extra_files: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Write the benchmark files, the instance PLY and the summary JSON for one scene (plus whatever
    `extra_files(folder)` writes into the folder it is given); returns the summary.

    The scene's files are written as a set: staged in a hidden folder inside `out`, then moved into place with
    ``<scene>.txt`` (the index the benchmark reads) last, so an interruption leaves the earlier set or none."""
    import shutil
    import tempfile

    from gcseg.atomic import check_output

    out = Path(out)
    check_output(out, folder=True)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out, prefix=f".{scan.scene_id}.", suffix=".tmp"))
    try:
        summary = _write_scene_files(stage, scan, masks, scores, extra)
        if extra_files is not None:
            extra_files(stage)
        _publish(stage, out, scan.scene_id)
    finally:  # also on KeyboardInterrupt: no hidden folder of masks left behind
        shutil.rmtree(stage, ignore_errors=True)
    return summary


def _write_scene_files(folder: Path, scan: ScanInput, masks: np.ndarray, scores: np.ndarray,
                       extra: dict[str, Any] | None) -> dict[str, Any]:
    """The benchmark files, the instance PLY and the summary of one scene, written into `folder`."""
    from gcseg.atomic import write_text
    from gcseg.eval.benchmark_io import write_predictions
    from gcseg.io.ply import write_instance_ply
    from gcseg.pseudolabel.resolve import assign_points

    sid = scan.scene_id
    scene_file = write_predictions(folder, sid, masks, scores)  # label id 1: one class-agnostic class
    files = [line.split()[0] for line in scene_file.read_text().splitlines() if line.strip()]
    labels, _ = assign_points(masks, scores)
    write_instance_ply(folder / f"{sid}_instances.ply", scan.cloud.coord, labels + 1)
    summary: dict[str, Any] = {
        "scene_id": sid,
        "source": scan.source,
        "num_points": len(scan.cloud),
        "num_masks": int(masks.shape[0]),
        "labelled_points": int((labels >= 0).sum()),
        **(extra or {}),
        "masks": [{"file": f, "score": round(float(s), 6), "num_points": int(m.sum())}
                  for f, s, m in zip(files, scores, masks, strict=True)],
    }
    write_text(folder / f"{sid}_summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _publish(stage: Path, out: Path, scene_id: str) -> None:
    """Move every staged file to the same place under `out`, ``<scene>.txt`` last; then drop the scene's masks
    of an earlier, larger prediction (no longer listed)."""
    import os

    from gcseg.eval.benchmark_io import MASK_FOLDER, remove_stale_masks

    index = stage / f"{scene_id}.txt"
    files = sorted(p for p in stage.rglob("*") if p.is_file() and p != index)
    for src in [*files, index]:
        dst = out / src.relative_to(stage)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    remove_stale_masks(out, scene_id, {p.name for p in files if p.parent.name == MASK_FOLDER})


def predict_scan(input: str | Path, checkpoint: str | Path, out: str | Path, *, source: str = "auto",
                 tau_conf: float = 0.0, scene_id: str | None = None,
                 fragments: FragmentConfig | None = FragmentConfig(), model: Any = None,
                 matrix_nms: MatrixNmsSetting = "linear") -> dict[str, Any]:
    """Read a scan, predict instance masks with the checkpoint, write the prediction folder. Returns the summary.

    fragments: the connected pieces of masks that fall apart are predicted too (None: masks only); the default is
    the eval stage's, so that a prediction scores as the eval's model rows do. model: the checkpoint already loaded
    (load_checkpoint), for callers that predict many scans with it; None loads it here. matrix_nms: the
    checkpoint's model.matrix_nms ("checkpoint") or this in its place (gcseg.models.config.with_matrix_nms);
    the default is the eval stage's too."""
    from gcseg.atomic import check_output

    if not 0.0 <= tau_conf < 1.0:
        raise InputError(f"--tau-conf must be in [0, 1), got {tau_conf}", fix="e.g. --tau-conf 0.6")
    check_output(out, folder=True, what="--out")  # an existing file there: fail now, not after predicting
    scan = load_scan(input, source=source, scene_id=scene_id)  # cheap checks before the model loads
    if model is None:
        model, _cfg = load_checkpoint(checkpoint)
    model = with_matrix_nms(model, matrix_nms)  # the caller's model stays as it was
    masks, scores = predict_masks(model, scan.cloud, tau_conf=tau_conf, fragments=fragments)
    return write_prediction(out, scan, masks, scores,
                            extra={"checkpoint": Path(checkpoint).name, "tau_conf": float(tau_conf),
                                   "fragments": None if fragments is None else fragments.model_dump(),
                                   "matrix_nms": model.cfg.matrix_nms})
