"""Vectorised numpy ray caster: all rays of a frame at once against each primitive, with screen-space culling.

Rays go through pixel centres with camera-space direction (x, y, 1), so the ray parameter t of a hit *is* the
z-depth. Each primitive is only tested against the rays inside the screen rectangle its bounding box projects
to, so the cost is about the covered pixel area, not pixels x primitives. The room shell (the inside of a box)
is one analytic exit test. Shading is view-independent Lambert (ambient + a ceiling point light + a fill
light), so the reference cloud gets exactly the colours the images show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gcseg.synth.layout import Room
from gcseg.synth.primitives import BOX, CHECKER, CYLINDER, SPHERE, STRIPES, WOOD, PackedPrimitives

NEAR = 0.05  # metres: hits closer than this are ignored (the camera never gets that close to a surface)


@dataclass(frozen=True)
class Render:
    depth: np.ndarray  # float32 (H, W) z-depth, metres (noise-free, every pixel hits the room)
    index: np.ndarray  # int32 (H, W) primitive index per pixel
    color: np.ndarray  # uint8 (H, W, 3)


def camera_rays(k: np.ndarray, h: int, w: int) -> np.ndarray:
    """Camera-space ray directions (H, W, 3) with z = 1."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)


def _intersect_box(o: tuple[float, float, float], inv: tuple[np.ndarray, np.ndarray, np.ndarray],
                   half: tuple[float, float, float]) -> np.ndarray:
    """Slab test in the box frame: o = ray origin, inv = 1 / direction per axis (inf where parallel).
    Entry t per ray, inf where missed or closer than NEAR (fmin/fmax skip the NaN of 0 * inf)."""
    tn = tf = None
    for j in range(3):
        t1 = (-half[j] - o[j]) * inv[j]
        t2 = (half[j] - o[j]) * inv[j]
        lo, hi = np.fmin(t1, t2), np.fmax(t1, t2)
        tn = lo if tn is None else np.maximum(tn, lo)
        tf = hi if tf is None else np.minimum(tf, hi)
    return np.where((tn <= tf) & (tn > NEAR), tn, np.float32(np.inf))


def _intersect_cylinder(o: tuple[float, float, float], d: tuple[np.ndarray, np.ndarray, np.ndarray],
                        half: tuple[float, float, float]) -> np.ndarray:
    """Upright capped cylinder (radius half[0], half height half[2]) in its frame; camera outside it."""
    r, hh = half[0], half[2]
    dx, dy, dz = d
    a = dx * dx + dy * dy
    b = 2.0 * (o[0] * dx + o[1] * dy)
    c = o[0] ** 2 + o[1] ** 2 - r * r
    disc = b * b - 4.0 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    zs = o[2] + ts * dz
    t = np.where((disc >= 0) & (a > 1e-12) & (np.abs(zs) <= hh) & (ts > NEAR), ts, np.inf)
    if abs(o[2]) > hh:  # above the top cap or below the bottom one: the ray may enter through that cap
        zc = hh if o[2] > 0 else -hh
        with np.errstate(divide="ignore", invalid="ignore"):
            tc = (zc - o[2]) / dz
        xc, yc = o[0] + tc * dx, o[1] + tc * dy
        cap_ok = np.isfinite(tc) & (tc > NEAR) & (xc * xc + yc * yc <= r * r)
        t = np.where(cap_ok & (tc < t), tc, t)
    return t


def _intersect_sphere(o: tuple[float, float, float], d: tuple[np.ndarray, np.ndarray, np.ndarray],
                      half: tuple[float, float, float]) -> np.ndarray:
    r = half[0]
    dx, dy, dz = d
    a = dx * dx + dy * dy + dz * dz
    b = 2.0 * (o[0] * dx + o[1] * dy + o[2] * dz)
    c = o[0] ** 2 + o[1] ** 2 + o[2] ** 2 - r * r
    disc = b * b - 4.0 * a * c
    ts = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    return np.where((disc >= 0) & (ts > NEAR), ts, np.inf)




