"""Which way is up in a scan's world frame: ScanNet and gcseg's synthetic rooms have z up, HoloLens and ARKit
captures y up. Hand-held and head-mounted cameras are held upright (no roll), so their x axes are horizontal:
when the cameras look in several directions the up direction is the normal of the plane their x axes span;
otherwise it is the mean of the cameras' "up" axes (minus the OpenCV camera y axis, which points down in the
image). Near a world axis it is snapped to it, so an axis-aligned world is only permuted (z-up scenes stay
exactly as they are). `scene_up` serves the pictures (3D views, previews), `proposer_up` the rgbd proposer's
starting axis (gcseg.proposals.rgbd.geometry.world_up)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gcseg.errors import GcsegError

Z_UP = np.array([0.0, 0.0, 1.0])


def _roll_free_up(xs: np.ndarray, mean_up: np.ndarray) -> np.ndarray | None:
    """The normal of the plane the cameras' x axes `xs` (n, 3) span, on `mean_up`'s side; None when they do not
    span one (all cameras facing one way: under ~30 degrees of heading spread, or rolled every which way)."""
    ev, vec = np.linalg.eigh(xs.T @ xs / len(xs))  # ascending
    if not np.isfinite(ev).all() or ev[1] < 0.02 or ev[0] > 0.25 * ev[1]:
        return None
    n = vec[:, 0] * (1.0 if vec[:, 0] @ mean_up >= 0 else -1.0)
    if n @ mean_up < np.cos(np.radians(80.0)):  # cameras would be pitched past 80 degrees on average: no
        return None
    return n / np.linalg.norm(n)


def estimate_up(poses: Iterable[np.ndarray], *, snap_deg: float = 25.0) -> np.ndarray | None:
    """Unit up vector of the world from camera-to-world poses (OpenCV camera axes), snapped to the nearest signed
    world axis within `snap_deg` degrees; None when the poses give no evidence (no finite poses, cameras pointing
    every which way). The cameras' x axes are horizontal (no roll): when they span a plane (the cameras look in
    several directions) up is its normal, which stays right however steeply they look down; else up is minus
    the mean camera y axis (biased towards where the cameras look when they are pitched)."""
    rs = [r for r in (np.asarray(p, np.float64)[:3, :3] for p in poses) if np.isfinite(r).all()]  # lost tracking
    if not rs:
        return None
    up = -np.mean([r[:, 1] for r in rs], axis=0)
    norm = float(np.linalg.norm(up))
    if not np.isfinite(norm) or norm < 0.2:  # cameras pointing every which way: no evidence
        return None
    up = up / norm
    plane = _roll_free_up(np.array([r[:, 0] for r in rs]), up)
    if plane is not None:
        up = plane
    axis = int(np.argmax(np.abs(up)))
    if np.degrees(np.arccos(min(1.0, abs(up[axis])))) <= snap_deg:
        snapped = np.zeros(3)
        snapped[axis] = np.sign(up[axis])
        return snapped
    return up


def up_from_poses(poses: Iterable[np.ndarray], *, snap_deg: float = 25.0) -> np.ndarray:
    """`estimate_up`, z when it is undetermined."""
    up = estimate_up(poses, snap_deg=snap_deg)
    return Z_UP.copy() if up is None else up


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


def _sample_poses(scene: object, max_frames: int) -> list[np.ndarray] | None:
    """Poses of up to `max_frames` evenly spaced frames; None when there are none or they cannot be read."""
    n = int(getattr(scene, "num_frames", 0))
    if n < 1:
        return None
    idx = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    try:
        return [scene.frame(int(i)).pose for i in idx]  # type: ignore[attr-defined]
    except (GcsegError, OSError, ValueError, IndexError):
        return None


def scene_up(scene: object, *, max_frames: int = 24) -> np.ndarray:
    """Up vector of a gcseg.scene.Scene from the poses of up to `max_frames` evenly spaced frames; z when the
    frames cannot be read (a picture must not fail because of one bad frame)."""
    poses = _sample_poses(scene, max_frames)
    return Z_UP.copy() if poses is None else up_from_poses(poses)


def proposer_up(scene: object, *, max_frames: int = 24, snap_deg: float = 45.0) -> np.ndarray | None:
    """The rgbd proposer's scene-level up (gcseg.proposals.rgbd.RgbdProposer.for_scene): `estimate_up` of up to
    `max_frames` evenly spaced frames, snapped to the nearest world axis within 45 degrees (the tolerance of
    the proposer's per-frame rule, which the horizontal surfaces then refine); None (each frame's own rule)
    when the poses give no evidence or cannot be read."""
    poses = _sample_poses(scene, max_frames)
    return None if poses is None else estimate_up(poses, snap_deg=snap_deg)


def to_upright(coord: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Points rotated into the upright (z-up) frame; the same array when the rotation is the identity."""
    if np.array_equal(rotation, np.eye(3)):
        return coord
    return (np.asarray(coord, np.float64) @ rotation.T).astype(np.asarray(coord).dtype)
