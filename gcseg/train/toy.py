"""A toy scene generator for tests and benchmarks: a floor plus a few coloured boxes as point clusters.

Not a substitute for the synthetic RGB-D scenes of the pipeline (gcseg's `synth` stage); it only exercises the
learner on data whose right answer is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gcseg.io.samples import write_point_samples

if TYPE_CHECKING:
    from gcseg.models.mask_model import ModelConfig


def box_scene(rng: np.random.Generator, *, n_boxes: int = 4, points_per_box: int = 300, floor_points: int = 400,
              extent: float = 2.0) -> dict[str, np.ndarray]:
    """coord float32 [N,3], color uint8 [N,3], instance int32 [N] (boxes 0..n_boxes-1, floor -1 unlabelled).

    Boxes (0.25-0.5 m) stand on the floor on a grid, so they never touch; points are sampled on their surfaces."""
    coords, colors, inst = [], [], []
    cells = int(np.ceil(np.sqrt(n_boxes)))
    pitch = extent / cells
    for k in range(n_boxes):
        cx, cy = (k % cells + 0.5) * pitch, (k // cells + 0.5) * pitch
        size = rng.uniform(0.25, min(0.5, 0.7 * pitch), 3)
        p = rng.uniform(-0.5, 0.5, (points_per_box, 3))
        face = rng.integers(0, 3, points_per_box)
        p[np.arange(points_per_box), face] = np.sign(p[np.arange(points_per_box), face]) * 0.5
        p = p * size + [cx, cy, size[2] / 2 + 0.02]
        coords.append(p)
        base = rng.integers(30, 226, 3)
        colors.append(np.clip(base + rng.normal(0, 8, (points_per_box, 3)), 0, 255))
        inst.append(np.full(points_per_box, k))
    fl = np.c_[rng.uniform(0, extent, (floor_points, 2)), np.zeros(floor_points)]
    coords.append(fl)
    colors.append(np.clip(120 + rng.normal(0, 8, (floor_points, 3)), 0, 255))
    inst.append(np.full(floor_points, -1))
    return {"coord": np.concatenate(coords).astype(np.float32), "color": np.concatenate(colors).astype(np.uint8),
            "instance": np.concatenate(inst).astype(np.int32)}


def write_box_samples(folder: str | Path, *, scenes: int = 2, samples_per_scene: int = 2, seed: int = 0,
                      schema: str = "gcseg.sam_keyframes", **scene_kw: int) -> list[Path]:
    """Write `scenes` point-sample files of toy box scenes into `folder`; returns the paths (sorted)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for s in range(scenes):
        samples = {f"{i:06d}": box_scene(rng, **scene_kw) for i in range(samples_per_scene)}
        path = folder / f"scene{s:04d}.h5"
        write_point_samples(path, samples, schema=schema, scene_id=f"scene{s:04d}")
        paths.append(path)
    return paths


def tiny_model_config(**overrides: object) -> ModelConfig:
    """A very small model (torch backend) for tests and benchmarks on 2 CPU cores."""
    from gcseg.models.mask_model import ModelConfig

    kw: dict[str, object] = dict(backend="torch", voxel_size=0.05, hidden_dim=32, num_queries=8, num_heads=4,
                                 ffn_dim=64, planes=(16, 16, 32, 32, 32, 32, 16, 16), max_attn_voxels=400)
    kw.update(overrides)
    return ModelConfig(**kw)  # type: ignore[arg-type]
