"""Superpoints: a graph-based oversegmentation of a point cloud, computed once per cloud and stored as an artifact.

Where a scene ships its own oversegmentation (ScanNet's ``<scene>_vh_clean_2.0.010000.segs.json``, made by
ScanNet's Segmentator) that is used as is. Otherwise the cloud is segmented the way the Segmentator segments a
mesh: Felzenszwalb & Huttenlocher's greedy merge (IJCV 2004) over a graph whose edge weight is
``1 - |n_i . n_j|`` (surface normals; the Segmentator's weight without its convexity term, which needs
oriented normals) plus ``color_weight * |rgb_i - rgb_j| / (255 sqrt 3)`` (colour; the synthetic scenes give
every part its own colour), followed by the Segmentator's merge of segments under ``min_size`` points along their
lightest edge. The graph is a k-nearest-neighbour graph (no mesh) on the cloud reduced to one point per
``voxel`` (the mean of the voxel's points), so that the segment scale does not depend on the sensor's point
density (a 320x240 keyframe cloud is several times denser than the 2 cm reference cloud); every point takes the
superpoint of its voxel. Normals are the smallest principal axis of each point's neighbourhood.

The sequential union-find runs compiled (numba): about 0.2 s for the 1.1 M edges of a 200 k-point cloud; the
kNN graph and normals are vectorised numpy/scipy. Output ids are 0..S-1 in order of first occurrence along the
input points, so the same cloud always gives the same bytes.

Artifact (one HDF5 per scene, :func:`write_superpoints`, schema ``gcseg.superpoints``): ``samples/<name>/
superpoint`` int32 (N,) and ``samples/<name>/coord_digest`` (sha256 of the cloud's float32 coordinates, so that a
reader can refuse superpoints made on another cloud), plus root attributes ``scene_id``, ``method`` and
``config`` (JSON). Reference clouds use the sample name ``reference``; Stage 1 keyframe clouds their sample name
in the ``sam_keyframes`` file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import ArtifactError, ConfigError, InputError

SCHEMA = "gcseg.superpoints"
SCHEMA_VERSION = 1
REFERENCE = "reference"  # sample name of a scene's reference cloud


@dataclass(frozen=True)
class SuperpointConfig:
    """Graph and merge settings (params.yaml ``superpoints:``; defaults measured on the synthetic scenes, see
    params.yaml)."""

    voxel: float = 0.01  # metres: one graph node per voxel (0 = every point is a node)
    k_neighbors: int = 10  # graph edges per node (nearest neighbours within max_edge)
    max_edge: float = 0.06  # metres: longer kNN edges are dropped (separated objects never share a superpoint)
    k_thresh: float = 0.05  # FH scale k: larger = larger segments (Segmentator kThresh 0.01 on normals alone)
    color_weight: float = 2.0  # weight of the colour difference in the edge weight (0 = normals only)
    min_size: int = 10  # segments under this many graph nodes merge along their lightest edge (Segmentator 20)

    def __post_init__(self) -> None:
        bad = [name for name, ok in (("voxel", self.voxel >= 0), ("k_neighbors", self.k_neighbors >= 1),
                                     ("max_edge", self.max_edge > 0), ("k_thresh", self.k_thresh >= 0),
                                     ("color_weight", self.color_weight >= 0), ("min_size", self.min_size >= 1))
               if not ok]
        if bad:
            raise ConfigError(f"superpoints: out-of-range setting(s) {', '.join(bad)} ({asdict(self)})",
                              fix="voxel >= 0, k_neighbors >= 1, max_edge > 0, k_thresh >= 0, color_weight >= 0, "
                                  "min_size >= 1")


def coord_digest(coord: np.ndarray) -> str:
    """sha256 of the cloud's float32 coordinates: identifies the cloud a superpoint array belongs to."""
    return hashlib.sha256(np.ascontiguousarray(coord, dtype=np.float32).tobytes()).hexdigest()


