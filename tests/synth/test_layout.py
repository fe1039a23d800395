"""Room layouts: furniture is built from parts, stays inside the room, never interpenetrates, and tall
furniture keeps clear of the camera ring (so the camera never enters an object)."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.synth.camera import camera_path, intrinsics, look_at
from gcseg.synth.catalogue import LABELS
from gcseg.synth.layout import TALL, make_layout


def _aabb(p):
    c, h = np.array(p.center), np.array(p.half)
    cy, sy = abs(np.cos(p.yaw)), abs(np.sin(p.yaw))
    ext = np.array([cy * h[0] + sy * h[1], sy * h[0] + cy * h[1], h[2]])
    return c - ext, c + ext


@pytest.mark.parametrize("seed", range(6))
def test_layout_is_physical(seed):
    lay = make_layout(np.random.default_rng(seed))
    room = lay.room
    parent = {o.instance: o.parent for o in lay.objects}

    def root(i):
        while parent.get(i, 0):
            i = parent[i]
        return i

    prims = [p for p in lay.primitives if p.instance > 0]
    assert len(lay.primitives) - len(prims) == 6  # floor, ceiling, 4 walls
    boxes = [(root(p.instance), *_aabb(p)) for p in prims]
    for r, lo, hi in boxes:
        half_room = np.array([room.length / 2, room.width / 2])
        assert (lo[:2] > -half_room).all() and (hi[:2] < half_room).all()
        assert lo[2] >= -1e-5 and hi[2] < room.height  # centres are rounded to 1e-6 m
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if boxes[i][0] != boxes[j][0]:
                inter = np.minimum(boxes[i][2], boxes[j][2]) - np.maximum(boxes[i][1], boxes[j][1])
                assert not (inter > 0.01).all(), (prims[i].name, prims[j].name)
    ring = lay.ring.points()
    for o in lay.objects:
        assert o.label in LABELS and o.label > 0
        assert len(o.parts) >= 2 and len({p for p, _ in o.parts}) == len(o.parts)
        if o.parent == 0 and o.height > TALL:
            cx, cy, hx, hy = o.footprint
            q = np.maximum(np.abs(ring - [cx, cy]) - [hx, hy], 0)
            assert np.sqrt((q**2).sum(1)).min() > lay.ring.clearance


def test_camera_path_smooth_and_looking_in():
    lay = make_layout(np.random.default_rng(0))
    poses = camera_path(np.random.default_rng(1), lay.ring, 60)
    eye = poses[:, :3, 3]
    assert (np.abs(eye[:, 0]) < lay.room.length / 2 - 0.5).all()
    assert (np.abs(eye[:, 1]) < lay.room.width / 2 - 0.5).all()
    assert (eye[:, 2] > 1.2).all() and (eye[:, 2] < 1.9).all()
    fwd = poses[:, :3, 2]
    assert (np.einsum("ij,ij->i", fwd, -eye / np.linalg.norm(eye, axis=1, keepdims=True)) > 0.5).all()  # inward
    assert np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", fwd[1:], fwd[:-1]), -1, 1))).max() < 15


def test_look_at_and_intrinsics():
    pose = look_at(np.array([0.0, 0, 1]), np.array([1.0, 0, 1]))
    np.testing.assert_allclose(pose[:3, 2], [1, 0, 0], atol=1e-12)  # z forward
    np.testing.assert_allclose(pose[:3, 1], [0, 0, -1], atol=1e-12)  # y down
    np.testing.assert_allclose(pose[:3, 0], [0, -1, 0], atol=1e-12)  # x right
    k = intrinsics(48, 64, 90.0)
    assert k[0, 0] == pytest.approx(32.0) and k[0, 2] == 31.5 and k[1, 2] == 23.5
