"""ScanNet benchmark files for instance segmentation: GT ``<scene>.txt`` and prediction folders.

Formats (ScanNet/ScanNet@3830fce ``BenchmarkScripts/3d_evaluation/evaluate_semantic_instance.py`` header,
``util_3d.read_instance_prediction_file``; ScanNet++ uses the same layout):

* GT ``<gt_dir>/<scene>.txt``: one integer per mesh vertex, ``label * 1000 + instance``; < 1000 = void.
* Predictions ``<pred_dir>/<scene>.txt``: one line per mask, ``<relative mask path> <label id> <confidence>``;
  masks in a sub-folder, here ``predicted_masks/<scene>_NNN.txt``, one ``0``/``1`` per vertex.

Writes are atomic (temporary sibling + rename) and deterministic (confidence ``%.6f``, zero-padded mask
numbers, the scene file written last, stale masks of the scene removed). Reads check everything the official
script would trip over and name the file: missing scene or mask file, malformed line, absolute path or a
path leaving the prediction folder, duplicate mask path, NaN/inf confidence, wrong vertex count, values
other than 0/1 (stricter than the script, which takes any non-zero as 1).
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

from gcseg.atomic import write_bytes, write_text
from gcseg.errors import InputError

MASK_FOLDER = "predicted_masks"
# Files in a prediction folder that are not scene files (the official script's own output).
NON_SCENE_FILES = frozenset({"semantic_instance_evaluation.txt"})


def _int_lines(data: bytes, path: Path) -> np.ndarray:
    """One integer per line (whitespace-separated tokens), as int64."""
    tokens = data.split()
    try:
        return np.array(tokens, dtype=np.bytes_).astype(np.int64) if tokens else np.zeros(0, np.int64)
    except ValueError as exc:
        raise InputError(f"expected one integer per line ({exc})", path=path,
                         fix="write one integer per mesh vertex") from exc


def _ids_bytes(ids: np.ndarray) -> bytes:
    return ("\n".join(map(str, ids.tolist())) + "\n").encode() if ids.size else b""


# ---------------------------------------------------------------- GT

def write_gt(path: str | Path, gt_ids: np.ndarray) -> None:
    """Write a GT file: one ``label * 1000 + instance`` integer per vertex."""
    ids = np.asarray(gt_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or (ids.size and ids.min() < 0):
        raise InputError("GT ids must be a 1-D array of non-negative integers", path=path)
    write_bytes(path, _ids_bytes(ids.astype(np.int64)))


def read_gt(path: str | Path) -> np.ndarray:
    """Read a GT file as int64[N]."""
    path = Path(path)
    if not path.is_file():
        raise InputError("GT file not found", path=path, fix="check --gt and the scene name")
    ids = _int_lines(path.read_bytes(), path)
    if ids.size and ids.min() < 0:
        raise InputError(f"negative GT id {int(ids.min())}", path=path, fix="GT ids are label * 1000 + instance")
    return ids


def list_scenes(folder: str | Path) -> list[str]:
    """Scene names = the ``*.txt`` files directly in `folder` (sorted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("folder not found", path=folder, fix="pass an existing folder")
    return sorted(p.stem for p in folder.glob("*.txt") if p.is_file() and p.name not in NON_SCENE_FILES)


# ---------------------------------------------------------------- predictions

def _mask_bytes(mask: np.ndarray) -> bytes:
    out = np.full(mask.shape[0] * 2, ord("\n"), dtype=np.uint8)
    out[0::2] = ord("0") + mask.astype(np.uint8)
    return out.tobytes()


def remove_stale_masks(pred_dir: str | Path, scene_id: str, keep: set[str]) -> None:
    """Delete ``predicted_masks/<scene>_NNN.txt`` files not in `keep`: masks of an earlier, larger prediction of
    this scene would otherwise linger in the folder."""
    mask_dir = Path(pred_dir) / MASK_FOLDER
    pattern = re.compile(re.escape(scene_id) + r"_\d+\.txt")
    for stale in sorted(mask_dir.glob(f"{glob.escape(scene_id)}_*.txt")):
        if pattern.fullmatch(stale.name) and stale.name not in keep:
            stale.unlink()


def write_predictions(pred_dir: str | Path, scene_id: str, masks: np.ndarray | sparse.spmatrix,
                      scores: Sequence[float] | np.ndarray, label_id: int = 1) -> Path:
    """Write ``<pred_dir>/<scene>.txt`` and its masks ``predicted_masks/<scene>_NNN.txt``; returns the scene file.

    `label_id` goes into every line (class-agnostic: the evaluator ignores it; the official script needs a
    valid class id, so pass one of the set when scoring with it).
    """
    pred_dir = Path(pred_dir)
    if not scene_id or re.search(r"[\s/\\]", scene_id):
        raise InputError(f"scene id {scene_id!r} must be non-empty without spaces or slashes")
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    m = sparse.csr_matrix(masks) if sparse.issparse(masks) else np.asarray(masks)
    if m.ndim != 2 or m.shape[0] != scores.shape[0]:
        raise InputError(f"scene {scene_id}: masks of shape {m.shape} do not match {scores.shape[0]} scores")
    bad = ~np.isfinite(scores)
    if bad.any():
        raise InputError(f"scene {scene_id}: confidence of mask {int(np.flatnonzero(bad)[0])} is "
                         f"{scores[bad][0]}", fix="give every mask a finite confidence")
    width = max(3, len(str(max(m.shape[0] - 1, 0))))
    # the old index goes first: a run killed while the masks below are rewritten leaves a missing scene (an
    # error when read), not the old confidences listing new masks under their reused names
    (pred_dir / f"{scene_id}.txt").unlink(missing_ok=True)
    mask_dir = pred_dir / MASK_FOLDER
    mask_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    names = set()
    for k in range(m.shape[0]):
        row = (m[k].toarray().ravel() if sparse.issparse(m) else m[k]) != 0
        name = f"{scene_id}_{k:0{width}d}.txt"
        names.add(name)
        write_bytes(mask_dir / name, _mask_bytes(row))
        lines.append(f"{MASK_FOLDER}/{name} {int(label_id)} {scores[k]:.6f}\n")
    remove_stale_masks(pred_dir, scene_id, names)
    scene_file = pred_dir / f"{scene_id}.txt"
    write_text(scene_file, "".join(lines))
    return scene_file


def read_mask(path: Path, num_vertices: int) -> np.ndarray:
    """A mask file -> bool[num_vertices]; only 0/1 values, one per vertex."""
    if not path.is_file():
        raise InputError("mask file not found", path=path, fix="write every mask the scene file lists")
    data = path.read_bytes()
    # Fast path: exactly '0\n' / '1\n' per vertex.
    if len(data) == 2 * num_vertices:
        arr = np.frombuffer(data, dtype=np.uint8)
        digits = arr[0::2]
        if np.all(arr[1::2] == ord("\n")) and np.all((digits == ord("0")) | (digits == ord("1"))):
            return digits == ord("1")
    values = _int_lines(data, path)
    if values.shape[0] != num_vertices:
        raise InputError(f"mask has {values.shape[0]} values but the mesh has {num_vertices} vertices", path=path,
                         fix="write one 0/1 per mesh vertex, in the mesh's vertex order")
    bad = (values != 0) & (values != 1)
    if bad.any():
        raise InputError(f"mask value {int(values[bad][0])} on line {int(np.flatnonzero(bad)[0]) + 1}; "
                         "only 0 and 1 are allowed", path=path, fix="write 1 inside the mask, 0 outside")
    return values == 1


def read_predictions(pred_dir: str | Path, scene_id: str, num_vertices: int
                     ) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Read one scene's predictions: (masks bool csr [K, N] in file order, confidences float64[K])."""
    pred_dir = Path(pred_dir)
    scene_file = pred_dir / f"{scene_id}.txt"
    if not scene_file.is_file():
        raise InputError(f"no prediction file for scene {scene_id}", path=scene_file,
                         fix="write predictions for every GT scene (or pass --allow-missing)")
    root = os.path.realpath(pred_dir)
    rows: list[np.ndarray] = []
    scores: list[float] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(scene_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"line {lineno}"
        if len(parts) != 3:
            raise InputError(f"{where}: expected '<mask path> <label id> <confidence>', got {line!r}",
                             path=scene_file, fix="write one line per mask: <relative mask path> <label id> <confidence> (ScanNet benchmark format)")
        rel, label, conf_text = parts
        if os.path.isabs(rel):
            raise InputError(f"{where}: mask path {rel!r} must be relative", path=scene_file,
                             fix="write mask paths relative to the prediction folder")
        mask_path = Path(os.path.realpath(pred_dir / rel))
        if os.path.commonpath([str(mask_path), root]) != root:
            raise InputError(f"{where}: mask path {rel!r} points outside the prediction folder", path=scene_file,
                             fix="keep the mask files inside the prediction folder")
        if str(mask_path) in seen:
            raise InputError(f"{where}: mask {rel!r} listed twice (first on line {seen[str(mask_path)]})",
                             path=scene_file, fix="list every mask once")
        seen[str(mask_path)] = lineno
        try:
            int(float(label))
            conf = float(conf_text)
        except (ValueError, OverflowError) as exc:  # int(float("inf")): OverflowError
            raise InputError(f"{where}: label id / confidence not numeric ({line!r})", path=scene_file,
                             fix="write one line per mask: <relative mask path> <label id> <confidence> (ScanNet benchmark format)") from exc
        if not math.isfinite(conf):
            raise InputError(f"{where}: confidence is {conf_text}", path=scene_file,
                             fix="write a finite confidence for every mask")
        rows.append(read_mask(pred_dir / rel, num_vertices))
        scores.append(conf)
    if rows:
        masks = sparse.csr_matrix(np.stack(rows))
    else:
        masks = sparse.csr_matrix((0, num_vertices), dtype=bool)
    return masks, np.asarray(scores, dtype=np.float64)


def read_ignore(path: str | Path, num_vertices: int) -> np.ndarray:
    """ScanNet++ ignore file (vertex indices to leave out, one per line) -> valid bool[N]."""
    path = Path(path)
    if not path.is_file():
        raise InputError("ignore file not found", path=path, fix="pass --ignore-dir with a <scene>.txt per scene")
    idx = _int_lines(path.read_bytes(), path)
    if idx.size and (idx.min() < 0 or idx.max() >= num_vertices):
        raise InputError(f"vertex index out of range 0..{num_vertices - 1}", path=path,
                         fix="the ignore file belongs to another mesh: use the one of this scene")
    valid = np.ones(num_vertices, dtype=bool)
    valid[idx] = False
    return valid


__all__ = ["MASK_FOLDER", "list_scenes", "read_gt", "read_ignore", "read_mask", "read_predictions",
           "remove_stale_masks", "write_gt", "write_predictions"]
