"""Pixel-grid graph helpers: 4-neighbour pairs, connected components under an edge predicate, per-label
statistics (sums, quantiles, horizontal extents) without Python loops over pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class Pairs:
    """Every horizontal and vertical 4-neighbour pair (a, b) as flat pixel indices, with continuity flags."""

    a: np.ndarray  # int64 (E,)
    b: np.ndarray  # int64 (E,)
    cont: np.ndarray  # bool (E,): on one continuous surface (geometry.continuity)

    @staticmethod
    def build(hw: tuple[int, int], cont_h: np.ndarray, cont_v: np.ndarray) -> "Pairs":
        h, w = hw
        idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
        a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
        b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
        return Pairs(a, b, np.concatenate([cont_h.ravel(), cont_v.ravel()]))


def components(n: int, a: np.ndarray, b: np.ndarray, keep: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Connected components of the nodes where `nodes` is True (flat bool (n,)), joined by the pairs (a, b)
    where `keep`; labels 0..K-1 in order of each component's first node, -1 elsewhere."""
    sel = keep & nodes[a] & nodes[b]
    g = sp.coo_matrix((np.ones(int(sel.sum()), np.int8), (a[sel], b[sel])), shape=(n, n)).tocsr()
    _, lab = connected_components(g, directed=False)
    lab = np.where(nodes, lab, -1)
    return relabel(lab)


def relabel(lab: np.ndarray) -> np.ndarray:
    """Labels >= 0 renumbered 0..K-1 in order of first occurrence (deterministic); negatives become -1."""
    flat = lab.ravel()
    pos = flat >= 0
    if not pos.any():
        return np.full(lab.shape, -1, np.int64)
    uniq, first, inv = np.unique(flat[pos], return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    out = np.full(flat.shape, -1, np.int64)
    out[pos] = rank[inv]
    return out.reshape(lab.shape)


def merge_labels(n_nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union of nodes 0..n_nodes-1 along the edges (a, b): component id per node (first-occurrence order)."""
    g = sp.coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n_nodes, n_nodes)).tocsr()
    _, lab = connected_components(g, directed=False)
    return relabel(lab)


def label_sums(lab: np.ndarray, k: int, *values: np.ndarray) -> list[np.ndarray]:
    """Per-label sums of each value over pixels with lab >= 0 (flat arrays)."""
    pos = lab >= 0
    return [np.bincount(lab[pos], weights=v[pos], minlength=k) for v in values]


def label_quantiles(lab: np.ndarray, k: int, values: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """(len(qs), k) per-label quantiles (nearest rank) of `values` over pixels with lab >= 0; NaN if empty."""
    pos = np.flatnonzero(lab >= 0)
    out = np.full((len(qs), k), np.nan)
    if pos.size == 0:
        return out
    la, va = lab[pos], values[pos]
    order = np.lexsort((va, la))
    la, va = la[order], va[order]
    counts = np.bincount(la, minlength=k)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    for i, q in enumerate(qs):
        idx = start + np.floor(q * np.maximum(counts - 1, 0)).astype(np.int64)
        out[i, has] = va[idx[has]]
    return out


def horizontal_extents(lab: np.ndarray, k: int, x1: np.ndarray, x2: np.ndarray, weight: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per label: centroid (k, 2), principal axes (k, 2, 2: rows = unit axes, major first) and full lengths
    (k, 2) of a uniform rectangle with the same second moments (sqrt(12 var)) of the horizontal coordinates."""
    s_w, s1, s2, s11, s22, s12 = label_sums(lab, k, weight, weight * x1, weight * x2, weight * x1 * x1,
                                            weight * x2 * x2, weight * x1 * x2)
    w = np.maximum(s_w, 1e-12)
    m1, m2 = s1 / w, s2 / w
    c11 = np.maximum(s11 / w - m1 * m1, 0.0)
    c22 = np.maximum(s22 / w - m2 * m2, 0.0)
    c12 = s12 / w - m1 * m2
    cov = np.stack([np.stack([c11, c12], -1), np.stack([c12, c22], -1)], -2)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    lengths = np.sqrt(12.0 * np.maximum(evals[:, ::-1], 0.0))
    axes = np.swapaxes(evecs[:, :, ::-1], 1, 2)
    return np.stack([m1, m2], -1), axes, lengths, s_w
