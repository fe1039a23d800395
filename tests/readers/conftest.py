"""Format-exact tiny scenes for the reader tests (written by the tests, a few KB each).

Geometry: a pinhole camera (f = 30 px at 32x24 depth, c = (15.5, 11.5)) looking down +z at a wall 2 m away,
with a box face 1.5 m away in the middle (instance 1, part 7); frame i is translated by 0.05 m * i along x.
"""

from __future__ import annotations

import json
import sys
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

H, W = 24, 32  # depth size
CH, CW = 48, 64  # colour size (2x depth, as ScanNet's colour is larger than its depth)
F, CX, CY = 30.0, 15.5, 11.5


def k4(f: float = F, cx: float = CX, cy: float = CY) -> np.ndarray:
    k = np.eye(4)
    k[0, 0], k[1, 1], k[0, 2], k[1, 2] = f, f, cx, cy
    return k


def pose_of(i: int) -> np.ndarray:
    p = np.eye(4)
    p[0, 3] = 0.05 * i
    return p


def depth_mm() -> np.ndarray:
    d = np.full((H, W), 2000, np.uint16)
    d[8:16, 10:22] = 1500
    d[0, 0] = 0  # one invalid pixel
    return d


def instance_img() -> np.ndarray:
    m = np.zeros((H, W), np.uint16)
    m[8:16, 10:22] = 1
    return m


def write_matrix(path: Path, m: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(f"{x:f}" for x in row) for row in m) + "\n")


def write_frames(folder: Path, stems: list[str], *, extras: bool = False, color_size: tuple[int, int] = (CH, CW),
                 nonfinite: set[str] = frozenset()) -> None:
    """ScanNet exported layout: color/<i>.jpg, depth/<i>.png (uint16 mm), pose/<i>.txt, intrinsic/*.txt."""
    rng = np.random.default_rng(0)
    for d in ("color", "depth", "pose"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    for j, s in enumerate(stems):
        col = rng.integers(0, 255, (*color_size, 3), dtype=np.uint8)
        Image.fromarray(col).save(folder / "color" / f"{s}.jpg", quality=95)
        Image.fromarray(depth_mm()).save(folder / "depth" / f"{s}.png")
        p = pose_of(j)
        if s in nonfinite:
            p[:] = -np.inf
        write_matrix(folder / "pose" / f"{s}.txt", p)
        if extras:
            (folder / "instance").mkdir(exist_ok=True)
            (folder / "part").mkdir(exist_ok=True)
            Image.fromarray(instance_img()).save(folder / "instance" / f"{s}.png")
            Image.fromarray((instance_img() * 7).astype(np.uint16)).save(folder / "part" / f"{s}.png")
    write_matrix(folder / "intrinsic" / "intrinsic_depth.txt", k4())
    sx = color_size[1] / W
    write_matrix(folder / "intrinsic" / "intrinsic_color.txt", k4(F * sx, (CX + 0.5) * sx - 0.5, (CY + 0.5) * sx - 0.5))


def write_mesh_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray, faces: np.ndarray) -> None:
    """ScanNet's _vh_clean_2.ply layout, header written by hand: binary little-endian, vertex x y z float +
    red green blue alpha uchar, face list uchar int vertex_indices."""
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by a gcseg test\n"
              f"element vertex {len(xyz)}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    body = b"".join(struct.pack("<fffBBBB", *map(float, p), *map(int, c), 255) for p, c in zip(xyz, rgb))
    body += b"".join(struct.pack("<Biii", 3, *map(int, f)) for f in faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode("ascii") + body)


def tiny_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """12 vertices in 4 over-segments of 3 (one triangle each): xyz, rgb, faces, segIndices (ids 10, 11, 12, 13)."""
    xyz = np.arange(36, dtype=np.float32).reshape(12, 3) / 10
    rgb = (np.arange(36).reshape(12, 3) * 7 % 256).astype(np.uint8)
    faces = np.arange(12).reshape(4, 3)
    segs = np.repeat([10, 11, 12, 13], 3)
    return xyz, rgb, faces, segs


LABELS_TSV = (
    "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\n"
    "1\twall\twall\t8277\t1\t12\twall\twall\n"
    "2\tchair\tchair\t4646\t5\t4\tchair\tchair\n"
    "4\ttable\ttable\t1170\t7\t5\ttable\ttable\n"
    "1500\tceiling fan\tfan\t1\t40\t7\tfan\totherprop\n"
)