def _union_find_segments():  # type: ignore[no-untyped-def]
    """The compiled FH merge (built on first use: importing gcseg must not pay numba's start-up)."""
    import numba

    @numba.njit(cache=True)
    def find(parent, x):  # type: ignore[no-untyped-def]
        r = x
        while parent[r] != r:
            r = parent[r]
        while parent[x] != r:  # path compression
            nx = parent[x]
            parent[x] = r
            x = nx
        return r

    @numba.njit(cache=True)
    def segment(n, a, b, w, k, min_size):  # type: ignore[no-untyped-def]
        """Edges (a, b, w) sorted by weight; returns each node's root."""
        parent = np.arange(n)
        size = np.ones(n, np.int64)
        thr = np.full(n, k)  # Int(C) + k / |C|, Int of a single node = 0
        for e in range(a.shape[0]):
            x = find(parent, a[e])
            y = find(parent, b[e])
            if x != y and w[e] <= thr[x] and w[e] <= thr[y]:
                if size[x] < size[y]:
                    x, y = y, x
                parent[y] = x
                size[x] += size[y]
                thr[x] = w[e] + k / size[x]  # edges come in increasing order: w is the new Int(C)
        for e in range(a.shape[0]):  # Segmentator: merge small segments along their lightest edges
            x = find(parent, a[e])
            y = find(parent, b[e])
            if x != y and (size[x] < min_size or size[y] < min_size):
                if size[x] < size[y]:
                    x, y = y, x
                parent[y] = x
                size[x] += size[y]
        out = np.empty(n, np.int64)
        for i in range(n):
            out[i] = find(parent, i)
        return out

    return segment


_SEGMENT = None


