"""Point cloud -> sparse voxels (unique, deterministically sorted) and per-voxel feature pooling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gcseg.errors import ConfigError, InputError
from gcseg.ids import compact_ids


@dataclass(frozen=True)
class Voxels:
    """Occupied voxels of a (batched) point cloud.

    ``coords`` LongTensor[V, 4] = (batch, x, y, z) with x, y, z = floor(point / voxel_size); unique, sorted
    lexicographically. ``inverse`` LongTensor[N]: voxel row of each point.
    """

    coords: Tensor
    inverse: Tensor

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])


def voxelize(coord: Tensor, voxel_size: float, batch: Tensor | None = None) -> Voxels:
    """Quantise points ``coord`` Tensor[N, 3] (metres) into voxels of edge ``voxel_size``.

    ``batch`` LongTensor[N] gives each point's batch item (None: all 0). Raises InputError on an empty or
    non-finite cloud, ConfigError on a non-positive voxel size.
    """
    if not (voxel_size > 0):
        raise ConfigError(f"voxel_size must be > 0, got {voxel_size}", fix="use e.g. 0.02 (metres)")
    if coord.dim() != 2 or coord.shape[1] != 3:
        raise InputError(f"point coordinates must be (N, 3), got {tuple(coord.shape)}")
    if coord.shape[0] == 0:
        raise InputError("the point cloud is empty (0 points)",
                         fix="check the scene / crop: it must contain at least one valid point")
    if not bool(torch.isfinite(coord).all()):
        raise InputError("point coordinates contain inf/nan", fix="drop invalid points (depth 0 or inf) first")
    n = coord.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.int64, device=coord.device)
    elif batch.shape != (n,) or batch.dtype != torch.int64:
        raise InputError(f"batch must be a LongTensor of shape ({n},), got {batch.dtype} {tuple(batch.shape)}")
    elif n and int(batch.min()) < 0:
        raise InputError("batch ids must be >= 0")
    # float64 division: float32 rounding can move points that sit exactly on a voxel face
    grid = torch.floor(coord.double() / voxel_size).to(torch.int64)
    full = torch.cat([batch.unsqueeze(1), grid], dim=1)
    lo = full.min(dim=0).values
    span = (full.max(dim=0).values - lo + 1).tolist()
    if span[0] * span[1] * span[2] * span[3] >= 2**62:
        raise InputError(f"point cloud spans too many voxels ({span[1:]}) for voxel size {voxel_size}",
                         fix="check the coordinate units (metres) and the voxel size")
    mult = torch.tensor([span[1] * span[2] * span[3], span[2] * span[3], span[3], 1], device=coord.device)
    keys = ((full - lo) * mult).sum(dim=1)  # lexicographic (batch, x, y, z) order
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    coords = torch.empty((uniq.shape[0], 4), dtype=torch.int64, device=coord.device)
    coords[inverse] = full  # all points of a voxel write the same row
    return Voxels(coords=coords, inverse=inverse)


def scatter_mean(feat: Tensor, inverse: Tensor, num_voxels: int) -> Tensor:
    """Mean of point features ``feat`` [N, C] per voxel -> [num_voxels, C] (differentiable)."""
    if feat.shape[0] != inverse.shape[0]:
        raise InputError(f"{feat.shape[0]} feature rows for {inverse.shape[0]} points")
    total = feat.new_zeros((num_voxels, *feat.shape[1:])).index_add(0, inverse, feat)
    count = torch.bincount(inverse, minlength=num_voxels).clamp_(min=1).to(feat.dtype)
    return total / count.view(-1, *([1] * (feat.dim() - 1)))


def superpoint_pool(point_sp: np.ndarray, inverse: np.ndarray, coord: np.ndarray, voxel_size: float,
                    num_voxels: int) -> tuple[tuple[Tensor, Tensor, Tensor, int, Tensor, Tensor], np.ndarray]:
    """One scene's superpoint pooling (the fields of gcseg.models.decoder.SuperpointPool for that scene).

    point_sp int [N] superpoint per point (ids 0..S-1), inverse int [N] voxel row per point, coord float [N, 3]
    metres (the coordinates that were voxelised). Returns ((pair_sp, pair_vox, pair_w, S, centroid [S, 3] in
    voxel units, voxel_sp [V]), compact superpoint id per point [N])."""
    point_sp = np.asarray(point_sp, np.int64)
    inverse = np.asarray(inverse, np.int64)
    if point_sp.shape != inverse.shape:
        raise InputError(f"{point_sp.shape[0]} superpoint ids for {inverse.shape[0]} points",
                         fix="the superpoints must belong to this cloud (rerun the superpoints stage)")
    if len(point_sp) == 0 or point_sp.min() < 0:
        raise InputError("superpoint ids must be >= 0 and the cloud non-empty")
    sp = compact_ids(point_sp)  # a crop may keep a subset of the superpoints
    s = int(sp.max()) + 1
    key = sp * num_voxels + inverse
    uk, cnt = np.unique(key, return_counts=True)
    pair_sp, pair_vox = uk // num_voxels, uk % num_voxels
    sp_count = np.bincount(sp, minlength=s)
    pair_w = cnt / sp_count[pair_sp]
    # majority superpoint of every voxel: pairs sorted by voxel, count descending, superpoint ascending
    order = np.lexsort((pair_sp, -cnt, pair_vox))
    first = np.ones(len(order), bool)
    first[1:] = pair_vox[order][1:] != pair_vox[order][:-1]
    voxel_sp = np.zeros(num_voxels, np.int64)
    voxel_sp[pair_vox[order][first]] = pair_sp[order][first]
    c = np.asarray(coord, np.float64) / voxel_size
    centroid = np.stack([np.bincount(sp, c[:, i], minlength=s) for i in range(3)], 1) / sp_count[:, None]
    return (torch.from_numpy(pair_sp), torch.from_numpy(pair_vox), torch.from_numpy(pair_w.astype(np.float32)), s,
            torch.from_numpy(centroid.astype(np.float32)), torch.from_numpy(voxel_sp)), sp


def superpoint_labels(sp: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Majority label of every superpoint's points (-1 = unlabelled counts as a label; ties -> unlabelled,
    then the smaller id). sp int [N] compact ids 0..S-1, labels int [N] (-1 unlabelled) -> int64 [S]."""
    sp = np.asarray(sp, np.int64)
    lab = np.asarray(labels, np.int64) + 1
    s = int(sp.max()) + 1
    k = int(lab.max()) + 1
    cnt = np.bincount(sp * k + lab, minlength=s * k).reshape(s, k)
    return cnt.argmax(1) - 1
