"""Full-scene pseudo-labelling cost (Stage 3 data) without the network: 150 predicted masks on the surface
cloud of a box room sampled every 2 cm (quick: 2 x 2 x 1.5 m, ~50k points; full: 5 x 4 x 3 m, ~235k points).
Each mask is one or two random 0.3-1 m boxes of surface (two = spatially disconnected, to be split by DBSCAN);
scores uniform. Times select -> DBSCAN split -> overlap resolution (params.yaml defaults: top_k 150,
tau_conf 0.6, eps 0.1, min_samples 5, min_points 100), and the vectorised overlap resolution side by side
with the alternative (argmax over the stacked masks, best first)."""

from __future__ import annotations

import time

import numpy as np

from gcseg.pseudolabel.resolve import assign_points
from gcseg.pseudolabel.select import select_masks
from gcseg.pseudolabel.split import split_disconnected


def room_cloud(size: tuple[float, float, float], spacing: float = 0.02) -> np.ndarray:
    lo, hi = np.zeros(3), np.asarray(size, dtype=np.float64)
    pts = []
    for ax in range(3):
        a, b = (ax + 1) % 3, (ax + 2) % 3
        ua, ub = np.meshgrid(np.arange(spacing / 2, hi[a], spacing), np.arange(spacing / 2, hi[b], spacing),
                             indexing="ij")
        for v in (lo[ax], hi[ax]):
            p = np.zeros((ua.size, 3))
            p[:, ax], p[:, a], p[:, b] = v, ua.ravel(), ub.ravel()
            pts.append(p)
    return np.concatenate(pts).astype(np.float32)


def random_masks(coord: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    masks = np.zeros((k, len(coord)), dtype=bool)
    for i in range(k):
        for _ in range(1 + int(rng.random() < 0.3)):
            c = coord[rng.integers(len(coord))]
            half = rng.uniform(0.15, 0.5, 3)
            masks[i] |= np.all(np.abs(coord - c) <= half, axis=1)
    return masks, rng.random(k).astype(np.float32)


def argmax_resolve(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The alternative: stack the masks best-first and take the first covering one per point (argmax)."""
    order = np.argsort(-scores, kind="stable")
    stacked = masks[order]
    covered = stacked.any(axis=0)
    return np.where(covered, order[stacked.argmax(axis=0)], -1)


def run(quick: bool) -> dict[str, float | int | str]:
    rng = np.random.default_rng(0)
    coord = room_cloud((2.0, 2.0, 1.5) if quick else (5.0, 4.0, 3.0))
    masks, scores = random_masks(coord, 150, rng)

    t0 = time.perf_counter()
    keep = select_masks(masks, scores, top_k=150, tau_conf=0.6, min_points=100)
    t1 = time.perf_counter()
    split, split_scores, _ = split_disconnected(masks[keep], coord, scores=scores[keep], eps=0.1, min_samples=5,
                                                min_points=100)
    t2 = time.perf_counter()
    labels, source = assign_points(split, split_scores, min_points=100)
    t3 = time.perf_counter()
    reference = argmax_resolve(split, split_scores)
    t4 = time.perf_counter()
    labels1, source1 = assign_points(split, split_scores, min_points=1)
    t5 = time.perf_counter()
    # same winner per point (min_points=1 keeps every mask that wins a point)
    agree = bool(np.array_equal(np.where(labels1 >= 0, source1[labels1], -1), reference))
    total = t3 - t0
    return {
        "points": int(len(coord)),
        "masks_predicted": int(masks.shape[0]),
        "masks_selected": int(keep.size),
        "masks_after_split": int(split.shape[0]),
        "instances_kept": int(source.size),
        "labelled_fraction": round(float((labels >= 0).mean()), 4),
        "seconds_total": round(total, 3),
        "share_select": round((t1 - t0) / total, 3),
        "share_dbscan_split": round((t2 - t1) / total, 3),
        "share_resolve": round((t3 - t2) / total, 3),
        "resolve_speedup_vs_argmax": round((t4 - t3) / max(t5 - t4, 1e-9), 2),
        "resolve_matches_argmax": str(agree),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
