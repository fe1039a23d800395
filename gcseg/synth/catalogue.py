"""Furniture catalogue: objects built from parts, each part its own primitive with its own colour/texture.

Object local frame: origin at the centre of its footprint on its support surface, local +y = the object's
front, yaw about +z. Each piece of furniture is one GT instance made of several parts (table = top + 4 legs,
chair = seat + back + 4 legs, shelf = sides + back + boards, cabinet = body + doors + handles, sofa = base +
back + arms + cushions, lamp = base + pole + shade, ...); every small item on a shelf or a table is its own
instance (its `parent` is the supporting object) with >= 2 differently coloured parts. So "the shelf", "a book
on the shelf" and "a leg of the table" are all plausible 2D masks: the granularity ambiguity of the paper.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from gcseg.synth.primitives import BOX, CHECKER, CYLINDER, SOLID, SPHERE, STRIPES, WOOD, Primitive, yaw_matrix

LABELS: dict[int, str] = {
    0: "void", 1: "table", 2: "chair", 3: "shelf", 4: "cabinet", 5: "box", 6: "lamp", 7: "sofa",
    8: "plant", 9: "book", 10: "vase", 11: "bottle", 12: "cup", 13: "small_box", 14: "desk", 15: "monitor",
}
_LABEL_ID = {v: k for k, v in LABELS.items()}


@dataclass
class SceneObject:
    instance: int
    name: str  # catalogue kind, e.g. "table"
    label: int
    parts: list[tuple[int, str]] = field(default_factory=list)  # (part id, part name)
    parent: int = 0  # instance this object stands on (0 = the floor)
    footprint: tuple[float, float, float, float] = (0, 0, 0, 0)  # world AABB (cx, cy, hx, hy)
    height: float = 0.0  # top above the floor (m)
    size: tuple[float, float, float] = (0, 0, 0)  # width, depth, height in the object's own frame (m)
    yaw: float = 0.0  # rotation about +z (radians)

    def to_json(self) -> dict:
        return {"instance": self.instance, "name": self.name, "label": self.label, "label_name": LABELS[self.label],
                "parent": self.parent, "parts": [{"part": p, "name": n} for p, n in self.parts],
                "footprint": [round(float(v), 4) for v in self.footprint], "height": round(float(self.height), 4),
                "size": [round(float(v), 4) for v in self.size], "yaw": round(float(self.yaw), 6)}


# ----------------------------------------------------------------------------------------------------------
# colours


def hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return (round(r, 4), round(g, 4), round(b, 4))


class Palette:
    """Related but distinct part colours for one object: a base hue, shifted per part role."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.hue = float(rng.uniform(0, 1))

    def main(self) -> tuple[float, float, float]:
        return hsv(self.hue, self.rng.uniform(0.45, 0.8), self.rng.uniform(0.55, 0.85))

    def accent(self) -> tuple[float, float, float]:
        return hsv(self.hue + self.rng.uniform(0.25, 0.75), self.rng.uniform(0.5, 0.9), self.rng.uniform(0.5, 0.9))

    def dark(self) -> tuple[float, float, float]:
        return hsv(self.hue, self.rng.uniform(0.1, 0.4), self.rng.uniform(0.12, 0.3))

    def light(self) -> tuple[float, float, float]:
        return hsv(self.hue, self.rng.uniform(0.05, 0.2), self.rng.uniform(0.85, 0.97))

    def wood(self) -> tuple[float, float, float]:
        return hsv(self.rng.uniform(0.06, 0.1), self.rng.uniform(0.45, 0.7), self.rng.uniform(0.45, 0.75))


def scale_color(c: tuple[float, float, float], f: float) -> tuple[float, float, float]:
    return tuple(round(float(np.clip(x * f, 0, 1)), 4) for x in c)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------
# building objects from parts