def _screen_rects(corners: np.ndarray, w2c: np.ndarray, k: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pixel rectangles (P, 4) = (v0, v1, u0, u1) covering each primitive's projected bounding box
    (corners (P, 8, 3) world); empty (v0 = v1 = 0) when it is behind the camera or off screen, the full image
    when it straddles the camera plane (its projection is unbounded)."""
    pc = corners @ w2c[:3, :3].T + w2c[:3, 3]
    z = pc[..., 2]
    front = z > NEAR
    zs = np.where(front, z, 1.0)
    u = k[0, 0] * pc[..., 0] / zs + k[0, 2]
    v = k[1, 1] * pc[..., 1] / zs + k[1, 2]
    rect = np.stack([np.floor(v.min(1)), np.ceil(v.max(1)) + 1, np.floor(u.min(1)), np.ceil(u.max(1)) + 1], axis=1)
    rect = np.clip(rect, 0, [h, h, w, w]).astype(np.int64)
    straddle = front.any(1) & ~front.all(1)
    rect[straddle] = (0, h, 0, w)
    empty = ~front.any(1) | (rect[:, 0] >= rect[:, 1]) | (rect[:, 2] >= rect[:, 3])
    rect[empty] = 0
    return rect


def shade(packed: PackedPrimitives, room: Room, index: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Lit colour (N, 3) uint8 of world surface points lying on primitives `index`.

    View-independent Lambert: ambient + a point light under the ceiling centre + a directional fill.
    Albedo is a procedural solid texture (solid / stripes / checker / wood) in the primitive's local frame,
    evaluated with the coordinate along the surface normal dropped, so a face never flickers at cell borders.
    All per-point work is elementwise on float32 columns (this runs on every pixel of every frame)."""
    f32 = np.float32
    px, py, pz = (points[:, j].astype(f32) for j in range(3))
    cx, cy, cz = (packed.center[index, j].astype(f32) for j in range(3))
    c, s = packed.cos[index].astype(f32), packed.sin[index].astype(f32)
    hx, hy, hz = (np.maximum(packed.half[index, j], 1e-9).astype(f32) for j in range(3))
    kind = packed.kind[index]
    dx, dy, lz = px - cx, py - cy, pz - cz
    lx, ly = c * dx + s * dy, c * dy - s * dx
    rx, ry, rz = np.abs(lx) / hx, np.abs(ly) / hy, np.abs(lz) / hz
    # box: the face a point lies on is the axis with the largest |p| / h
    ax0 = (rx >= ry) & (rx >= rz)
    ax1 = ~ax0 & (ry >= rz)
    axis = np.where(ax0, 0, np.where(ax1, 1, 2)).astype(np.int8)
    box, cyl, sph = kind == BOX, kind == CYLINDER, kind == SPHERE
    cap = cyl & (rz >= np.maximum(np.sqrt(rx * rx + ry * ry), f32(1.0 - 1e-4)))
    side = cyl & ~cap
    axis = np.where(box, axis, np.where(cap, 2, 1)).astype(np.int8)  # texture axis on curved surfaces
    one = f32(1.0)
    nx = np.where(box, np.where(axis == 0, np.sign(lx), 0), np.where(cap, 0, lx)).astype(f32)
    ny = np.where(box, np.where(axis == 1, np.sign(ly), 0), np.where(cap, 0, ly)).astype(f32)
    nz = np.where(box | cap, np.where(axis == 2, np.sign(lz), 0), np.where(side, 0, lz)).astype(f32)
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    norm = np.where(norm > 0, norm, one)
    nx, ny, nz = nx / norm, ny / norm, nz / norm
    wx, wy = c * nx - s * ny, s * nx + c * ny  # world normal
    # texture: drop the coordinate along the normal axis
    qx = np.where(axis == 0, 0, lx).astype(f32)
    qy = np.where(axis == 1, 0, ly).astype(f32)
    qz = np.where(axis == 2, 0, lz).astype(f32)
    period = packed.period[index]
    tex = packed.texture[index]
    two_pi = f32(2 * np.pi)
    along = np.where(axis == 2, qx, qz)
    mix = np.zeros(px.shape[0], dtype=f32)
    m = tex == STRIPES
    mix[m] = (np.sin(two_pi * along[m] / period[m]) > 0).astype(f32)
    m = tex == CHECKER
    if m.any():
        pm = period[m]
        mix[m] = (np.floor(qx[m] / pm + 0.25) + np.floor(qy[m] / pm + 0.25) + np.floor(qz[m] / pm + 0.25)) % 2
    m = tex == WOOD
    if m.any():
        pm, am = period[m], axis[m]
        grain = np.where(am == 0, qy[m], qx[m])
        across = np.where(am == 2, qy[m], qz[m])
        mix[m] = 0.5 + 0.5 * np.sin(two_pi * (across / pm + 0.08 * np.sin(two_pi * grain / (3 * pm))))
    base = packed.color[index] * (1 - mix[:, None]) + packed.color2[index] * mix[:, None]
    # lighting
    lx_, ly_, lz_ = -px, -py, f32(room.height - 0.25) - pz
    dist = np.sqrt(lx_ * lx_ + ly_ * ly_ + lz_ * lz_) + f32(1e-6)
    lam = np.clip((wx * lx_ + wy * ly_ + nz * lz_) / dist, 0, 1)
    fill = np.clip(f32(0.36) * wx - f32(0.48) * wy + f32(0.8) * nz, 0, 1)
    intensity = f32(0.38) + f32(0.55) * lam / (1 + f32(0.04) * dist * dist) + f32(0.2) * fill
    return np.clip(base * (intensity[:, None] * f32(255.0)) + f32(0.5), 0, 255).astype(np.uint8)


def _quarter_turn(c: float, s: float) -> int | None:
    """0..3 if the yaw is a multiple of 90 degrees (then local ray components are signed world ones)."""
    for q, (cq, sq) in enumerate(((1, 0), (0, 1), (-1, 0), (0, -1))):
        if abs(c - cq) < 1e-9 and abs(s - sq) < 1e-9:
            return q
    return None


def render_frame(packed: PackedPrimitives, room: Room, first_object: int, k: np.ndarray, pose: np.ndarray,
                 h: int, w: int, rays_cam: np.ndarray | None = None, *, cull: bool = True) -> Render:
    """Ray-cast one frame. Primitives [0, first_object) are the 6 room slabs (floor, ceiling, 4 walls, in
    the order layout._room_shell writes them); the rest are furniture. `cull=False` tests every primitive
    against every ray (the benchmark's brute-force reference)."""
    if rays_cam is None:
        rays_cam = camera_rays(k, h, w)
    rot, eye = pose[:3, :3], [float(x) for x in pose[:3, 3]]
    rx, ry = rays_cam[..., 0], rays_cam[..., 1]
    # world ray directions per component (H, W) float32; camera z = 1 so the hit parameter t is the z-depth
    dirs = [(rot[j, 0] * rx + rot[j, 1] * ry + rot[j, 2]).astype(np.float32) for j in range(3)]
    with np.errstate(divide="ignore"):
        inv = [np.float32(1.0) / dj for dj in dirs]  # +-inf where a component is 0: the slab test copes
    w2c = np.linalg.inv(pose)
    # room shell: exit of the interior box [-L/2, L/2] x [-W/2, W/2] x [0, H]
    lo = (-room.length / 2, -room.width / 2, 0.0)
    hi = (room.length / 2, room.width / 2, room.height)
    texit = []
    with np.errstate(invalid="ignore"):
        for j in range(3):
            tj = np.where(dirs[j] > 0, (hi[j] - eye[j]) * inv[j], (lo[j] - eye[j]) * inv[j])
            texit.append(np.where(np.isfinite(tj), tj, np.float32(np.inf)))
    # slab order: 0 floor (z-), 1 ceiling (z+), 2 wall x-, 3 wall x+, 4 wall y-, 5 wall y+
    zbuf = np.minimum(np.minimum(texit[0], texit[1]), texit[2])
    ibuf = np.where(texit[2] <= zbuf, np.where(dirs[2] > 0, 1, 0),
                    np.where(texit[0] <= zbuf, np.where(dirs[0] > 0, 3, 2), np.where(dirs[1] > 0, 5, 4)))
    ibuf = ibuf.astype(np.int32)
    if cull:
        rects = _screen_rects(packed.corners[first_object:], w2c, k, h, w)
    else:
        rects = np.tile(np.array([0, h, 0, w]), (len(packed) - first_object, 1))
    for i in range(first_object, len(packed)):
        v0, v1, u0, u1 = (int(x) for x in rects[i - first_object])
        if v0 >= v1:
            continue
        win = (slice(v0, v1), slice(u0, u1))
        rel = [eye[j] - float(packed.center[i, j]) for j in range(3)]
        half = tuple(float(x) for x in packed.half[i])
        kind = int(packed.kind[i])
        if kind == BOX:
            c, s = float(packed.cos[i]), float(packed.sin[i])
            o = (c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2])
            ix, iy, iz = (a[win] for a in inv)
            q = _quarter_turn(c, s)
            if q == 0:
                il = (ix, iy, iz)
            elif q == 1:  # local x = world y, local y = -world x
                il = (iy, -ix, iz)
            elif q == 2:
                il = (-ix, -iy, iz)
            elif q == 3:
                il = (-iy, ix, iz)
            else:
                dx, dy = dirs[0][win], dirs[1][win]
                with np.errstate(divide="ignore"):
                    il = (np.float32(1.0) / (c * dx + s * dy), np.float32(1.0) / (c * dy - s * dx), iz)
            t = _intersect_box(o, il, half)
        else:  # upright cylinders and spheres are symmetric about their z axis: no rotation needed
            d = tuple(a[win] for a in dirs)
            t = (_intersect_cylinder if kind == CYLINDER else _intersect_sphere)(tuple(rel), d, half)
        sub = zbuf[win]
        closer = t < sub
        if closer.any():
            sub[closer] = t[closer]
            ibuf[win][closer] = i
    points = np.stack([eye[j] + dirs[j].astype(np.float64) * zbuf for j in range(3)], axis=-1).reshape(-1, 3)
    color = shade(packed, room, ibuf.reshape(-1), points).reshape(h, w, 3)
    return Render(depth=zbuf.astype(np.float32), index=ibuf, color=color)
