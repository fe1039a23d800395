"""Fixtures shared across test folders: the real HoloLens capture (../shared/data/hololens_000, no GT) cut to a few
frames, as a user's folder of scans, so that tests of the whole path on a real capture stay fast."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

# the stages' `--jobs` default (gcseg.parallel): tests run them in-process on tiny data, where spawning a worker
# per core costs more than it saves; tests of the worker path pass --jobs / jobs= themselves
os.environ.setdefault("GCSEG_JOBS", "1")

HOLOLENS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hololens_000"


def cut_hololens(dest: Path, num_frames: int, *, start: int = 0) -> Path:
    """Copy frames start .. start+num_frames-1 of hololens_000 (colour, depth, pose) and its intrinsics into
    `dest` (a posed RGB-D scene folder, frames renumbered from 0); returns `dest`."""
    for sub in ("color", "depth", "pose"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for j in range(num_frames):
        i = start + j
        shutil.copy(HOLOLENS / "color" / f"{i}.jpg", dest / "color" / f"{j}.jpg")
        shutil.copy(HOLOLENS / "depth" / f"{i}.png", dest / "depth" / f"{j}.png")
        shutil.copy(HOLOLENS / "pose" / f"{i}.txt", dest / "pose" / f"{j}.txt")
    shutil.copytree(HOLOLENS / "intrinsic", dest / "intrinsic")
    return dest


@pytest.fixture(scope="session")
def hololens_scans(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """make(num_frames, start=0) -> a folder of scans holding `hololens_000` cut to `num_frames` frames (skips
    when ../shared/data/hololens_000 is absent)."""
    if not HOLOLENS.is_dir():
        pytest.skip("../shared/data/hololens_000 not present")

    def make(num_frames: int, start: int = 0) -> Path:
        root = tmp_path_factory.mktemp("scans")
        cut_hololens(root / "hololens_000", num_frames, start=start)
        return root

    return make


def _fused_mesh(scene_dir: Path, mesh: Path) -> None:
    """A vertex-only PLY of the scan's fused cloud, standing in for a benchmark mesh."""
    from gcseg.io.ply import write_ply
    from gcseg.readers.posed_rgbd import open_posed_rgbd

    cloud = open_posed_rgbd(scene_dir).reference()
    mesh.parent.mkdir(parents=True, exist_ok=True)
    write_ply(mesh, cloud.coord, cloud.color)


def as_scannet(root: Path, num_frames: int, scene_id: str = "scene0000_00") -> Path:
    """hololens_000 cut to `num_frames` in ScanNet's layout without annotation (a user's own ScanNet-style
    export: scans/<scene>/{color,depth,pose,intrinsic}/ + <scene>_vh_clean_2.ply); returns the scene folder."""
    scene = cut_hololens(root / "scans" / scene_id, num_frames)
    _fused_mesh(scene, scene / f"{scene_id}_vh_clean_2.ply")
    return scene


def as_scannetpp(root: Path, num_frames: int, scene_id: str = "0a5c013435") -> Path:
    """hololens_000 cut to `num_frames` in ScanNet++'s iPhone layout without annotation (data/<scene>/iphone/
    rgb|depth/frame_%06d, pose_intrinsic_imu.json with K for the 1920x1440 RGB, scans/mesh_aligned_0.05.ply)."""
    import json

    import numpy as np

    flat = cut_hololens(root / "flat", num_frames)
    scene = root / "data" / scene_id
    (scene / "iphone" / "rgb").mkdir(parents=True)
    (scene / "iphone" / "depth").mkdir(parents=True)
    k = np.loadtxt(flat / "intrinsic" / "intrinsic_depth.txt")[:3, :3]
    sx, sy = 1920 / 540, 1440 / 360  # the reader scales `intrinsic` from 1920x1440 to the depth size
    k_rgb = [[k[0, 0] * sx, 0.0, (k[0, 2] + 0.5) * sx - 0.5], [0.0, k[1, 1] * sy, (k[1, 2] + 0.5) * sy - 0.5],
             [0.0, 0.0, 1.0]]
    meta = {}
    for i in range(num_frames):
        stem = f"frame_{i * 10:06d}"
        shutil.copy(flat / "color" / f"{i}.jpg", scene / "iphone" / "rgb" / f"{stem}.jpg")
        shutil.copy(flat / "depth" / f"{i}.png", scene / "iphone" / "depth" / f"{stem}.png")
        meta[stem] = {"intrinsic": k_rgb, "aligned_pose": np.loadtxt(flat / "pose" / f"{i}.txt").tolist()}
    (scene / "iphone" / "pose_intrinsic_imu.json").write_text(json.dumps(meta))
    _fused_mesh(flat, scene / "scans" / "mesh_aligned_0.05.ply")
    shutil.rmtree(flat)
    return scene


@pytest.fixture(scope="session")
def capture_layouts(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[Path, Path]]:
    """make(layout, num_frames) -> (data root, scene folder) of hololens_000 cut to `num_frames` frames in the
    layout of `layout` = posed_rgbd | scannet | scannetpp (no annotation)."""
    if not HOLOLENS.is_dir():
        pytest.skip("../shared/data/hololens_000 not present")

    def make(layout: str, num_frames: int) -> tuple[Path, Path]:
        root = tmp_path_factory.mktemp(layout)
        if layout == "scannet":
            return root, as_scannet(root, num_frames)
        if layout == "scannetpp":
            return root, as_scannetpp(root, num_frames)
        return root, cut_hololens(root / "hololens_000", num_frames)

    return make
