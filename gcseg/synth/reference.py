"""The fused reference cloud: points sampled on the surfaces of the room and the objects, kept where some
frame observes them (like a reconstructed mesh covers only scanned surfaces), with GT instance + label."""

from __future__ import annotations

import numpy as np

from gcseg.scene import PointCloud
from gcseg.synth.layout import Room
from gcseg.synth.primitives import BOX, CYLINDER, PackedPrimitives
from gcseg.synth.render import shade

MAX_VIEWS = 24  # frames used for the visibility test of the reference cloud (evenly spaced)


def _grid(n: int, extent: float, rng: np.random.Generator) -> np.ndarray:
    """n jittered cell centres on [-extent, extent]."""
    cells = (np.arange(n) + 0.5 + rng.uniform(-0.3, 0.3, size=n)) / n
    return (cells * 2.0 - 1.0) * extent


def _face_grid(ea: float, eb: float, spacing: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    na = max(2, int(np.ceil(2 * ea / spacing)))
    nb = max(2, int(np.ceil(2 * eb / spacing)))
    a, b = np.meshgrid(_grid(na, ea, rng), _grid(nb, eb, rng), indexing="ij")
    return a.reshape(-1), b.reshape(-1)


def sample_primitive(packed: PackedPrimitives, i: int, spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Local-frame points (M, 3) covering primitive i's surface at about `spacing` metres."""
    hx, hy, hz = packed.half[i]
    kind = int(packed.kind[i])
    if kind == BOX:
        out = []
        for axis, (e0, e1) in enumerate([(hy, hz), (hx, hz), (hx, hy)]):
            for sign in (-1.0, 1.0):
                a, b = _face_grid(e0, e1, spacing, rng)
                p = np.empty((a.shape[0], 3))
                others = [j for j in range(3) if j != axis]
                p[:, axis] = sign * packed.half[i][axis]
                p[:, others[0]], p[:, others[1]] = a, b
                out.append(p)
        return np.concatenate(out)
    if kind == CYLINDER:
        r = hx
        nt = max(12, int(np.ceil(2 * np.pi * r / spacing)))
        nz = max(2, int(np.ceil(2 * hz / spacing)))
        th = (np.arange(nt) + rng.uniform(0, 1)) * (2 * np.pi / nt)
        z = _grid(nz, hz, rng)
        tt, zz = np.meshgrid(th, z, indexing="ij")
        side = np.stack([r * np.cos(tt).ravel(), r * np.sin(tt).ravel(), zz.ravel()], axis=1)
        step = min(spacing, r / 2)
        a, b = _face_grid(r, r, step, rng)
        inside = a * a + b * b <= r * r
        caps = [np.stack([a[inside], b[inside], np.full(int(inside.sum()), s * hz)], axis=1) for s in (-1.0, 1.0)]
        return np.concatenate([side, *caps])
    r = hx  # sphere: Fibonacci lattice
    n = max(32, int(np.ceil(4 * np.pi * r * r / spacing**2)))
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    th = np.pi * (1 + 5**0.5) * k + rng.uniform(0, 2 * np.pi)
    return r * np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], axis=1)


