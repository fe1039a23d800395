"""Fixtures of the pseudolabel tests: tiny posed RGB-D scenes with a reference cloud, and a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TINY_MODEL = dict(backend="torch", voxel_size=0.05, planes=(8, 8, 8, 8, 8, 8, 8, 8), hidden_dim=16, num_queries=8,
                  num_heads=2, ffn_dim=32)


def blob_cloud(seed: int, n_per: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """Two boxes of points 1 m apart, red and blue."""
    rng = np.random.default_rng(seed)
    coord = np.concatenate([rng.random((n_per, 3)) * 0.4, rng.random((n_per, 3)) * 0.4 + [1.0, 0, 0]])
    color = np.concatenate([np.tile([200, 30, 30], (n_per, 1)), np.tile([30, 30, 200], (n_per, 1))])
    return coord.astype(np.float32), color.astype(np.uint8)


def write_scene(folder: Path, seed: int) -> None:
    """One 8x6 frame in the exported layout (enough for the reader) plus reference.ply (the labelled points)."""
    from gcseg.io.ply import write_ply

    for d in ("color", "depth", "pose", "intrinsic"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 8, 3), 100, np.uint8)).save(folder / "color" / "0.png")
    Image.fromarray(np.full((6, 8), 1500, np.uint16)).save(folder / "depth" / "0.png")
    np.savetxt(folder / "pose" / "0.txt", np.eye(4))
    k = np.eye(4)
    k[0, 0] = k[1, 1] = 6.0
    k[0, 2], k[1, 2] = 3.5, 2.5
    np.savetxt(folder / "intrinsic" / "intrinsic_depth.txt", k)
    coord, color = blob_cloud(seed)
    write_ply(folder / "reference.ply", coord, color)


@pytest.fixture(scope="session")
def tiny_model_cfg() -> dict:
    """params.yaml `model:` of the tiny model (lists, as YAML holds them)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_MODEL.items()}


@pytest.fixture(scope="session")
def tiny_scenes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scenes")
    ids = ["scene_a", "scene_b", "scene_c"]
    for i, sid in enumerate(ids):
        write_scene(root / sid, i)
    (root / "splits.json").write_text(json.dumps({"train": ids[:2], "val": ids[2:]}))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    import torch

    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(**TINY_MODEL)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(path, build_model(cfg), cfg, epoch=0)
    return path
