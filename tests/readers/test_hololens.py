"""Real capture (DeepVideoMVS HoloLens 000, ScanNet exported layout): depth of frame i back-projected with the
reader's K and poses and reprojected into frame i+1 agrees with frame i+1's depth (median |dz| < 2 cm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gcseg.geometry import backproject, project
from gcseg.readers import list_scenes, open_scene

ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hololens_000"
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason="../shared/data/hololens_000 not present")


@pytest.mark.parametrize("i", [0, 30, 60, 92])
def test_reprojection_between_neighbouring_frames(i):
    assert list_scenes("posed_rgbd", ROOT, "all") == ["hololens_000"]
    scene = open_scene("posed_rgbd", ROOT, "hololens_000")
    assert scene.num_frames == 94 and scene.image_size == (360, 540)
    a, b = scene.frame(i), scene.frame(i + 1)
    assert a.name == str(i) and a.color.shape == (360, 540, 3)
    pts, _ = backproject(a.depth, a.intrinsics, a.pose)
    u, v, z, inside = project(pts, b.intrinsics, b.pose, b.hw)
    db = np.zeros_like(z)
    db[inside] = b.depth[v[inside], u[inside]]
    ok = inside & (db > 0)
    assert ok.sum() > 0.3 * pts.shape[0]
    dz = np.abs(z[ok] - db[ok])
    assert np.median(dz) < 0.02
