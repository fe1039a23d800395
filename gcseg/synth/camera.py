"""Pinhole intrinsics and a smooth hand-held-like camera path orbiting inside the room, looking into it."""

from __future__ import annotations

import numpy as np

from gcseg.synth.layout import CameraRing


def intrinsics(height: int, width: int, hfov_deg: float) -> np.ndarray:
    """3x3 K with square pixels, horizontal field of view `hfov_deg`, principal point at the image centre
    (pixel-centre convention: pixel (u, v) is centred at integer coordinates)."""
    f = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world 4x4 (OpenCV axes: x right, y down, z forward) at `eye` looking at `target`, world +z up."""
    fwd = target - eye
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = np.cos(roll), np.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, fwd, eye
    return pose


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, dims: int, cycles: tuple[int, ...] = (1, 2, 3, 5)
                  ) -> np.ndarray:
    """Band-limited noise in [-1, 1]-ish over path parameter t in [0, 1]: a few sines with random phases, so the
    path has hand-held wobble but no frame-to-frame jumps (SAM2 tracking needs temporal coherence)."""
    out = np.zeros((t.shape[0], dims))
    for k in cycles:
        amp = rng.uniform(0.5, 1.0, size=dims) / k
        phase = rng.uniform(0, 2 * np.pi, size=dims)
        out += amp * np.sin(2 * np.pi * k * t[:, None] + phase)
    return out / sum(1.0 / k for k in cycles)


def camera_path(rng: np.random.Generator, ring: CameraRing, num_frames: int, *, orbit_degrees: float = 330.0,
                height: tuple[float, float] = (1.35, 1.65), jitter: float = 1.0) -> np.ndarray:
    """Camera-to-world poses (num_frames, 4, 4) walking along the ring ellipse, looking across the room.

    The target drifts around a point near the room centre at table height, so the view sweeps over the
    middle furniture and the far walls. `jitter` scales the hand-held wobble (0 = perfectly smooth)."""
    t = np.linspace(0.0, 1.0, num_frames)
    theta0 = rng.uniform(0, 2 * np.pi)
    direction = 1.0 if rng.uniform() < 0.5 else -1.0
    theta = theta0 + direction * np.radians(orbit_degrees) * t
    h0 = rng.uniform(*height)
    wob = _smooth_noise(rng, t, 3) * jitter
    eye = np.stack([ring.a * np.cos(theta) * (1 + 0.04 * wob[:, 0]), ring.b * np.sin(theta) * (1 + 0.04 * wob[:, 1]),
                    np.clip(h0 + 0.1 * wob[:, 2], height[0] - 0.05, height[1] + 0.1)], axis=1)
    tw = _smooth_noise(rng, t, 3) * jitter
    # look across the room through a point beyond the centre: the far side's walls and furniture fill the view
    target = np.stack([-0.25 * ring.a * np.cos(theta) + 0.35 * tw[:, 0],
                       -0.25 * ring.b * np.sin(theta) + 0.35 * tw[:, 1],
                       rng.uniform(0.55, 0.8) + 0.15 * tw[:, 2]], axis=1)
    roll = 0.03 * jitter * _smooth_noise(rng, t, 1)[:, 0]
    return np.stack([look_at(eye[i], target[i], float(roll[i])) for i in range(num_frames)])
