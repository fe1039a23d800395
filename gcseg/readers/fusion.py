"""Reference cloud from depth when a scene has no mesh: streaming voxel fusion with bounded memory."""

from __future__ import annotations

import numpy as np

from gcseg.geometry import backproject
from gcseg.scene import PointCloud, Scene

_BITS = 21  # per axis: +-2^20 voxels (+-26 km at 2.5 cm), three axes packed into one int64
_OFF = 1 << (_BITS - 1)


def pack_voxel_keys(points: np.ndarray, voxel: float) -> np.ndarray:
    """One int64 per point: its voxel's (i, j, k) packed; equal keys <=> same voxel."""
    q = np.floor(points.astype(np.float64) / voxel).astype(np.int64) + _OFF
    q = np.clip(q, 0, (1 << _BITS) - 1)
    return (q[:, 0] << (2 * _BITS)) | (q[:, 1] << _BITS) | q[:, 2]


def fuse_reference(scene: Scene, *, every: int = 10, voxel: float = 0.025, max_depth: float = 0.0) -> PointCloud:
    """Back-project every `every`-th frame, keep one point per `voxel` cell (the first observation: colour and,
    where the frames carry GT, instance id). Memory grows with the scanned surface, not with the frame count.
    `max_depth` > 0 ignores farther (noisier) depth. Output sorted by voxel key (deterministic)."""
    keys = np.zeros(0, np.int64)
    coord = np.zeros((0, 3), np.float32)
    color = np.zeros((0, 3), np.uint8)
    inst = np.zeros(0, np.int32)
    has_inst = False
    for i in range(0, scene.num_frames, max(1, int(every))):
        fr = scene.frame(i)
        depth = fr.depth if max_depth <= 0 else np.where(fr.depth <= max_depth, fr.depth, 0).astype(np.float32)
        pts, idx = backproject(depth, fr.intrinsics, fr.pose)
        if pts.shape[0] == 0:
            continue
        k = pack_voxel_keys(pts, voxel)
        k_u, first = np.unique(k, return_index=True)
        if keys.size:
            pos = np.searchsorted(keys, k_u).clip(max=keys.size - 1)
            new = keys[pos] != k_u
            k_u, first = k_u[new], first[new]
        if k_u.size == 0:
            continue
        fi = inst_frame = None
        if fr.instance is not None:
            has_inst = True
            inst_frame = fr.instance.reshape(-1)[idx[first]].astype(np.int32)
        fi = inst_frame if inst_frame is not None else np.zeros(k_u.size, np.int32)
        keys = np.concatenate([keys, k_u])
        coord = np.concatenate([coord, pts[first]])
        color = np.concatenate([color, fr.color.reshape(-1, 3)[idx[first]]])
        inst = np.concatenate([inst, fi])
        order = np.argsort(keys, kind="stable")
        keys, coord, color, inst = keys[order], coord[order], color[order], inst[order]
    return PointCloud(coord=coord, color=color, instance=inst if has_inst else None)
