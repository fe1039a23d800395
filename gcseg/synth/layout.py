"""Procedural indoor rooms: a room shell (void), a camera ring, and furniture from `catalogue` placed
without overlap.

World frame: +z up, floor at z = 0, the room spans [-L/2, L/2] x [-W/2, W/2] x [0, H]. Floor, walls and
ceiling are GT instance 0 / label 0 (void). A dining group (table + chairs) stands in the middle; shelves,
cabinets, sofas, lamps, plants and boxes stand against the walls or free in the room. Tall objects keep clear
of the ellipse the camera walks on, so the camera never enters furniture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gcseg.synth.catalogue import LABELS, Context, SceneObject, build_furniture, footprint, furniture_dims, hsv, \
    scale_color
from gcseg.synth.primitives import BOX, SOLID, STRIPES, WOOD, Primitive, yaw_matrix

__all__ = ["LABELS", "CameraRing", "Layout", "Room", "SceneObject", "make_layout"]

TALL = 1.05  # objects taller than this must keep clear of the camera path (the camera flies at >= 1.3 m)
GAP = 0.08  # minimum free space between footprints (metres)


@dataclass(frozen=True)
class Room:
    length: float  # x extent (m)
    width: float  # y extent (m)
    height: float  # ceiling height (m)


@dataclass(frozen=True)
class CameraRing:
    """The ellipse (semi-axes a along x, b along y) the camera travels on; tall objects keep `clearance` off it."""

    a: float
    b: float
    clearance: float = 0.45

    def points(self, n: int = 180) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.stack([self.a * np.cos(t), self.b * np.sin(t)], axis=1)


@dataclass
class Layout:
    room: Room
    ring: CameraRing
    primitives: list[Primitive]
    objects: list[SceneObject]


# ----------------------------------------------------------------------------------------------------------
# room shell and placement


def _room_shell(ctx: Context, room: Room) -> None:
    """Floor, four walls and ceiling as thick slabs just outside the room (instance 0, part 0, label 0)."""
    rng = ctx.rng
    L, W, H = room.length, room.width, room.height
    t, m = 0.1, 0.1
    floor = hsv(rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.65))
    wall_hue = rng.uniform(0, 1)
    slabs = [
        ("floor", (0, 0, -t / 2), (L / 2 + m, W / 2 + m, t / 2), floor, WOOD, scale_color(floor, 0.88), 0.2),
        ("ceiling", (0, 0, H + t / 2), (L / 2 + m, W / 2 + m, t / 2), hsv(0, 0, 0.95), SOLID, hsv(0, 0, 0.9), 1.0),
    ]
    for i, (c, hh) in enumerate([((-L / 2 - t / 2, 0, H / 2), (t / 2, W / 2 + m, H / 2 + m)),
                                 ((L / 2 + t / 2, 0, H / 2), (t / 2, W / 2 + m, H / 2 + m)),
                                 ((0, -W / 2 - t / 2, H / 2), (L / 2 + m, t / 2, H / 2 + m)),
                                 ((0, W / 2 + t / 2, H / 2), (L / 2 + m, t / 2, H / 2 + m))]):
        col = hsv(wall_hue + 0.03 * i, rng.uniform(0.08, 0.25), rng.uniform(0.75, 0.92))
        slabs.append(("wall", c, hh, col, STRIPES if i % 2 else SOLID, scale_color(col, 0.93), 0.4))
    for name, c, hh, col, tex, col2, period in slabs:
        ctx.primitives.append(Primitive(kind=BOX, center=tuple(float(v) for v in c), half=tuple(float(v) for v in hh),
                                        yaw=0.0, color=col, color2=col2, texture=tex, period=period, instance=0,
                                        part=0, label=0, name=name))


def _overlaps(fp, placed: list[tuple[float, float, float, float]], gap: float = GAP) -> bool:
    for q in placed:
        if abs(fp[0] - q[0]) < fp[2] + q[2] + gap and abs(fp[1] - q[1]) < fp[3] + q[3] + gap:
            return True
    return False


def _inside(fp, room: Room, margin: float = 0.02) -> bool:
    return (abs(fp[0]) + fp[2] <= room.length / 2 - margin) and (abs(fp[1]) + fp[3] <= room.width / 2 - margin)


def _clear_of_ring(fp, ring: CameraRing) -> bool:
    p = ring.points()
    q = np.maximum(np.abs(p - np.array(fp[:2])) - np.array(fp[2:]), 0.0)
    return bool(np.sqrt((q**2).sum(1)).min() > ring.clearance)


_WALL_KINDS = ["shelf", "shelf", "cabinet", "sofa", "lamp", "plant", "box", "cabinet", "shelf", "desk"]
_FREE_KINDS = ["box", "box", "plant", "lamp", "chair"]


def make_layout(rng: np.random.Generator, *, max_furniture: int = 8, room_size: tuple[float, float] = (4.5, 7.0)
                ) -> Layout:
    """Sample a room, a camera ring and up to `max_furniture` pieces of furniture (plus small items on them)."""
    ctx = Context(rng)
    lo, hi = room_size
    length = float(rng.uniform(lo, hi))
    width = float(rng.uniform(max(lo - 0.5, 3.5), min(length, hi - 0.5)))
    room = Room(round(length, 3), round(width, 3), round(float(rng.uniform(2.6, 3.0)), 3))
    margin = float(rng.uniform(1.1, 1.3))
    ring = CameraRing(a=room.length / 2 - margin, b=room.width / 2 - margin)
    _room_shell(ctx, room)
    placed: list[tuple[float, float, float, float]] = []

    def try_place(kind: str, sample_pose, attempts: int = 40) -> SceneObject | None:
        dims = furniture_dims(rng, kind)
        for _ in range(attempts):
            x, y, yaw = sample_pose(dims)
            fp = footprint((x, y), (dims[0] / 2 + 0.03, dims[1] / 2 + 0.03), yaw)
            if not _inside(fp, room) or _overlaps(fp, placed):
                continue
            if dims[2] > TALL and not _clear_of_ring(fp, ring):
                continue
            placed.append(fp)
            obj = build_furniture(ctx, kind, dims, (x, y, 0.0), yaw)
            if kind == "box" and rng.uniform() < 0.4:  # a smaller box stacked on top: its own instance
                top = tuple(dims[j] * rng.uniform(0.6, 0.85) for j in range(3))
                build_furniture(ctx, "box", top, (x, y, dims[2]), yaw + float(rng.uniform(-0.3, 0.3)), obj.instance)
            return obj
        return None

    def wall_pose(dims):
        w, d, _ = dims
        side = int(rng.integers(4))
        L, W = room.length, room.width
        if side in (0, 1):  # south (y = -W/2, facing +y) / north (facing -y)
            x = rng.uniform(-L / 2 + w / 2 + 0.05, L / 2 - w / 2 - 0.05)
            y = (-W / 2 + d / 2 + 0.06) if side == 0 else (W / 2 - d / 2 - 0.06)
            return x, y, 0.0 if side == 0 else np.pi
        y = rng.uniform(-W / 2 + w / 2 + 0.05, W / 2 - w / 2 - 0.05)
        x = (L / 2 - d / 2 - 0.06) if side == 2 else (-L / 2 + d / 2 + 0.06)
        return x, y, np.pi / 2 if side == 2 else -np.pi / 2

    def free_pose(dims):
        return (rng.uniform(-room.length / 2, room.length / 2), rng.uniform(-room.width / 2, room.width / 2),
                float(rng.uniform(-np.pi, np.pi)) if rng.uniform() < 0.5 else float(rng.integers(4)) * np.pi / 2)

    count = 0
    # a dining group in the middle: table + chairs facing it
    table_dims = furniture_dims(rng, "table")
    for _ in range(40):
        tx, ty = rng.uniform(-0.5, 0.5) * ring.a, rng.uniform(-0.5, 0.5) * ring.b
        tyaw = float(rng.choice([0.0, np.pi / 2])) + float(rng.uniform(-0.25, 0.25))
        fp = footprint((tx, ty), (table_dims[0] / 2, table_dims[1] / 2), tyaw)
        if _inside(fp, room, 0.6):
            placed.append(fp)
            build_furniture(ctx, "table", table_dims, (tx, ty, 0.0), tyaw)
            count += 1
            break
    else:
        tx = ty = tyaw = None
    if tx is not None:
        tw, td, _ = table_dims
        slots = [(-tw / 4, -td / 2 - 0.12, 0.0), (tw / 4, -td / 2 - 0.12, 0.0), (-tw / 4, td / 2 + 0.12, np.pi),
                 (tw / 4, td / 2 + 0.12, np.pi), (-tw / 2 - 0.12, 0.0, -np.pi / 2), (tw / 2 + 0.12, 0.0, np.pi / 2)]
        order = rng.permutation(len(slots))[: int(rng.integers(2, 5))]
        rot = yaw_matrix(tyaw)
        for k in sorted(order.tolist()):
            if count >= max_furniture:
                break
            sx, sy, syaw = slots[k]
            dims = furniture_dims(rng, "chair")
            # chairs face the table: their front (+y local) points at it; they stand ~0.25 m out
            off = np.array([sx, sy, 0.0])
            if abs(sy) > 0:
                off[1] += np.sign(sy) * dims[1] / 2
            else:
                off[0] += np.sign(sx) * dims[1] / 2
            pos = rot @ off + np.array([tx, ty, 0.0])
            yaw = tyaw + syaw + float(rng.uniform(-0.15, 0.15))
            fp = footprint(pos[:2], (dims[0] / 2, dims[1] / 2), yaw)
            if _inside(fp, room) and not _overlaps(fp, placed[1:], 0.03) and not _overlaps(fp, placed[:1], 0.0):
                placed.append(fp)
                build_furniture(ctx, "chair", dims, (float(pos[0]), float(pos[1]), 0.0), yaw)
                count += 1
    n_wall = int(rng.integers(3, 6))
    for kind in [(_WALL_KINDS[int(rng.integers(len(_WALL_KINDS)))]) for _ in range(n_wall)]:
        if count >= max_furniture:
            break
        count += try_place(kind, wall_pose) is not None
    n_free = int(rng.integers(1, 4))
    for kind in [(_FREE_KINDS[int(rng.integers(len(_FREE_KINDS)))]) for _ in range(n_free)]:
        if count >= max_furniture:
            break
        count += try_place(kind, free_pose) is not None
    return Layout(room=room, ring=ring, primitives=ctx.primitives, objects=ctx.objects)