def _room_points(packed: PackedPrimitives, room: Room, spacing: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """World points on the inner faces of the 6 room slabs (0 floor, 1 ceiling, 2-5 walls)."""
    L, W, H = room.length / 2, room.width / 2, room.height
    pts, idx = [], []
    for slab, (fixed_axis, value, e) in enumerate([(2, 0.0, (L, W)), (2, H, (L, W)), (0, -L, (W, H / 2)),
                                                   (0, L, (W, H / 2)), (1, -W, (L, H / 2)), (1, W, (L, H / 2))]):
        a, b = _face_grid(e[0], e[1], spacing, rng)
        p = np.empty((a.shape[0], 3))
        p[:, fixed_axis] = value
        if fixed_axis == 2:
            p[:, 0], p[:, 1] = a, b
        elif fixed_axis == 0:
            p[:, 1], p[:, 2] = a, b + H / 2
        else:
            p[:, 0], p[:, 2] = a, b + H / 2
        pts.append(p)
        idx.append(np.full(a.shape[0], slab, dtype=np.int32))
    return np.concatenate(pts), np.concatenate(idx)


def _object_points(packed: PackedPrimitives, prim_ids: list[int], spacing: float, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    pts, idx = [], []
    for i in prim_ids:
        loc = sample_primitive(packed, i, spacing, rng)
        pts.append(loc @ packed.rotation[i].T + packed.center[i])
        idx.append(np.full(loc.shape[0], i, dtype=np.int32))
    return np.concatenate(pts), np.concatenate(idx)


def _inside_other(packed: PackedPrimitives, points: np.ndarray, own: np.ndarray) -> np.ndarray:
    """True for points buried inside another primitive of the same object (e.g. a cushion's bottom in the
    sofa base); such surface is never seen and would only blur the GT."""
    buried = np.zeros(points.shape[0], dtype=bool)
    for j in np.unique(own):
        inst = packed.instance[j]
        others = np.flatnonzero((packed.instance == inst) & (np.arange(len(packed)) != j))
        sel = np.flatnonzero(own == j)
        for o in others:
            loc = (points[sel] - packed.center[o]) @ packed.rotation[o]
            h = packed.half[o] - 1e-4
            if packed.kind[o] == BOX:
                inside = (np.abs(loc) < h).all(axis=1)
            elif packed.kind[o] == CYLINDER:
                inside = (loc[:, 0] ** 2 + loc[:, 1] ** 2 < h[0] ** 2) & (np.abs(loc[:, 2]) < h[2])
            else:
                inside = (loc**2).sum(axis=1) < h[0] ** 2
            buried[sel[inside]] = True
    return buried


def _visible(points: np.ndarray, instance: np.ndarray, depth: np.ndarray, gt_instance: np.ndarray,
             k: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """True for points that some frame sees: the pixel they project to shows their instance at about their
    depth (tolerance grows with depth: pixel footprint on slanted surfaces). Only points not yet seen are
    projected into each next frame, so the cost shrinks as the scan goes on."""
    seen = np.zeros(points.shape[0], dtype=bool)
    pts = points.astype(np.float32)
    h, w = depth.shape[1:]
    for f in range(poses.shape[0]):
        cand = np.flatnonzero(~seen)
        if cand.size == 0:
            break
        w2c = np.linalg.inv(poses[f]).astype(np.float32)
        pc = pts[cand] @ w2c[:3, :3].T + w2c[:3, 3]
        z = pc[:, 2]
        ok = z > 0.05
        zs = np.where(ok, z, 1.0)
        u = np.floor(k[0, 0] * pc[:, 0] / zs + k[0, 2] + 0.5)
        v = np.floor(k[1, 1] * pc[:, 1] / zs + k[1, 2] + 0.5)
        ok &= (u >= 0) & (u < w) & (v >= 0) & (v < h)
        sel = np.flatnonzero(ok)
        ui, vi = u[sel].astype(np.int64), v[sel].astype(np.int64)
        zsel = z[sel]
        good = (gt_instance[f, vi, ui] == instance[cand[sel]]) & (np.abs(depth[f, vi, ui] - zsel) < 0.02 + 0.02 * zsel)
        seen[cand[sel[good]]] = True
    return seen


def _sample(packed: PackedPrimitives, prim_ids: list[int], spacing: float, rng: np.random.Generator,
            visible: dict | None) -> tuple[np.ndarray, np.ndarray]:
    p, ix = _object_points(packed, prim_ids, spacing, rng)
    keep = ~_inside_other(packed, p, ix)
    p, ix = p[keep], ix[keep]
    if visible is not None:
        vis = _visible(p, packed.instance[ix], **visible)
        p, ix = p[vis], ix[vis]
    return p, ix


def reference_cloud(packed: PackedPrimitives, room: Room, first_object: int, spacing: float,
                    rng: np.random.Generator, *, depth: np.ndarray, gt_instance: np.ndarray, k: np.ndarray,
                    poses: np.ndarray, visible_only: bool = True, min_points: int = 100) -> PointCloud:
    """Sample the reference cloud at `spacing` metres; with `visible_only`, keep only observed points.
    Any instance that shows in the images (or, without `visible_only`, any instance) but got fewer than
    `min_points` points is resampled denser (spacing halved, up to 4 times)."""
    # the first pass checks visibility in at most MAX_VIEWS evenly spaced frames (neighbouring frames of a
    # smooth path see the same surfaces); the densifying pass for small instances uses every frame
    views = np.unique(np.linspace(0, poses.shape[0] - 1, min(MAX_VIEWS, poses.shape[0])).round().astype(int))
    visible = dict(depth=depth[views], gt_instance=gt_instance[views], k=k, poses=poses[views]) if visible_only \
        else None
    visible_all = dict(depth=depth, gt_instance=gt_instance, k=k, poses=poses) if visible_only else None
    room_pts, room_idx = _room_points(packed, room, spacing, rng)
    if visible is not None:
        vis = _visible(room_pts, np.zeros(room_pts.shape[0], np.int32), **visible)
        room_pts, room_idx = room_pts[vis], room_idx[vis]
    obj_pts, obj_idx = _sample(packed, list(range(first_object, len(packed))), spacing, rng, visible)
    inst = packed.instance[obj_idx]
    counts = np.bincount(inst, minlength=int(packed.instance.max()) + 1)
    wanted = np.unique(gt_instance) if visible_only else np.unique(packed.instance[first_object:])
    pts_list, idx_list = [room_pts, obj_pts], [room_idx, obj_idx]
    drop = np.zeros(obj_pts.shape[0], dtype=bool)
    for i in wanted[wanted > 0].tolist():
        if counts[i] >= min_points:
            continue
        prim_ids = np.flatnonzero(packed.instance == i).tolist()
        step = spacing
        for _ in range(4):
            step /= 2.0
            p, ix = _sample(packed, prim_ids, step, rng, visible_all)
            if p.shape[0] >= min_points:
                break
        if p.shape[0] > counts[i]:
            drop |= inst == i
            pts_list.append(p)
            idx_list.append(ix)
    pts_list[1], idx_list[1] = obj_pts[~drop], obj_idx[~drop]
    points = np.concatenate(pts_list)
    index = np.concatenate(idx_list)
    color = shade(packed, room, index, points)
    return PointCloud(coord=points.astype(np.float32), color=color, instance=packed.instance[index].astype(np.int32),
                      segment=packed.label[index].astype(np.int32))
