"""Per-vertex GT from ScanNet-style annotation (ScanNet v2 and ScanNet++ share the scheme):
segIndices (one over-segment id per vertex) + segGroups (objects: objectId, label, segments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import InputError


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError("annotation file is missing", path=path, fix="download the scene's annotation files")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path=path, fix="the file is truncated or corrupt: download it again") from exc


def read_seg_indices(path: Path, num_vertices: int) -> np.ndarray:
    data = read_json(path)
    if not isinstance(data, dict) or "segIndices" not in data:
        raise InputError("no 'segIndices' key", path=path, fix="give the segments JSON of this mesh")
    seg = np.asarray(data["segIndices"], dtype=np.int64)
    if seg.shape != (num_vertices,):
        raise InputError(f"{seg.shape[0]} segIndices for a mesh of {num_vertices} vertices", path=path,
                         fix="segments file and mesh must belong together (same scene, same mesh resolution)")
    return seg


def read_seg_groups(path: Path) -> list[dict[str, Any]]:
    data = read_json(path)
    groups = data.get("segGroups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise InputError("no 'segGroups' list", path=path, fix="give the scene's aggregation / segments_anno JSON")
    for g in groups:
        if not isinstance(g, dict) or "segments" not in g or ("objectId" not in g and "id" not in g):
            raise InputError("a segGroup lacks 'objectId'/'id' or 'segments'", path=path,
                             fix="give the scene's aggregation / segments_anno JSON")
    return groups


def vertex_gt(seg_indices: np.ndarray, groups: list[dict[str, Any]], class_of_label: dict[str, int] | None,
              keep_classes: set[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """(instance int32, segment int32) per vertex. instance = objectId + 1 (0 = none), as the benchmark scripts;
    segment = class id from `class_of_label` (0 = unknown). With `keep_classes`, objects of other classes are
    void in both (e.g. ScanNet200's wall/floor). Later groups overwrite earlier ones on shared segments."""
    inst = np.zeros(seg_indices.shape[0], np.int32)
    sem = np.zeros(seg_indices.shape[0], np.int32)
    for g in groups:
        cls = 0 if class_of_label is None else int(class_of_label.get(str(g.get("label", "")), 0))
        if keep_classes is not None and cls not in keep_classes:
            continue
        members = np.isin(seg_indices, np.asarray(g["segments"], dtype=np.int64))
        inst[members] = int(g.get("objectId", g.get("id"))) + 1
        sem[members] = cls
    return inst, sem


def vertex_gt_smallest(seg_indices: np.ndarray, groups: list[dict[str, Any]],
                       roles: list[tuple[bool, int] | None], max_labels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(instance int32, segment int32) per vertex by the ScanNet++ toolkit's rule for shared segments
    (scannetpp `semantic/transforms/mesh.py`, GetLabelsOnVertices, single-label GT): each vertex records the first
    `max_labels` (the toolkit's 3) taking-part groups that cover it, in segGroups order, and keeps the smallest of
    them (the fewest vertices recorded for that group); on equal sizes the earlier group in segGroups wins.

    roles[i] for groups[i]: None = takes no part (the toolkit's ignore label: not a benchmark class); else
    (is_instance, class id). A taking-part group that is not an instance (e.g. a wall, when the semantic class list
    is known) still wins the vertices where it is smallest, and leaves them void. instance = objectId + 1 (0 = none);
    segment = class id of the kept instance (0 = none)."""
    n = seg_indices.shape[0]
    slot_inst = np.zeros((n, max_labels), np.int32)
    slot_sem = np.zeros((n, max_labels), np.int32)
    slot_size = np.full((n, max_labels), np.inf)
    used = np.zeros(n, np.int64)
    for g, role in zip(groups, roles):
        if role is None:
            continue
        idx = np.flatnonzero(np.isin(seg_indices, np.asarray(g["segments"], dtype=np.int64)) & (used < max_labels))
        if idx.size == 0:
            continue
        pos = used[idx]
        is_instance, cls = role
        if is_instance:
            slot_inst[idx, pos] = int(g.get("objectId", g.get("id"))) + 1
            slot_sem[idx, pos] = cls
        slot_size[idx, pos] = idx.size
        used[idx] += 1
    best = np.argmin(slot_size, axis=1)  # first minimum: the earlier group; vertices without a group: slot 0 (void)
    rows = np.arange(n)
    return slot_inst[rows, best], slot_sem[rows, best]