def felzenszwalb_graph(num_nodes: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, *, k_thresh: float,
                       min_size: int) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segmentation of a weighted graph -> segment id per node (0..S-1, in order of
    first occurrence). Edges (a[e], b[e]) with weight w[e]; ties are processed in edge order (stable)."""
    global _SEGMENT
    if _SEGMENT is None:
        _SEGMENT = _union_find_segments()
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    w = np.asarray(w, np.float64)
    if not (a.shape == b.shape == w.shape) or a.ndim != 1:
        raise InputError(f"edge arrays disagree: {a.shape}, {b.shape}, {w.shape}")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= num_nodes):
        raise InputError(f"edge endpoints out of range 0..{num_nodes - 1}")
    if not np.isfinite(w).all():
        raise InputError("edge weights contain NaN or inf")
    order = np.argsort(w, kind="stable")
    roots = _SEGMENT(int(num_nodes), a[order], b[order], w[order], float(k_thresh), int(min_size))
    return first_occurrence_ids(roots)


def first_occurrence_ids(labels: np.ndarray) -> np.ndarray:
    """Relabel to 0..S-1 in order of first occurrence (deterministic, independent of the input's values)."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.reshape(-1)].astype(np.int32)


def _voxel_nodes(coord: np.ndarray, color: np.ndarray, voxel: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(node coords = voxel means, node colours = voxel means, node of each point)."""
    if voxel <= 0:
        return coord, color.astype(np.float32), np.arange(len(coord))
    keys = np.floor(coord / voxel).astype(np.int64)
    keys -= keys.min(0)
    span = keys.max(0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, inv = np.unique(flat, return_inverse=True)
    inv = inv.reshape(-1)
    count = np.bincount(inv).astype(np.float64)[:, None]
    xyz = np.stack([np.bincount(inv, coord[:, i]) for i in range(3)], 1) / count
    rgb = np.stack([np.bincount(inv, color[:, i].astype(np.float64)) for i in range(3)], 1) / count
    return xyz, rgb.astype(np.float32), inv


def knn_graph(xyz: np.ndarray, k: int, max_edge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, neighbour indices [N, k+1] incl. self): the kNN edges of every node within max_edge metres."""
    from scipy.spatial import cKDTree

    kk = min(k + 1, len(xyz))
    dist, nbr = cKDTree(xyz).query(xyz, k=kk)
    dist, nbr = dist.reshape(len(xyz), kk), nbr.reshape(len(xyz), kk)
    src = np.repeat(np.arange(len(xyz)), kk - 1)
    dst = nbr[:, 1:].reshape(-1)
    keep = dist[:, 1:].reshape(-1) <= max_edge
    # both directions of a mutual pair stay: FH decides a repeated edge the same way twice (no effect)
    return src[keep], dst[keep], nbr


def pca_normals(xyz: np.ndarray, nbr: np.ndarray) -> np.ndarray:
    """Unit normal per node: the smallest principal axis of its neighbourhood (sign arbitrary)."""
    p = xyz[nbr]
    p = p - p.mean(1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", p, p)
    return np.linalg.eigh(cov)[1][:, :, 0]


def compute_superpoints(coord: np.ndarray, color: np.ndarray | None, cfg: SuperpointConfig = SuperpointConfig()
                        ) -> np.ndarray:
    """Superpoint id per point (int32 (N,), ids 0..S-1 by first occurrence). See the module docstring.

    Raises InputError for an empty, malformed or non-finite cloud."""
    coord = np.asarray(coord)
    if coord.ndim != 2 or coord.shape[1] != 3:
        raise InputError(f"superpoints need coordinates (N, 3), got {coord.shape}")
    if len(coord) == 0:
        raise InputError("superpoints of an empty point cloud", fix="check the scene's reference cloud / keyframe")
    if not np.isfinite(coord).all():
        raise InputError("point coordinates contain NaN or inf", fix="drop invalid depth before segmenting")
    if color is None:
        color = np.zeros_like(coord, dtype=np.uint8)
    color = np.asarray(color)
    if color.shape != coord.shape:
        raise InputError(f"colour {color.shape} does not match coordinates {coord.shape}",
                         fix="one RGB triple per point")
    xyz, rgb, node = _voxel_nodes(coord.astype(np.float64), color, cfg.voxel)
    if len(xyz) == 1:
        return np.zeros(len(coord), np.int32)
    a, b, nbr = knn_graph(xyz, cfg.k_neighbors, cfg.max_edge)
    normal = pca_normals(xyz, nbr)
    w = 1.0 - np.abs(np.einsum("ij,ij->i", normal[a], normal[b]))
    if cfg.color_weight:
        dc = rgb[a] - rgb[b]
        w = w + cfg.color_weight * np.sqrt(np.einsum("ij,ij->i", dc, dc)) / (255.0 * np.sqrt(3.0))
    seg = felzenszwalb_graph(len(xyz), a, b, w, k_thresh=cfg.k_thresh, min_size=cfg.min_size)
    return first_occurrence_ids(seg[node])


def scannet_segments(seg_indices: np.ndarray) -> np.ndarray:
    """ScanNet's segs.json ``segIndices`` (one segment id per mesh vertex) as superpoint ids 0..S-1."""
    seg = np.asarray(seg_indices)
    if seg.ndim != 1 or not np.issubdtype(seg.dtype, np.integer):
        raise InputError(f"segIndices must be a 1-D integer array, got {seg.dtype} {seg.shape}")
    return first_occurrence_ids(seg)


def write_superpoints(path: str | Path, scene_id: str, samples: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                      method: str, config: Mapping[str, Any]) -> None:
    """One scene's superpoints: samples = name -> (coord (N, 3), superpoint (N,)). Atomic, deterministic."""
    from gcseg.io.h5 import write_h5

    tree: dict[str, Any] = {"samples": {}}
    for name, (coord, sp) in samples.items():
        sp = np.asarray(sp, np.int32)
        if sp.shape != (len(coord),):
            raise InputError(f"sample {name}: {sp.shape[0]} superpoint ids for {len(coord)} points")
        tree["samples"][name] = {"superpoint": sp, "coord_digest": coord_digest(coord)}
    write_h5(path, tree, schema=SCHEMA, version=SCHEMA_VERSION,
             attrs={"scene_id": scene_id, "method": method, "config": json.dumps(dict(config), sort_keys=True)})


def read_superpoints(path: str | Path, name: str, coord: np.ndarray | None = None) -> np.ndarray:
    """Superpoint ids of sample `name` in a superpoints file; with `coord`, checked to belong to that cloud."""
    from gcseg.io.h5 import open_h5

    with open_h5(path, schema=SCHEMA, version=SCHEMA_VERSION) as f:
        if f"samples/{name}/superpoint" not in f:
            raise ArtifactError(f"no superpoints for sample {name!r}", path=path,
                                fix="rerun the superpoints stage on the current clouds")
        sp = f[f"samples/{name}/superpoint"][()].astype(np.int64)
        digest = f[f"samples/{name}/coord_digest"][()]
    digest = digest.decode() if isinstance(digest, bytes) else str(digest)
    if coord is not None and (len(coord) != len(sp) or coord_digest(coord) != digest):
        raise ArtifactError(f"superpoints of sample {name!r} were made on another cloud ({len(sp)} points, "
                            f"this one has {len(coord)})", path=path,
                            fix="rerun the superpoints stage (`dvc repro superpoints`)")
    return sp


def config_dict(cfg: SuperpointConfig) -> dict[str, Any]:
    return asdict(cfg)