@pytest.fixture
def posed_scene(tmp_path):
    """A posed_rgbd scene with non-padded, non-contiguous stems (numeric order 0, 1, 2, 10) and GT extras."""

    def make(name: str = "scene_a", stems=("0", "1", "2", "10"), extras: bool = True) -> Path:
        folder = tmp_path / name
        write_frames(folder, list(stems), extras=extras)
        return folder

    return make


@pytest.fixture
def scannet_root(tmp_path) -> Path:
    root = tmp_path / "scannet"
    sid = "scene0000_00"
    sd = root / "scans" / sid
    write_frames(sd, ["0", "1", "2", "3"], nonfinite={"2"})
    xyz, rgb, faces, segs = tiny_mesh()
    write_mesh_ply(sd / f"{sid}_vh_clean_2.ply", xyz, rgb, faces)
    (sd / f"{sid}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(
        {"params": {"kThresh": "0.0001", "segMinVerts": "20"}, "sceneId": sid, "segIndices": segs.tolist()}))
    (sd / f"{sid}.aggregation.json").write_text(json.dumps({
        "sceneId": f"scannet.{sid}", "appId": "Aggregator.v2",
        "segGroups": [
            {"id": 0, "objectId": 0, "segments": [10], "label": "wall"},
            {"id": 1, "objectId": 1, "segments": [11, 12], "label": "chair"},
            {"id": 2, "objectId": 2, "segments": [13], "label": "table"},
        ],
        "segmentsFile": f"scannet.{sid}_vh_clean_2.0.010000.segs.json"}))
    (root / "scannetv2-labels.combined.tsv").write_text(LABELS_TSV)
    # a second scene (frames only, test split: no annotation) and the split files
    write_frames(root / "scans" / "scene0001_00", ["0", "1", "2"])
    write_mesh_ply(root / "scans" / "scene0001_00" / "scene0001_00_vh_clean_2.ply", xyz, rgb, faces)
    (root / "scannetv2_train.txt").write_text("scene0001_00\n")
    (root / "scannetv2_val.txt").write_text(f"{sid}\nscene0999_00\n")
    return root


@pytest.fixture
def scannetpp_root(tmp_path) -> Path:
    root = tmp_path / "scannetpp"
    sid = "0a5c013435"
    sd = root / "data" / sid
    iph = sd / "iphone"
    (iph / "rgb").mkdir(parents=True)
    (iph / "depth").mkdir(parents=True)
    meta = {}
    s = 1920 / W  # intrinsic refers to the 1920x1440 RGB
    k = [[F * s, 0.0, (CX + 0.5) * s - 0.5], [0.0, F * s, (CY + 0.5) * s - 0.5], [0.0, 0.0, 1.0]]
    rng = np.random.default_rng(1)
    for i in range(3):
        stem = f"frame_{i * 10:06d}"
        Image.fromarray(rng.integers(0, 255, (CH, CW, 3), dtype=np.uint8)).save(iph / "rgb" / f"{stem}.jpg")
        Image.fromarray(depth_mm()).save(iph / "depth" / f"{stem}.png")
        meta[stem] = {"timestamp": 0.1 * i, "intrinsic": k, "pose": pose_of(i).tolist(),
                      "aligned_pose": pose_of(i).tolist(), "imu": {}}
    (iph / "pose_intrinsic_imu.json").write_text(json.dumps(meta))
    xyz, rgb, faces, segs = tiny_mesh()
    write_mesh_ply(sd / "scans" / "mesh_aligned_0.05.ply", xyz, rgb, faces)
    (sd / "scans" / "segments.json").write_text(json.dumps({"segIndices": segs.tolist()}))
    obb = {"centroid": [0, 0, 0], "axesLengths": [1, 1, 1], "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1]}
    (sd / "scans" / "segments_anno.json").write_text(json.dumps({"segGroups": [
        {"id": 0, "objectId": 0, "label": "chair", "segments": [10, 11], "obb": obb},
        {"id": 1, "objectId": 1, "label": "wall", "segments": [12], "obb": obb},
        {"id": 2, "objectId": 2, "label": "lamp", "segments": [13], "obb": obb},
    ]}))
    return root


@pytest.fixture(scope="session")
def fx():
    """This module (constants and writers), for tests: --import-mode=importlib cannot import conftest."""
    return sys.modules[__name__]
