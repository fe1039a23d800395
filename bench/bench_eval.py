"""Evaluator speed: gcseg.eval.ap (sparse intersections, vectorised matching) vs the line-by-line port of
ScanNet's script (tests/eval/official_oracle.py) on the same in-memory scenes, side by side in one run.
Full: 2 scenes of 150k vertices, 120 GT instances, 100 predicted masks each; quick: 2 x 50k vertices,
60 GT, 50 masks. Both must give the same AP / AP50 / AP25 (to 1e-6). Target: >= 20x."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from gcseg.eval.ap import SceneEval, evaluate_scenes

ORACLE = Path(__file__).resolve().parents[1] / "tests" / "eval" / "official_oracle.py"


def _oracle():
    name = "gcseg_bench_official_oracle"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ORACLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def make_scene(rng: np.random.Generator, n: int, n_gt: int, n_pred: int):
    """GT: 85 % of the vertices in `n_gt` instances of log-normal size, the rest void; masks: noisy copies,
    halves, unions of neighbours, blobs on void and random masks, confidences in [0, 1]."""
    perm = rng.permutation(n)
    sizes = rng.lognormal(0.0, 0.8, n_gt)
    sizes = np.maximum(50, (sizes / sizes.sum() * 0.85 * n).astype(int))
    bounds = np.minimum(np.cumsum(sizes), n)
    gt = np.zeros(n, np.int64)
    members = np.split(perm, bounds)
    for i, idx in enumerate(members[:n_gt]):
        gt[idx] = (1 + i % 7) * 1000 + i + 1
    void = members[n_gt] if len(members) > n_gt else np.zeros(0, np.int64)
    masks = np.zeros((n_pred, n), bool)
    for k in range(n_pred):
        kind = rng.random()
        j = int(rng.integers(n_gt))
        idx = members[j]
        if kind < 0.6:
            masks[k, idx[rng.random(idx.shape[0]) < rng.uniform(0.6, 1.0)]] = True
            masks[k, rng.integers(0, n, idx.shape[0] // 10 + 1)] = True
        elif kind < 0.7:
            masks[k, idx[: idx.shape[0] // 2]] = True
        elif kind < 0.8:
            masks[k, np.concatenate([idx, members[(j + 1) % n_gt]])] = True
        elif kind < 0.9 and void.shape[0]:
            masks[k, rng.choice(void, min(void.shape[0], 500), replace=False)] = True
        else:
            masks[k, rng.integers(0, n, int(rng.integers(50, 3000)))] = True
    return gt, masks, rng.random(n_pred)


def run(quick: bool) -> dict[str, float | int | str]:
    n, n_gt, n_pred = (50_000, 60, 50) if quick else (150_000, 120, 100)
    rng = np.random.default_rng(0)
    raw = [make_scene(rng, n, n_gt, n_pred) for _ in range(2)]
    scenes = [SceneEval(scene_id=f"s{i}", gt_ids=g, pred_masks=m, pred_scores=c) for i, (g, m, c) in enumerate(raw)]

    fast_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ours = evaluate_scenes(scenes)
        fast_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ref = _oracle().evaluate([(f"s{i}", g, None, m, c) for i, (g, m, c) in enumerate(raw)])
    oracle_time = time.perf_counter() - t0

    np.testing.assert_allclose(ours.ap_per_threshold, ref["per_threshold"], atol=1e-6, rtol=0)
    np.testing.assert_allclose([ours.ap, ours.ap50, ours.ap25],
                               [ref["all_ap"], ref["all_ap_50%"], ref["all_ap_25%"]], atol=1e-6, rtol=0)
    fast = min(fast_times)
    return {
        "scenes": len(scenes), "vertices_per_scene": n, "gt_per_scene": n_gt, "masks_per_scene": n_pred,
        "ap": round(ours.ap, 6), "ap50": round(ours.ap50, 6), "ap25": round(ours.ap25, 6),
        "vectorised_s": round(fast, 4), "official_port_s": round(oracle_time, 3),
        "speedup": round(oracle_time / fast, 1), "target_speedup": 20, "same_numbers": "yes",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
