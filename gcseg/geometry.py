"""Camera geometry: back-projection, projection, pose checks. Vectorised numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcseg.errors import InputError


def check_pose(pose: np.ndarray, path: str | Path | None = None, tol: float = 1e-3) -> np.ndarray:
    """Validate a 4x4 camera-to-world pose: finite, last row (0,0,0,1), rotation orthonormal with det +1."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (4, 4):
        raise InputError(f"pose must be a 4x4 matrix, got shape {pose.shape}", path=path,
                         fix="write 4 rows of 4 numbers (camera-to-world)")
    if not np.all(np.isfinite(pose)):
        raise InputError("pose has non-finite values (inf/nan)", path=path,
                         fix="drop this frame or fix the tracking; ScanNet marks lost frames with -inf")
    if not np.allclose(pose[3], [0, 0, 0, 1], atol=tol):
        raise InputError(f"pose's last row is {pose[3].tolist()}, not [0, 0, 0, 1]", path=path,
                         fix="write a homogeneous camera-to-world matrix")
    r = pose[:3, :3]
    err = np.abs(r @ r.T - np.eye(3)).max()
    if err > 1e-2 or abs(np.linalg.det(r) - 1.0) > 1e-2:
        raise InputError(f"pose is not rigid (|R R^T - I| = {err:.3g}, det R = {np.linalg.det(r):.3g})", path=path,
                         fix="poses must be rotations + translations (no scale, shear or reflection)")
    return pose


def backproject(depth: np.ndarray, intrinsics: np.ndarray, pose: np.ndarray | None = None,
                mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Back-project valid depth pixels (optionally restricted to `mask`) to 3D.

    Returns (points float32 (M, 3) in world if pose is given else camera frame, flat pixel indices int64 (M,)).
    """
    h, w = depth.shape
    valid = depth > 0
    if mask is not None:
        valid &= mask
    idx = np.flatnonzero(valid)
    z = depth.reshape(-1)[idx].astype(np.float64)
    u = (idx % w).astype(np.float64)
    v = (idx // w).astype(np.float64)
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    pts = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)
    if pose is not None:
        pts = pts @ pose[:3, :3].T + pose[:3, 3]
    return pts.astype(np.float32), idx.astype(np.int64)


def project(points: np.ndarray, intrinsics: np.ndarray, pose: np.ndarray, hw: tuple[int, int]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project world points into a camera. Returns (u int64, v int64, z float32, in_view bool) per point;
    u, v are nearest pixel indices (valid only where in_view, -1 behind the camera).

    One float32 matmul with P = K [R | t] (the rows give u z, v z and z per point): the hot loop of point-association
    lifting, which projects every reference point into every frame; float32 keeps sub-millimetre accuracy at room
    scale."""
    w2c = np.linalg.inv(np.asarray(pose, np.float64))
    proj = (np.asarray(intrinsics, np.float64) @ w2c[:3]).astype(np.float32)
    uvz = np.asarray(points, np.float32) @ proj[:, :3].T
    uvz += proj[:, 3]
    z = np.ascontiguousarray(uvz[:, 2])
    front = z > 1e-6
    u = np.full(z.shape, -1, np.int64)
    v = np.full(z.shape, -1, np.int64)
    zf = z[front]
    u[front] = np.floor(uvz[front, 0] / zf + 0.5)
    v[front] = np.floor(uvz[front, 1] / zf + 0.5)
    h, w = hw
    in_view = front & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    return u, v, z, in_view


def scale_intrinsics(k: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """K for an image resized from src_hw to dst_hw (pixel-centre convention)."""
    sy = dst_hw[0] / src_hw[0]
    sx = dst_hw[1] / src_hw[1]
    k2 = np.array(k, dtype=np.float64, copy=True)
    k2[0, 0] *= sx
    k2[1, 1] *= sy
    k2[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
    k2[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
    return k2


def voxel_downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Indices of one point per occupied voxel (the first in input order; deterministic)."""
    keys = np.floor(points / voxel).astype(np.int64)
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    # one int64 per voxel (row-major in the bounding box): 1-D unique is ~6x faster than unique(axis=0), which
    # sorts rows as opaque records; both return each voxel's first point, so the result is the same
    lo = keys.min(0)
    span = keys.max(0) - lo + 1
    if float(span[0]) * float(span[1]) * float(span[2]) < 2.0**62:
        k = keys - lo
        _, first = np.unique((k[:, 0] * span[1] + k[:, 1]) * span[2] + k[:, 2], return_index=True)
    else:  # a bounding box too large for one int64 key
        _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)


def neighbour_pairs(axis: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Index tuples (a, b) such that ``img[a]`` and ``img[b]`` are the pixel pairs adjacent along `axis`
    (1: horizontal, (H, W-1); 0: vertical, (H-1, W)) of an image ``img``."""
    a: list[slice] = [slice(None), slice(None)]
    b: list[slice] = [slice(None), slice(None)]
    a[axis], b[axis] = slice(None, -1), slice(1, None)
    return (a[0], a[1]), (b[0], b[1])
