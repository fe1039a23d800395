"""Random evaluation scenes that exercise every branch of the ScanNet matching rules (tests and bench).

GT: vertices shuffled, then cut into instances of varied size (some < 100 vertices), labels drawn from a set
that includes void (0) and labels outside the evaluated set. Predictions: noisy copies of GT instances, halves,
duplicates with other confidences, unions of 2-3 instances (candidates of several GTs at IoU 0.25), blobs on
void, masks below 100 vertices, random masks; confidences with ties.
"""

from __future__ import annotations

import numpy as np


def random_scene(rng: np.random.Generator, n_vertices: int = 3000, n_gt: int = 20, n_pred: int = 30,
                 labels: tuple[int, ...] = (0, 1, 2, 3, 5, 7), with_valid: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """(gt_ids int64[N], valid bool[N] | None, pred_masks bool[K, N], scores float64[K])."""
    n = n_vertices
    perm = rng.permutation(n)
    # Instance sizes: mostly large, some small (< 100), cut from a random permutation of the vertices.
    sizes = rng.choice([40, 80, 120, 200, 400], size=n_gt, p=[0.1, 0.1, 0.3, 0.3, 0.2])
    scale = min(1.0, 0.85 * n / sizes.sum())
    sizes = np.maximum(1, (sizes * scale).astype(int))
    gt = np.zeros(n, dtype=np.int64)
    start = 0
    inst_members: list[np.ndarray] = []
    for i, s in enumerate(sizes):
        members = perm[start:start + s]
        start += s
        label = int(rng.choice(labels))
        gt[members] = label * 1000 + i + 1 if label else rng.integers(0, 1000)
        inst_members.append(members)
    # Sprinkle unlabelled (< 1000) values into the rest.
    rest = perm[start:]
    gt[rest] = np.where(rng.random(rest.shape[0]) < 0.5, 0, rng.integers(1, 1000, rest.shape[0]))
    void_vertices = rest

    masks = []
    for _ in range(n_pred):
        kind = rng.integers(0, 8)
        m = np.zeros(n, dtype=bool)
        if kind <= 2:  # noisy copy of one instance
            members = inst_members[rng.integers(len(inst_members))]
            keep = members[rng.random(members.shape[0]) < rng.uniform(0.5, 1.0)]
            m[keep] = True
            extra = rng.integers(0, n, size=int(rng.integers(0, max(1, members.shape[0] // 2))))
            m[extra] = True
        elif kind == 3:  # half of an instance
            members = inst_members[rng.integers(len(inst_members))]
            m[members[: members.shape[0] // 2]] = True
        elif kind == 4:  # union of 2-3 instances: several GT candidates at IoU 0.25
            for j in rng.choice(len(inst_members), size=int(rng.integers(2, 4)), replace=False):
                m[inst_members[j]] = True
        elif kind == 5:  # blob on void
            if void_vertices.shape[0]:
                m[rng.choice(void_vertices, size=min(void_vertices.shape[0], int(rng.integers(50, 300))),
                             replace=False)] = True
            m[rng.integers(0, n, size=5)] = True
        elif kind == 6:  # duplicate of an earlier mask (different confidence)
            if masks:
                m = masks[int(rng.integers(len(masks)))].copy()
        else:  # random mask, sometimes tiny
            m[rng.integers(0, n, size=int(rng.choice([30, 150, 600])))] = True
        masks.append(m)
    pred = np.stack(masks) if masks else np.zeros((0, n), dtype=bool)
    scores = np.round(rng.random(n_pred), 1)  # rounding makes ties
    valid = rng.random(n) > 0.05 if with_valid else None
    return gt, valid, pred, scores
