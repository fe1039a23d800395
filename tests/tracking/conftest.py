"""Tiny analytic RGB-D scenes for the tracking tests: axis-aligned boxes on a floor, ray-cast exactly
(depth, GT instance ids, poses), 64x48 pixels. Independent of gcseg.synth so the policy/backends are tested
against geometry we can reason about."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.geometry import backproject, voxel_downsample
from gcseg.scene import Frame, PointCloud, Scene

H, W = 48, 64
K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
BOXES = [  # (min xyz, max xyz) world metres, z up; instance ids 2, 3, 4 (floor = 1)
    (np.array([-0.6, -0.3, 0.0]), np.array([-0.2, 0.1, 0.4])),
    (np.array([0.1, -0.2, 0.0]), np.array([0.5, 0.2, 0.25])),
    (np.array([-0.1, 0.4, 0.0]), np.array([0.2, 0.7, 0.6])),
]


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world pose, OpenCV axes (x right, y down, z forward), world z up."""
    f = target - eye
    f = f / np.linalg.norm(f)
    r = np.cross(f, [0, 0, 1.0])
    r = r / np.linalg.norm(r)
    d = np.cross(f, r)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([r, d, f], axis=1)
    pose[:3, 3] = eye
    return pose


def render(pose: np.ndarray, boxes=BOXES, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """Exact z-depth and instance ids by ray casting (ray direction has camera z = 1, so t = depth)."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    dc = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1).reshape(-1, 3)
    d = dc @ pose[:3, :3].T
    o = pose[:3, 3]
    best = np.full(len(d), np.inf)
    inst = np.zeros(len(d), np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = -o[2] / d[:, 2]
        hit = (t_floor > 0) & np.isfinite(t_floor)
        best[hit], inst[hit] = t_floor[hit], 1
        for k, (lo, hi) in enumerate(boxes):
            t1, t2 = (lo - o) / d, (hi - o) / d
            tmin = np.nanmax(np.minimum(t1, t2), axis=1)
            tmax = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (tmax >= tmin) & (tmin > 0) & (tmin < best)
            best[hit], inst[hit] = tmin[hit], k + 2
    depth = np.where(np.isfinite(best) & (best < 10), best, 0).astype(np.float32)
    inst[depth == 0] = 0
    return depth.reshape(h, w), inst.reshape(h, w)


def orbit_poses(n: int, radius: float = 2.0, height: float = 1.3, sweep: float = 0.6) -> list[np.ndarray]:
    angles = np.linspace(0.0, sweep, n) - 0.3
    return [look_at(np.array([radius * np.cos(a), radius * np.sin(a), height]), np.array([0.0, 0.2, 0.15]))
            for a in angles]


def make_scene(n: int = 6, *, poses: list[np.ndarray] | None = None, boxes_per_frame=None,
               scene_id: str = "boxes") -> Scene:
    poses = poses if poses is not None else orbit_poses(n)
    n = len(poses)

    def load(i: int) -> Frame:
        boxes = boxes_per_frame(i) if boxes_per_frame else BOXES
        depth, inst = render(poses[i], boxes)
        color = np.zeros((H, W, 3), np.uint8)
        for k, c in enumerate([(90, 90, 90), (200, 40, 40), (40, 200, 40), (40, 40, 200)]):
            color[inst == k + 1] = c
        return Frame(index=i, color=color, depth=depth, intrinsics=K.copy(), pose=poses[i], instance=inst,
                     name=str(i))

    def reference() -> PointCloud:
        pts, ins = [], []
        for i in range(n):
            f = load(i)
            p, idx = backproject(f.depth, f.intrinsics, f.pose)
            pts.append(p)
            ins.append(f.instance.reshape(-1)[idx])
        p, ins_all = np.concatenate(pts), np.concatenate(ins)
        keep = voxel_downsample(p, 0.03)
        return PointCloud(coord=p[keep], color=np.full((len(keep), 3), 128, np.uint8),
                          instance=ins_all[keep].astype(np.int32))

    return Scene(scene_id=scene_id, num_frames=n, image_size=(H, W), load_frame=load, load_reference=reference,
                 source="test")


@pytest.fixture
def box_scene() -> Scene:
    return make_scene(6)