class Context:
    """Id counters and the primitive list of the scene under construction."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.primitives: list[Primitive] = []
        self.objects: list[SceneObject] = []
        self.next_instance = 1
        self.next_part = 1


class Builder:
    """Adds the parts of one object, given in its local frame, to the scene."""

    def __init__(self, ctx: Context, name: str, origin: tuple[float, float, float], yaw: float, parent: int = 0):
        self.ctx = ctx
        self.origin = np.asarray(origin, dtype=np.float64)
        self.yaw = float(yaw)
        self.rot = yaw_matrix(yaw)
        self.obj = SceneObject(instance=ctx.next_instance, name=name, label=_LABEL_ID[name], parent=parent)
        ctx.next_instance += 1
        ctx.objects.append(self.obj)

    def _add(self, kind: int, part: str, center, half, color, texture=SOLID, color2=None, period=0.1) -> None:
        ctx = self.ctx
        world = self.rot @ np.asarray(center, dtype=np.float64) + self.origin
        pid = ctx.next_part
        ctx.next_part += 1
        self.obj.parts.append((pid, part))
        c2 = color2 if color2 is not None else scale_color(color, 0.7)
        ctx.primitives.append(Primitive(kind=kind, center=tuple(round(float(v), 6) for v in world),
                                        half=tuple(float(v) for v in half), yaw=self.yaw, color=color, color2=c2,
                                        texture=texture, period=float(period), instance=self.obj.instance,
                                        part=pid, label=self.obj.label, name=part))

    def box(self, part: str, center, size, color, **kw) -> None:
        """Box of full `size` (x, y, z) centred at local `center`."""
        self._add(BOX, part, center, np.asarray(size, dtype=np.float64) / 2, color, **kw)

    def cylinder(self, part: str, base, radius: float, height: float, color, **kw) -> None:
        """Upright cylinder standing on local point `base`."""
        cx, cy, cz = base
        self._add(CYLINDER, part, (cx, cy, cz + height / 2), (radius, radius, height / 2), color, **kw)

    def sphere(self, part: str, center, radius: float, color, **kw) -> None:
        self._add(SPHERE, part, center, (radius, radius, radius), color, **kw)

    def finish(self, footprint_half: tuple[float, float], height: float) -> SceneObject:
        self.obj.footprint = footprint(self.origin[:2], footprint_half, self.yaw)
        self.obj.height = float(self.origin[2] + height)
        self.obj.size = (2 * float(footprint_half[0]), 2 * float(footprint_half[1]), float(height))
        self.obj.yaw = self.yaw
        return self.obj


def footprint(center, half: tuple[float, float], yaw: float) -> tuple[float, float, float, float]:
    """World AABB (cx, cy, hx, hy) of a rectangle of half sizes `half` rotated by `yaw`."""
    c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
    hx = c * half[0] + s * half[1]
    hy = s * half[0] + c * half[1]
    return (float(center[0]), float(center[1]), float(hx), float(hy))


# --- small items (each its own instance; >= 2 parts with different colours) ---------------------------------


def _itemfurniture_dims(rng: np.random.Generator, kind: str, max_h: float) -> tuple[float, float, float]:
    if kind == "book":
        return (rng.uniform(0.025, 0.06), rng.uniform(0.15, 0.24), min(max_h, rng.uniform(0.18, 0.28)))
    if kind == "vase":
        r = rng.uniform(0.05, 0.08)
        return (2 * r, 2 * r, min(max_h, rng.uniform(0.16, 0.3)))
    if kind == "bottle":
        r = rng.uniform(0.03, 0.045)
        return (2 * r, 2 * r, min(max_h, rng.uniform(0.18, 0.3)))
    if kind == "cup":
        r = rng.uniform(0.035, 0.05)
        return (2 * r + 0.03, 2 * r, min(max_h, rng.uniform(0.08, 0.12)))
    return (rng.uniform(0.1, 0.2), rng.uniform(0.1, 0.18), min(max_h, rng.uniform(0.07, 0.14)))  # small_box


def _build_item(ctx: Context, kind: str, dims, origin, yaw: float, parent: int) -> None:
    rng = ctx.rng
    w, d, h = dims
    pal = Palette(rng)
    b = Builder(ctx, kind, origin, yaw, parent)
    if kind == "book":
        b.box("cover", (0, 0, h / 2), (w, d, h), pal.main())
        # spine label band on the front face: a second colour the 2D segmenter may split off
        b.box("spine_label", (0, d / 2 + 0.002, h * 0.6), (w * 0.9, 0.004, h * 0.18), pal.light())
    elif kind == "vase":
        r = w / 2
        b.cylinder("body", (0, 0, 0), r, h * 0.7, pal.main(), texture=STRIPES, color2=pal.accent(), period=0.04)
        b.cylinder("neck", (0, 0, h * 0.7), r * 0.55, h * 0.3, pal.dark())
    elif kind == "bottle":
        r = w / 2
        b.cylinder("body", (0, 0, 0), r, h * 0.75, pal.main())
        b.cylinder("cap", (0, 0, h * 0.75), r * 0.45, h * 0.25, pal.accent())
    elif kind == "cup":
        r = d / 2
        b.cylinder("body", (-0.015, 0, 0), r, h, pal.light())
        b.box("handle", (r - 0.015 + 0.012, 0, h * 0.5), (0.025, 0.012, h * 0.55), pal.accent())
    else:  # small_box
        b.box("body", (0, 0, (h - 0.02) / 2), (w, d, h - 0.02), pal.main(), texture=CHECKER, color2=pal.light(),
              period=0.04)
        b.box("lid", (0, 0, h - 0.01), (w + 0.01, d + 0.01, 0.02), pal.dark())
    b.finish((w / 2, d / 2), h)


def _fill_row(ctx: Context, parent: SceneObject, kinds: list[str], x0: float, x1: float, y: float, z: float,
              depth: float, max_h: float, frame_origin, frame_yaw: float, max_items: int = 1000) -> None:
    """Place up to `max_items` small items side by side along local x in [x0, x1] on a surface at height z
    (in the parent's frame)."""
    rng = ctx.rng
    rot = yaw_matrix(frame_yaw)
    x = x0 + rng.uniform(0.01, 0.08)
    placed = 0
    while x < x1 and placed < max_items:
        kind = kinds[int(rng.integers(len(kinds)))]
        w, d, h = _itemfurniture_dims(rng, kind, max_h)
        d = min(d, depth - 0.02)
        if x + w > x1:
            break
        local = np.array([x + w / 2, y + rng.uniform(-0.01, 0.01), z])
        origin = rot @ local + np.asarray(frame_origin, dtype=np.float64)
        _build_item(ctx, kind, (w, d, h), tuple(origin), frame_yaw, parent.instance)
        placed += 1
        # books come in runs; other items get some air around them
        x += w + (rng.uniform(0.0, 0.006) if kind == "book" else rng.uniform(0.08, 0.3))


# --- furniture -------------------------------------------------------------------------------------------------


def furniture_dims(rng: np.random.Generator, kind: str) -> tuple[float, float, float]:
    """Sampled (width x, depth y, height z) of a furniture kind."""
    u = rng.uniform
    return {
        "table": (u(1.0, 1.6), u(0.7, 0.95), u(0.72, 0.78)),
        "chair": (u(0.42, 0.5), u(0.42, 0.5), u(0.82, 0.95)),
        "shelf": (u(0.8, 1.2), u(0.3, 0.38), u(1.5, 2.0)),
        "cabinet": (u(0.8, 1.2), u(0.42, 0.52), u(0.75, 0.95) if rng.uniform() < 0.6 else u(1.5, 1.9)),
        "box": (u(0.3, 0.55), u(0.3, 0.5), u(0.25, 0.45)),
        "lamp": (0.44, 0.44, u(1.45, 1.75)),
        "sofa": (u(1.6, 2.2), u(0.8, 0.95), u(0.78, 0.88)),
        "plant": (0.6, 0.6, u(0.7, 1.0)),
        "desk": (u(1.1, 1.5), u(0.6, 0.7), u(0.72, 0.76)),
    }[kind]


def _build_monitor(ctx: Context, origin, yaw: float, parent: int) -> None:
    """A monitor standing on a desk: base + neck + screen + display (dark glass on the screen's front)."""
    rng = ctx.rng
    pal = Palette(rng)
    sw, sh = rng.uniform(0.45, 0.65), rng.uniform(0.28, 0.38)
    b = Builder(ctx, "monitor", origin, yaw, parent)
    body = pal.dark()
    b.box("base", (0, 0, 0.01), (0.22, 0.16, 0.02), scale_color(pal.light(), 0.6))
    b.box("neck", (0, -0.03, 0.02 + 0.06), (0.05, 0.03, 0.12), scale_color(pal.light(), 0.6))
    b.box("screen", (0, 0.0, 0.12 + sh / 2), (sw, 0.03, sh), body)
    b.box("display", (0, 0.016, 0.12 + sh / 2), (sw - 0.03, 0.004, sh - 0.03), hsv(pal.hue, 0.5, 0.35),
          texture=STRIPES, color2=hsv(pal.hue + 0.5, 0.5, 0.5), period=0.08)
    b.finish((sw / 2, 0.08), 0.12 + sh)


def build_furniture(ctx: Context, kind: str, dims, origin, yaw: float, parent: int = 0) -> SceneObject:
    rng = ctx.rng
    w, d, h = dims
    pal = Palette(rng)
    b = Builder(ctx, kind, origin, yaw, parent)
    if kind == "desk":
        t = 0.03
        wood = pal.wood()
        b.box("top", (0, 0, h - t / 2), (w, d, t), wood, texture=WOOD, color2=scale_color(wood, 0.85), period=0.06)
        panel = pal.light()
        b.box("side", (-w / 2 + 0.015, 0, (h - t) / 2), (0.03, d - 0.04, h - t), panel)
        dw = rng.uniform(0.35, 0.45)  # drawer unit on the right
        b.box("drawer_unit", (w / 2 - dw / 2, -0.02, (h - t) / 2), (dw, d - 0.06, h - t), panel)
        n_dr = int(rng.integers(2, 4))
        fh = (h - t - 0.04) / n_dr
        front, handle = pal.main(), pal.dark()
        for i in range(n_dr):
            zc = 0.02 + fh * (i + 0.5)
            b.box("drawer", (w / 2 - dw / 2, d / 2 - 0.04, zc), (dw - 0.02, 0.02, fh - 0.015), front)
            b.box("handle", (w / 2 - dw / 2, d / 2 - 0.02, zc + fh * 0.2), (0.12, 0.02, 0.015), handle)
        obj = b.finish((w / 2, d / 2), h)
        _build_monitor(ctx, tuple(yaw_matrix(yaw) @ np.array([-0.1 * w, -d * 0.2, h]) + np.asarray(origin)), yaw,
                       obj.instance)
        _fill_row(ctx, obj, ["cup", "book", "bottle"], -w / 2 + 0.05, -w / 2 + 0.3, d * 0.25, h, d * 0.3, 0.3,
                  origin, yaw, max_items=1)
        return obj
    if kind == "table":
        t = 0.04
        wood = pal.wood()
        b.box("top", (0, 0, h - t / 2), (w, d, t), wood, texture=WOOD, color2=scale_color(wood, 0.85), period=0.06)
        leg = pal.dark()
        s = 0.05
        for sx in (-1, 1):
            for sy in (-1, 1):
                b.box("leg", (sx * (w / 2 - 0.06), sy * (d / 2 - 0.06), (h - t) / 2), (s, s, h - t), leg)
        obj = b.finish((w / 2, d / 2), h)
        kinds = ["cup", "bottle", "book", "small_box", "vase"]
        _fill_row(ctx, obj, kinds, -w / 2 + 0.1, w / 2 - 0.1, rng.uniform(-d / 6, d / 6), h, d * 0.5, 0.3,
                  origin, yaw, max_items=int(rng.integers(1, 5)))
        return obj
    if kind == "chair":
        seat_h, t = rng.uniform(0.43, 0.48), 0.05
        seat = pal.main()
        b.box("seat", (0, 0, seat_h - t / 2), (w, d, t), seat, texture=CHECKER, color2=scale_color(seat, 0.8),
              period=0.06)
        b.box("back", (0, -d / 2 + 0.025, seat_h + (h - seat_h) / 2), (w, 0.04, h - seat_h), pal.accent())
        leg = pal.dark()
        for sx in (-1, 1):
            for sy in (-1, 1):
                b.box("leg", (sx * (w / 2 - 0.03), sy * (d / 2 - 0.03), (seat_h - t) / 2), (0.035, 0.035, seat_h - t),
                      leg)
        return b.finish((w / 2, d / 2), h)
    if kind == "shelf":
        t = 0.025
        frame = pal.wood() if rng.uniform() < 0.5 else pal.light()
        b.box("side", (-w / 2 + t / 2, 0, h / 2), (t, d, h), frame)
        b.box("side", (w / 2 - t / 2, 0, h / 2), (t, d, h), frame)
        b.box("back", (0, -d / 2 + 0.005, h / 2), (w - 2 * t, 0.01, h), pal.main(), texture=STRIPES,
              color2=pal.light(), period=0.15)
        b.box("top", (0, 0, h - t / 2), (w, d, t), scale_color(frame, 0.85))
        n_boards = int(rng.integers(3, 5))
        levels = np.linspace(0.08, h - t, n_boards + 1)[:-1]
        board = scale_color(frame, 0.9)
        for z in levels:
            b.box("board", (0, 0.005, z - t / 2 + t), (w - 2 * t, d - 0.01, t), board)
        obj = b.finish((w / 2, d / 2), h)
        gap = levels[1] - levels[0] if len(levels) > 1 else h
        for z in levels:
            _fill_row(ctx, obj, ["book", "book", "book", "vase", "small_box", "bottle"], -w / 2 + t, w / 2 - t,
                      0.01, z + t, d - 0.02, gap - t - 0.04, origin, yaw)
        return obj
    if kind == "cabinet":
        plinth = 0.06
        body = pal.light() if rng.uniform() < 0.5 else pal.wood()
        b.box("plinth", (0, -0.02, plinth / 2), (w - 0.04, d - 0.04, plinth), pal.dark())
        b.box("body", (0, -0.01, (h + plinth) / 2 - 0.01), (w, d - 0.02, h - plinth - 0.02), body)
        wood = pal.wood()
        b.box("top", (0, 0, h - 0.01), (w + 0.02, d, 0.02), wood, texture=WOOD, color2=scale_color(wood, 0.85),
              period=0.06)
        door = pal.main()
        handle = pal.dark()
        for sx in (-1, 1):
            b.box("door", (sx * w / 4, d / 2 - 0.01, (h + plinth) / 2 - 0.01),
                  (w / 2 - 0.02, 0.02, h - plinth - 0.06), door, texture=STRIPES, color2=scale_color(door, 0.85),
                  period=0.05)
        for sx in (-1, 1):
            b.box("handle", (sx * 0.05, d / 2 + 0.015, (h + plinth) / 2 + 0.05), (0.02, 0.02, 0.12), handle)
        return b.finish((w / 2 + 0.01, d / 2 + 0.03), h)
    if kind == "box":
        body = pal.main()
        b.box("body", (0, 0, (h - 0.03) / 2), (w, d, h - 0.03), body, texture=STRIPES, color2=scale_color(body, 0.8),
              period=0.08)
        b.box("lid", (0, 0, h - 0.015), (w + 0.02, d + 0.02, 0.03), pal.accent())
        b.box("label", (0, d / 2 + 0.003, h * 0.45), (w * 0.5, 0.006, h * 0.25), pal.light())
        return b.finish((w / 2 + 0.01, d / 2 + 0.01), h)
    if kind == "lamp":
        b.cylinder("base", (0, 0, 0), 0.15, 0.04, pal.dark())
        b.cylinder("pole", (0, 0, 0.04), 0.015, h - 0.3, scale_color(pal.light(), 0.7))
        b.cylinder("shade", (0, 0, h - 0.3), rng.uniform(0.17, 0.22), 0.3, pal.light(), texture=STRIPES,
                   color2=pal.accent(), period=0.06)
        return b.finish((0.22, 0.22), h)
    if kind == "sofa":
        seat_h, arm_w, back_d = 0.42, 0.18, 0.22
        fabric = pal.main()
        b.box("base", (0, 0, 0.03 + (seat_h - 0.15) / 2), (w, d, seat_h - 0.15), scale_color(fabric, 0.8))
        b.box("back", (0, -d / 2 + back_d / 2, (h + seat_h - 0.15) / 2), (w, back_d, h - seat_h + 0.15),
              fabric, texture=CHECKER, color2=scale_color(fabric, 0.85), period=0.1)
        for sx in (-1, 1):
            b.box("arm", (sx * (w / 2 - arm_w / 2), back_d / 2, seat_h + 0.05), (arm_w, d - back_d, 0.26 + 0.04),
                  scale_color(fabric, 0.7))
        n_cush = 2 if w < 1.9 else 3
        cw = (w - 2 * arm_w) / n_cush
        cushion = pal.accent()
        for i in range(n_cush):
            cx = -w / 2 + arm_w + cw * (i + 0.5)
            b.box("cushion", (cx, back_d / 2, seat_h - 0.15 + 0.03 + 0.075), (cw - 0.01, d - back_d - 0.02, 0.15),
                  cushion)
        for sx in (-1, 1):
            for sy in (-1, 1):
                b.box("foot", (sx * (w / 2 - 0.05), sy * (d / 2 - 0.05), 0.015), (0.04, 0.04, 0.03), pal.dark())
        return b.finish((w / 2, d / 2), h)
    if kind == "plant":
        pot_h, r = rng.uniform(0.25, 0.35), rng.uniform(0.12, 0.16)
        b.cylinder("pot", (0, 0, 0), r, pot_h, pal.main(), texture=STRIPES, color2=pal.dark(), period=0.05)
        b.cylinder("soil", (0, 0, pot_h), r * 0.9, 0.01, hsv(0.08, 0.6, 0.25))
        fr = (h - pot_h) / 2
        b.sphere("foliage", (0, 0, pot_h + fr), min(fr, 0.3), hsv(rng.uniform(0.25, 0.38), 0.7, 0.55),
                 texture=CHECKER, color2=hsv(0.3, 0.8, 0.35), period=0.06)
        return b.finish((0.3, 0.3), h)
    raise ValueError(f"unknown furniture kind {kind!r}")
