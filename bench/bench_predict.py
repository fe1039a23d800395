"""Whole-scene prediction memory: the mask model at inference attends with every query to every voxel of a level
(params.yaml `model.test_attn_voxels: null`), so one attention call holds queries x keys x heads weights. With
`model.test_attn_mb` the decoder runs its attention over chunks of queries instead; this area predicts the same
scene with the same random-init model both ways, side by side, each in a fresh process, and reports peak RSS, time
and how far the outputs differ (the raw logits relative to their largest; random weights give few or no masks
above the score threshold, so `masks_equal` may compare empty sets: the trained default's masks were checked
equal on the val rooms, docs/model_study.md round 14).

Scene: one synthetic room (`gcseg.synth`, seed 0; default 70 frames at 320x240 as the embedded default, ~220 k
reference points; quick: 12 frames at 160x120) with its superpoints (params.yaml `superpoints`), the model of
params.yaml `model:` with random weights (seeded) and its test_queries (4 000 seeds: the default's inference).
Target: chunked peak RSS at most 0.6x the unchunked one on the default-sized room.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.bench_scale import _peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
CHUNK_MB = 256.0  # params.yaml model.test_attn_mb


def _model_cfg():
    import yaml

    from gcseg.models.config import ModelConfig

    return ModelConfig.model_validate(yaml.safe_load((ROOT / "params.yaml").read_text())["model"])


def write_scene(path: Path, quick: bool) -> int:
    """The room's reference cloud and superpoints to `path` (npz); returns its point count."""
    import yaml

    from gcseg.superpoints import SuperpointConfig, compute_superpoints
    from gcseg.synth.generate import generate_scene

    size = (dict(num_frames=12, height=120, width=160, point_spacing=0.05) if quick
            else dict(num_frames=70, height=240, width=320))
    ref = generate_scene(0, depth_noise=0.002, hole_fraction=0.02, **size).reference
    sp_cfg = SuperpointConfig(**yaml.safe_load((ROOT / "params.yaml").read_text())["superpoints"])
    sp = compute_superpoints(ref.coord, ref.color, sp_cfg)
    np.savez(path, coord=ref.coord, color=ref.color, superpoint=sp)
    return len(ref.coord)


def predict_child(scene: str, attn_mb: float | None, out: str) -> dict[str, float]:
    """In a fresh process: build the seeded random-init model, predict the scene, save masks and scores."""
    import time

    import gcseg  # noqa: F401  (kernel pins before torch)
    import torch

    from gcseg.determinism import configure_torch
    from gcseg.models.inference import point_masks, scene_logits
    from gcseg.models.mask_model import build_model

    configure_torch()
    d = np.load(scene)
    torch.manual_seed(0)
    model = build_model(_model_cfg().model_copy(update={"test_attn_mb": attn_mb})).eval()
    start = _peak_rss_mb()
    t0 = time.perf_counter()
    obj, logits, to_point = scene_logits(model, d["coord"], d["color"], d["superpoint"])  # the network: chunked
    t1 = time.perf_counter()
    forward_peak = _peak_rss_mb()
    masks, scores = point_masks(model, obj, logits, to_point)  # the rest of predict_points
    wall = time.perf_counter() - t0
    np.savez(out, masks=masks, scores=scores, obj=obj.numpy(), logits=logits.numpy())
    return {"start_rss_mb": round(start, 1), "forward_peak_rss_mb": round(forward_peak, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "forward_s": round(t1 - t0, 2), "predict_s": round(wall, 2),
            "masks": int(len(masks))}


def _child(scene: Path, attn_mb: float | None, out: Path) -> dict[str, float]:
    code = ("import json, sys; sys.path.insert(0, %r); from bench.bench_predict import predict_child; "
            "print(json.dumps(predict_child(%r, %r, %r)))" % (str(ROOT), str(scene), attn_mb, str(out)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict[str, float | int | str | bool]:
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene.npz"
        n = write_scene(scene, quick)
        full = _child(scene, None, Path(tmp) / "all.npz")
        part = _child(scene, CHUNK_MB, Path(tmp) / "chunked.npz")
        a, b = np.load(Path(tmp) / "all.npz"), np.load(Path(tmp) / "chunked.npz")
        same_masks = a["masks"].shape == b["masks"].shape and bool(np.array_equal(a["masks"], b["masks"]))
        score_diff = float(np.abs(a["scores"] - b["scores"]).max()) if same_masks and len(a["scores"]) else None
        # the network's raw output: float rounding of differently shaped matrix products, nothing else
        logit_diff = max(float(np.abs(a[k] - b[k]).max() / max(np.abs(a[k]).max(), 1e-12)) for k in ("logits", "obj"))
    # what predicting added over the process's start (model and scene loaded): the part the chunking bounds
    grow_all = full["peak_rss_mb"] - full["start_rss_mb"]
    grow_chunk = part["peak_rss_mb"] - part["start_rss_mb"]
    return {"reference_points": n, "test_attn_mb": CHUNK_MB,
            "all_queries_peak_rss_mb": full["peak_rss_mb"], "chunked_peak_rss_mb": part["peak_rss_mb"],
            "peak_rss_ratio_chunked_over_all": round(part["peak_rss_mb"] / full["peak_rss_mb"], 3),
            "predict_growth_ratio_chunked_over_all": round(grow_chunk / max(grow_all, 1e-6), 3),
            "time_ratio_chunked_over_all": round(part["predict_s"] / full["predict_s"], 3),
            "all_queries_predict_s": full["predict_s"], "chunked_predict_s": part["predict_s"],
            "all_queries_forward_peak_rss_mb": full["forward_peak_rss_mb"],
            "chunked_forward_peak_rss_mb": part["forward_peak_rss_mb"],
            "forward_growth_ratio_chunked_over_all": round(
                (part["forward_peak_rss_mb"] - part["start_rss_mb"]) / max(full["forward_peak_rss_mb"] - full["start_rss_mb"], 1e-6), 3),
            "masks": full["masks"], "masks_equal": same_masks, "max_score_abs_diff": score_diff,
            "max_logit_rel_diff": logit_diff}
