"""Tiny labelled scenes for the ablation / eval-stage tests: posed RGB-D frames whose pixels are exactly the
reference points (so lifting is exact), GT on the reference cloud, sam2_track-schema artifacts, tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 24, 32
DEPTH_MM = 1500
K = np.array([[20.0, 0, (W - 1) / 2], [0, 20.0, (H - 1) / 2], [0, 0, 1]])
TINY_MODEL = dict(backend="torch", voxel_size=0.05, planes=(8, 8, 8, 8, 8, 8, 8, 8), hidden_dim=16, num_queries=8,
                  num_heads=2, ffn_dim=32)


def gt_images() -> tuple[np.ndarray, np.ndarray]:
    """(instance, label) per pixel: left half object 1 (label 2, 384 px), right-top object 2 (label 3, 192 px),
    right-bottom void (instance 0, label 0: a wall)."""
    inst = np.zeros((H, W), np.int32)
    lab = np.zeros((H, W), np.int32)
    inst[:, : W // 2], lab[:, : W // 2] = 1, 2
    inst[: H // 2, W // 2:], lab[: H // 2, W // 2:] = 2, 3
    return inst, lab


def reference_points() -> tuple[np.ndarray, np.ndarray]:
    """World points of every pixel at 1.5 m (identity pose) and their colours, in pixel order."""
    from gcseg.geometry import backproject

    depth = np.full((H, W), DEPTH_MM / 1000.0, np.float32)
    pts, pix = backproject(depth, K, np.eye(4))
    assert pix.shape[0] == H * W
    color = np.zeros((H * W, 3), np.uint8)
    inst, _ = gt_images()
    color[inst.reshape(-1) == 1] = (200, 30, 30)
    color[inst.reshape(-1) == 2] = (30, 30, 200)
    color[inst.reshape(-1) == 0] = (120, 120, 120)
    return pts.astype(np.float32), color


def write_scene(folder: Path, num_frames: int = 2) -> None:
    """posed_rgbd layout: num_frames identical views + reference.ply with instance and label."""
    from gcseg.io.ply import write_ply

    for d in ("color", "depth", "pose", "intrinsic"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    coord, color = reference_points()
    for i in range(num_frames):
        Image.fromarray(color.reshape(H, W, 3)).save(folder / "color" / f"{i}.png")
        Image.fromarray(np.full((H, W), DEPTH_MM, np.uint16)).save(folder / "depth" / f"{i}.png")
        np.savetxt(folder / "pose" / f"{i}.txt", np.eye(4))
    k4 = np.eye(4)
    k4[:3, :3] = K
    np.savetxt(folder / "intrinsic" / "intrinsic_depth.txt", k4)
    inst, lab = gt_images()
    write_ply(folder / "reference.ply", coord, color, instance=inst.reshape(-1), label=lab.reshape(-1))


def perfect_id_maps(num_frames: int = 2) -> np.ndarray:
    """Tracked id maps that match the GT exactly (track ids 3 and 7), uint16 (F, H, W)."""
    inst, _ = gt_images()
    m = np.zeros((H, W), np.uint16)
    m[inst == 1], m[inst == 2] = 3, 7
    return np.stack([m] * num_frames)


def write_tracks(path: Path, scene_id: str, id_maps: np.ndarray, labels: np.ndarray | None = None,
                 shares: np.ndarray | None = None, diagnostics: dict | None = None) -> None:
    """A gcseg.sam2_track artifact: the reference cloud with its lifted labels and their vote shares (default:
    1 on labelled points, every view agrees), the id maps and their frames, optionally a diagnostics group."""
    from gcseg.io.samples import write_point_samples

    coord, color = reference_points()
    if labels is None:  # one view's ids as the lifted labels (-1 = unlabelled)
        labels = id_maps[0].reshape(-1).astype(np.int32)
        labels[labels == 0] = -1
    if shares is None:
        shares = (np.asarray(labels) >= 0).astype(np.float32)
    extra = {"id_maps": id_maps.astype(np.uint16), "frames": np.arange(id_maps.shape[0], dtype=np.int32)}
    if diagnostics is not None:
        extra["diagnostics"] = diagnostics
    votes = np.where(np.asarray(labels) >= 0, id_maps.shape[0], 0).astype(np.int32)  # every view voted
    write_point_samples(path, {"scene": {"coord": coord, "color": color, "instance": labels,
                                         "share": np.asarray(shares, np.float32), "votes": votes}},
                        schema="gcseg.sam2_track", scene_id=scene_id, extra=extra)


def write_dataset(root: Path, ids: tuple[str, ...] = ("scene_a", "scene_b"), val: tuple[str, ...] = ("scene_b",)
                  ) -> Path:
    for sid in ids:
        write_scene(root / sid)
    (root / "splits.json").write_text(json.dumps({"train": [s for s in ids if s not in val], "val": list(val)}))
    return root


def save_tiny_model(path: Path, seed: int) -> Path:
    import torch

    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(seed)
    cfg = ModelConfig(**TINY_MODEL)
    save_checkpoint(path, build_model(cfg), cfg, epoch=0)
    return path
