"""A small analytic scene with known answers for the training-free baselines: boxes on a floor, ray-cast exactly
(depth, GT instance and part ids) from 8 views all around, so that every view sees other faces of each object.

Objects: A = a table (top part 21 + a leg part 22, instance 2), B = a box touching A's leg (instance 3), C = a box
on its own (instance 4); the floor is void (0). The reference cloud is every view's pixels back-projected and
thinned to 2 cm, with GT instance and part ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from gcseg.geometry import backproject, voxel_downsample
from gcseg.scene import Frame

H, W = 72, 96
K = np.array([[80.0, 0, (W - 1) / 2], [0, 80.0, (H - 1) / 2], [0, 0, 1]])
# (min xyz, max xyz, instance, part), metres, world z up
BOXES = [
    (np.array([-0.70, -0.30, 0.35]), np.array([-0.10, 0.25, 0.42]), 2, 21),  # A: table top
    (np.array([-0.22, -0.30, 0.00]), np.array([-0.10, -0.18, 0.35]), 2, 22),  # A: leg under the top's corner
    (np.array([-0.10, -0.34, 0.00]), np.array([0.20, -0.04, 0.26]), 3, 31),  # B: touches the leg at x = -0.10
    (np.array([0.35, 0.25, 0.00]), np.array([0.70, 0.60, 0.30]), 4, 41),  # C: alone
]
NUM_VIEWS = 8


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world pose, OpenCV axes (x right, y down, z forward), world z up."""
    f = (target - eye) / np.linalg.norm(target - eye)
    r = np.cross(f, [0, 0, 1.0])
    r /= np.linalg.norm(r)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([r, np.cross(f, r), f], axis=1)
    pose[:3, 3] = eye
    return pose


def render(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact z-depth, instance and part ids per pixel by ray casting (floor: instance 0, part 0)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    dc = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1).reshape(-1, 3)
    d = dc @ pose[:3, :3].T
    o = pose[:3, 3]
    best = np.full(len(d), np.inf)
    inst = np.zeros(len(d), np.int32)
    part = np.zeros(len(d), np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -o[2] / d[:, 2]
        hit = (t > 0) & np.isfinite(t)
        best[hit] = t[hit]
        for lo, hi, i, p in BOXES:
            t1, t2 = (lo - o) / d, (hi - o) / d
            tmin = np.nanmax(np.minimum(t1, t2), axis=1)
            tmax = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (tmax >= tmin) & (tmin > 0) & (tmin < best)
            best[hit], inst[hit], part[hit] = tmin[hit], i, p
    depth = np.where(np.isfinite(best) & (best < 10), best, 0).astype(np.float32)
    return depth.reshape(H, W), inst.reshape(H, W), part.reshape(H, W)


@dataclass(frozen=True)
class BoxScene:
    frames: list[Frame]
    coord: np.ndarray  # float32 (N, 3)
    instance: np.ndarray  # int64 (N,) GT instance (0 = floor)
    part: np.ndarray  # int64 (N,)

    def superpoints(self, cell: float = 0.08) -> np.ndarray:
        """A part-respecting oversegmentation (GT part x `cell` grid cell), as a geometric segmenter gives on
        boxes (faces and creases), so that the tests judge the region growing, not the superpoints."""
        c = np.floor(self.coord / cell).astype(np.int64)
        _, ids = np.unique(np.column_stack([self.part, c]), axis=0, return_inverse=True)
        return ids.reshape(-1).astype(np.int64)


def make_box_scene() -> BoxScene:
    """The scene (see the module doc)."""
    frames, pts, inst, part = [], [], [], []
    for i, a in enumerate(np.linspace(0, 2 * np.pi, NUM_VIEWS, endpoint=False) + 0.3):
        pose = look_at(np.array([1.9 * np.cos(a), 1.9 * np.sin(a), 1.4]), np.array([0.0, 0.1, 0.15]))
        depth, ins, prt = render(pose)
        color = np.full((H, W, 3), 100, np.uint8)
        frames.append(Frame(index=i, color=color, depth=depth, intrinsics=K.copy(), pose=pose, instance=ins,
                            part=prt, name=str(i)))
        p, idx = backproject(depth, K, pose)
        pts.append(p)
        inst.append(ins.reshape(-1)[idx])
        part.append(prt.reshape(-1)[idx])
    p = np.concatenate(pts)
    keep = np.sort(voxel_downsample(p, 0.02))
    keep = keep[np.abs(p[keep, :2]).max(1) < 1.0]  # the floor only near the objects
    return BoxScene(frames=frames, coord=p[keep].astype(np.float32),
                    instance=np.concatenate(inst)[keep].astype(np.int64),
                    part=np.concatenate(part)[keep].astype(np.int64))


@pytest.fixture(scope="session")
def box_scene() -> BoxScene:
    return make_box_scene()


def part_views(scene: BoxScene, split: tuple[int, ...] = (), leg_with_b: tuple[int, ...] = ()) -> list:
    """(frame, id map) per view: the GT instance masks, except that in the views `split` the table comes as its
    two parts (top, leg) and in the views `leg_with_b` the leg and box B form one mask (an under-segmentation
    across objects) while the top keeps its own."""
    out = []
    for f in scene.frames:
        ids = f.instance.astype(np.int64).copy()
        if f.index in split or f.index in leg_with_b:
            ids[f.part == 22] = 22
        if f.index in leg_with_b:
            ids[f.part == 31] = 22
        out.append((f, ids))
    return out


def best_iou(masks: np.ndarray, target: np.ndarray) -> tuple[int, float]:
    """(index, IoU) of the mask (K, N) that overlaps the bool target (N,) best; (-1, 0) if there is none."""
    if masks.shape[0] == 0:
        return -1, 0.0
    inter = (masks & target).sum(1)
    iou = inter / np.maximum(masks.sum(1) + target.sum() - inter, 1)
    k = int(iou.argmax())
    return k, float(iou[k])


@pytest.fixture(scope="session")
def views_of():
    """part_views as a fixture (tests import nothing from conftest under --import-mode=importlib)."""
    return part_views


@pytest.fixture(scope="session")
def match():
    """best_iou as a fixture."""
    return best_iou
