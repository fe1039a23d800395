"""Which way is up in a scan's world frame, for pictures only (the 3D views, previews): ScanNet and gcseg's
synthetic rooms have z up, HoloLens and ARKit captures y up. Hand-held and head-mounted cameras are held upright,
so the mean of the cameras' "up" axes (minus the OpenCV camera y axis, which points down in the image) is the
world's up direction; near a world axis it is snapped to it, so an axis-aligned world is only permuted (z-up
scenes stay exactly as they are)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gcseg.errors import GcsegError

Z_UP = np.array([0.0, 0.0, 1.0])


def up_from_poses(poses: Iterable[np.ndarray], *, snap_deg: float = 25.0) -> np.ndarray:
    """Unit up vector of the world from camera-to-world poses (OpenCV camera axes): minus the mean camera y
    axis, snapped to the nearest signed world axis within `snap_deg` degrees. z when it is undetermined."""
    ys = [np.asarray(p, np.float64)[:3, 1] for p in poses]
    if not ys:
        return Z_UP.copy()
    up = -np.mean(ys, axis=0)
    norm = float(np.linalg.norm(up))
    if not np.isfinite(norm) or norm < 0.2:  # cameras pointing every which way: no evidence
        return Z_UP.copy()
    up = up / norm
    axis = int(np.argmax(np.abs(up)))
    if np.degrees(np.arccos(min(1.0, abs(up[axis])))) <= snap_deg:
        snapped = np.zeros(3)
        snapped[axis] = np.sign(up[axis])
        return snapped
    return up


def upright_rotation(up: np.ndarray) -> np.ndarray:
    """3x3 rotation taking `up` to +z (Rodrigues; exact integers for an axis, identity for +z)."""
    up = np.asarray(up, np.float64)
    up = up / np.linalg.norm(up)
    v = np.cross(up, Z_UP)
    s, c = float(np.linalg.norm(v)), float(up @ Z_UP)
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + k + k @ k * ((1.0 - c) / s**2)


def scene_up(scene: object, *, max_frames: int = 24) -> np.ndarray:
    """Up vector of a gcseg.scene.Scene from the poses of up to `max_frames` evenly spaced frames; z when the
    frames cannot be read (a picture must not fail because of one bad frame)."""
    n = int(getattr(scene, "num_frames", 0))
    if n < 1:
        return Z_UP.copy()
    idx = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    try:
        poses = [scene.frame(int(i)).pose for i in idx]  # type: ignore[attr-defined]
    except (GcsegError, OSError, ValueError, IndexError):
        return Z_UP.copy()
    return up_from_poses(poses)


def to_upright(coord: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Points rotated into the upright (z-up) frame; the same array when the rotation is the identity."""
    if np.array_equal(rotation, np.eye(3)):
        return coord
    return (np.asarray(coord, np.float64) @ rotation.T).astype(np.asarray(coord).dtype)
