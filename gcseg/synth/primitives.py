"""Geometric primitives of synthetic scenes (box, vertical-axis cylinder, sphere) and their packed form.

Every object part is one primitive with its own colour and procedural texture, so 2D segmenters see both
the parts and the wholes (the granularity ambiguity the method exists to resolve). Primitives live in a
local frame (centre ``center``, rotation ``rotation`` local->world); ``half`` is the half extent along the
local axes (cylinder: (r, r, half height); sphere: (r, r, r)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX, CYLINDER, SPHERE = 0, 1, 2
SOLID, STRIPES, CHECKER, WOOD = 0, 1, 2, 3


@dataclass(frozen=True)
class Primitive:
    kind: int  # BOX | CYLINDER | SPHERE
    center: tuple[float, float, float]  # world, metres
    half: tuple[float, float, float]  # half extents along the local axes
    yaw: float  # rotation about world +z (radians); all our primitives are upright
    color: tuple[float, float, float]  # albedo in [0, 1]
    color2: tuple[float, float, float]  # second albedo of the texture pattern
    texture: int  # SOLID | STRIPES | CHECKER | WOOD
    period: float  # texture period in metres
    instance: int  # GT instance id (0 = void: room shell)
    part: int  # GT part id, unique in the scene (0 = void)
    label: int  # semantic label (0 = void)
    name: str  # part name, e.g. "leg"


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class PackedPrimitives:
    """Column arrays over P primitives, for vectorised intersection and shading."""

    kind: np.ndarray  # int8 (P,)
    center: np.ndarray  # float64 (P, 3)
    half: np.ndarray  # float64 (P, 3)
    rotation: np.ndarray  # float64 (P, 3, 3) local -> world
    color: np.ndarray  # float32 (P, 3)
    color2: np.ndarray  # float32 (P, 3)
    texture: np.ndarray  # int8 (P,)
    period: np.ndarray  # float32 (P,)
    instance: np.ndarray  # int32 (P,)
    part: np.ndarray  # int32 (P,)
    label: np.ndarray  # int32 (P,)
    cos: np.ndarray  # float64 (P,) cos(yaw)
    sin: np.ndarray  # float64 (P,) sin(yaw)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @property
    def corners(self) -> np.ndarray:
        """World corners (P, 8, 3) of every primitive's local bounding box."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = signs[None] * self.half[:, None, :]
        return np.einsum("pij,pkj->pki", self.rotation, local) + self.center[:, None, :]


def pack(prims: list[Primitive]) -> PackedPrimitives:
    return PackedPrimitives(
        kind=np.array([p.kind for p in prims], dtype=np.int8),
        center=np.array([p.center for p in prims], dtype=np.float64).reshape(-1, 3),
        half=np.array([p.half for p in prims], dtype=np.float64).reshape(-1, 3),
        rotation=np.array([yaw_matrix(p.yaw) for p in prims], dtype=np.float64).reshape(-1, 3, 3),
        color=np.array([p.color for p in prims], dtype=np.float32).reshape(-1, 3),
        color2=np.array([p.color2 for p in prims], dtype=np.float32).reshape(-1, 3),
        texture=np.array([p.texture for p in prims], dtype=np.int8),
        period=np.array([p.period for p in prims], dtype=np.float32),
        instance=np.array([p.instance for p in prims], dtype=np.int32),
        part=np.array([p.part for p in prims], dtype=np.int32),
        label=np.array([p.label for p in prims], dtype=np.int32),
        cos=np.array([np.cos(p.yaw) for p in prims], dtype=np.float64),
        sin=np.array([np.sin(p.yaw) for p in prims], dtype=np.float64),
    )
