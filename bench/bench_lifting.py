"""Lifting + voting throughput: N posed 640x480 frames of a box room (walls tiled into 0.5 m "objects")
back-projected and voted onto a 2 cm reference cloud. Times only `VoteAccumulator.add`/`result` (frame
generation is excluded). The default point association (reference points projected into each frame, visibility
by depth), the pixel association's cached voxel path and its exact cKDTree path run side by side.
Target: 300 frames in under 10 s on 2 cores."""

from __future__ import annotations

import os
import time

import numpy as np

from gcseg.lifting import VoteAccumulator
from gcseg.scene import Frame

ROOM = np.array([[0.0, 0.0, 0.0], [5.0, 4.0, 3.0]])  # axis-aligned room, metres
TILE = 0.5  # wall tiles of this size get distinct ids; every third tile is "no object" (id 0)


def _tile_ids(p: np.ndarray) -> np.ndarray:
    """Id per surface point: wall/floor/ceiling tiles, deterministic from position."""
    face = np.argmin(np.minimum(np.abs(p - ROOM[0]), np.abs(p - ROOM[1])), axis=1)
    r = np.arange(len(p))
    side = (np.abs(p[r, face] - ROOM[1][face]) < 1e-3).astype(np.int64)
    q = np.floor(p / TILE).astype(np.int64)
    tid = ((face * 2 + side) * 64 + q[r, (face + 1) % 3]) * 64 + q[r, (face + 2) % 3] + 1
    return np.where(tid % 3 == 0, 0, tid)


def reference_cloud(spacing: float = 0.02) -> np.ndarray:
    pts = []
    lo, hi = ROOM
    for ax in range(3):
        a, b = [(ax + 1) % 3, (ax + 2) % 3]
        ga = np.arange(lo[a] + spacing / 2, hi[a], spacing)
        gb = np.arange(lo[b] + spacing / 2, hi[b], spacing)
        ua, ub = np.meshgrid(ga, gb, indexing="ij")
        for v in (lo[ax], hi[ax]):
            p = np.zeros((ua.size, 3))
            p[:, ax], p[:, a], p[:, b] = v, ua.ravel(), ub.ravel()
            pts.append(p)
    return np.concatenate(pts).astype(np.float32)


def render(rng: np.random.Generator, h: int = 480, w: int = 640, f: float = 577.0) -> tuple[Frame, np.ndarray]:
    """A random pose inside the room, ray-cast depth against the walls, tile ids."""
    k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    yaw, pitch = rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.3)
    # camera z (forward) horizontal-ish, y down (world z up)
    fwd = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
    right = np.cross(fwd, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, fwd], axis=1)
    pose[:3, 3] = rng.uniform(ROOM[0] + 0.8, ROOM[1] - 0.8)
    v, u = np.mgrid[0:h, 0:w]
    rays_c = np.stack([(u - k[0, 2]) / f, (v - k[1, 2]) / f, np.ones((h, w))], -1).reshape(-1, 3)
    d = rays_c @ pose[:3, :3].T
    o = pose[:3, 3]
    with np.errstate(divide="ignore"):
        t = np.where(d > 0, (ROOM[1] - o) / d, (ROOM[0] - o) / d)
    t = np.nan_to_num(t, nan=np.inf, posinf=np.inf).min(1)  # ray parameter at the first wall (z_cam = t)
    hit = o + d * t[:, None]
    depth = t.astype(np.float32).reshape(h, w)
    depth[(u % 97 == 0)] = 0  # a few invalid columns, as real sensors have
    ids = _tile_ids(hit).reshape(h, w).astype(np.int32)
    frame = Frame(index=0, color=np.zeros((h, w, 3), np.uint8), depth=depth, intrinsics=k, pose=pose)
    return frame, ids


def _time_votes(ref: np.ndarray, n: int, seed: int, **kw) -> tuple[float, float, np.ndarray]:
    """(wall s, CPU s of this process, result) for n frames; CPU time is the fairer figure on a shared machine."""
    rng = np.random.default_rng(seed)
    acc = VoteAccumulator(ref, max_dist=0.05, **kw)
    wall = cpu = 0.0
    for _ in range(n):
        frame, ids = render(rng)
        t0, c0 = time.perf_counter(), time.process_time()
        acc.add(frame, ids)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    out = acc.result(min_share=0.5, min_points=100)
    return wall + time.perf_counter() - t0, cpu + time.process_time() - c0, out


def run(quick: bool) -> dict[str, float | int | str]:
    """Voxel (fast) path on all frames; the exact path on the first `n_exact` of the same frames (it is several
    times slower), compared on those frames."""
    n, n_exact = (4, 2) if quick else (300, 30)
    ref = reference_cloud()
    gt = _tile_ids(ref.astype(np.float64))
    w_pt, c_pt, out_pt = _time_votes(ref, n, 0, association="point")
    w_vox, c_vox, out_vox = _time_votes(ref, n, 0, voxel=0.01, workers=2)
    w_ex, c_ex, out_ex = _time_votes(ref, n_exact, 0, voxel=None, workers=2)
    w_vs, c_vs, out_vs = (w_vox, c_vox, out_vox) if n == n_exact else _time_votes(ref, n_exact, 0, voxel=0.01, workers=2)
    seen = out_vox >= 0
    seen_pt = out_pt >= 0
    return {
        "frames": n, "image": "640x480", "reference_points": int(ref.shape[0]),
        "point_wall_s": round(w_pt, 3), "point_cpu_s": round(c_pt, 3), "point_frames_per_wall_s": round(n / w_pt, 1),
        "point_labelled_fraction": round(float(seen_pt.mean()), 4),
        "point_accuracy_on_labelled": round(float((out_pt[seen_pt] == gt[seen_pt]).mean()), 4) if seen_pt.any() else 0.0,
        "point_over_voxel_cpu": round(c_pt / max(c_vox, 1e-9), 2),
        "voxel_0.01_wall_s": round(w_vox, 3), "voxel_0.01_cpu_s": round(c_vox, 3),
        "voxel_frames_per_wall_s": round(n / w_vox, 1),
        "exact_frames": n_exact, "exact_wall_s": round(w_ex, 3), "exact_cpu_s": round(c_ex, 3),
        "exact_over_voxel_cpu_same_frames": round(c_ex / max(c_vs, 1e-9), 2),
        "labelled_fraction": round(float(seen.mean()), 4),
        "voxel_accuracy_on_labelled": round(float((out_vox[seen] == gt[seen]).mean()), 4) if seen.any() else 0.0,
        "voxel_agrees_with_exact_same_frames": round(float((out_vs == out_ex).mean()), 4),
        "load_average_1min": round(os.getloadavg()[0], 2),  # context: CPU times inflate on a busy machine
        "target": "300 frames < 10 s on 2 cores (point path = default, and voxel path)",
    }


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(run("--quick" in sys.argv), indent=1))
