"""Superpoint region growing on multi-view 2D masks: SAI3D (Yin et al., CVPR 2024; code `yd-yin/SAI3D@1d9a6a2`,
`sai3d_base.py`, `helpers/sai3d_utils.py`, settings of `scripts/seg_scannet.sh`), training-free. SAM2Object
(`jihuaizhaohd/SAM2Object@296aaf6`) grows regions the same way from SAM2-tracked masks; run it on the tracked id
maps of `sam2_track` for that variant.

Primitives start as superpoints. In every view, each primitive has a histogram of the 2D mask ids its seen points
read (id 0 = unseen or no mask is left out), L2-normalised; two primitives' similarity in a view is the cosine of
their histograms (SAI3D's "2-norm" metric, ``(2 - |a - b|^2) / 2``), weighted by the product of their seen
fractions in that view (share of their points that read a mask id). The affinity of two primitives within
``max_neighbor_distance`` hops of each other (neighbours: the primitives of each point's ``k_graph`` nearest
points) is the weighted mean over views. Region growing (`assign_seg_label`): primitives in index order seed
regions that grow breadth-first; a direct neighbour joins when its affinity to the region's primitives near it
(hop 1 weight 1, hop 2 weight ``distance_decay``, each weighted by its point count) reaches the threshold. The
regions of one round are the primitives of the next, with the threshold falling (0.9 -> 0.5 in 5 rounds). After
the last round, regions of <= 2 primitives and < ``merge_points`` points join the neighbour of highest summed
affinity, or are dropped (`merge_small_segs`).

The vectorised form: with ``W[s, (view, id)] = seen[s, view] * hist[s, view, id] / |hist[s, view]|``, the summed
weighted similarity of primitives i and j is the dot product ``W[i] . W[j]`` and the summed weight
``seen[i] . seen[j]``: two sparse row products per neighbour pair, no per-view loop. Only the region growing
itself is sequential (each decision depends on the region so far) and loops over primitives.

Differences from the reference code: visibility is the pipeline's point association (depth agreement within
``max_dist`` metres, as `sam2_track` lifts) instead of a 15 % relative depth tolerance; and each region gets a
confidence instead of SAI3D's constant 1.0: the share of its mask-labelled point-views that carry the region's
dominant mask id in their view (1.0 for a region one mask covers in every view, lower for a region stitched
from several masks).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from gcseg.baselines.views import Instances, PointViews


@dataclass(frozen=True)
class Sai3dConfig:
    """Defaults: SAI3D `scripts/seg_scannet.sh` and `sai3d.py` / `sai3d_base.py` (see params.yaml)."""

    thresholds: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5)  # THRES_CONNECT="0.9,0.5,5" (np.linspace)
    max_neighbor_distance: int = 2  # MAX_NEIGHBOR_DISTANCE
    distance_decay: float = 0.5  # DIS_DECAY
    k_graph: int = 8  # get_seg_data k_graph
    merge_points: int = 200  # THRES_MERGE
    merge_max_primitives: int = 2  # merge_small_segs: regions of more primitives are never merged

    def __post_init__(self) -> None:
        if not self.thresholds or any(not 0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must be a non-empty list of values in [0, 1], got {self.thresholds}")
        if self.max_neighbor_distance < 1 or self.k_graph < 2 or self.merge_max_primitives < 1:
            raise ValueError("max_neighbor_distance >= 1, k_graph >= 2 and merge_max_primitives >= 1 required")
        if not 0.0 < self.distance_decay <= 1.0 or self.merge_points < 0:
            raise ValueError("distance_decay must lie in (0, 1] and merge_points be >= 0")


def point_neighbours(coord: np.ndarray, k: int) -> np.ndarray:
    """The `k` nearest points of every point (itself included), int64 (N, k)."""
    k = min(k, coord.shape[0])
    _, nn = cKDTree(coord).query(coord, k=k)
    return np.asarray(nn, np.int64).reshape(coord.shape[0], k)


def neighbour_layers(prim: np.ndarray, knn: np.ndarray, num: int, depth: int) -> list[sp.csr_matrix]:
    """Boolean (S, S) matrices: layer d holds primitive pairs at most d + 1 hops apart (get_seg_data's
    seg_indirect_neighbors), hop 1 = some point of one has a point of the other among its k nearest."""
    a = np.repeat(prim, knn.shape[1])
    b = prim[knn.reshape(-1)]
    off = a != b
    d1 = sp.csr_matrix((np.ones(int(off.sum()), bool), (a[off], b[off])), shape=(num, num))
    d1 = ((d1 + d1.T) > 0).astype(bool)
    layers = [d1]
    for _ in range(1, depth):
        nxt = ((layers[-1].astype(np.int32) @ d1.astype(np.int32) + layers[-1]) > 0).tocoo()
        off = nxt.row != nxt.col
        layers.append(sp.csr_matrix((np.ones(int(off.sum()), bool), (nxt.row[off], nxt.col[off])),
                                    shape=(num, num)))
    return layers


def _labelled(views: PointViews) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = views.label > 0
    return views.point[m].astype(np.int64), views.view[m].astype(np.int64), views.label[m]


def view_features(prim: np.ndarray, num: int, views: PointViews) -> tuple[sp.csr_matrix, np.ndarray]:
    """(W, seen): W (S, columns = distinct (view, id)) seen-weighted L2-normalised id histograms and seen (S, V)
    the fraction of each primitive's points that read a mask id in each view."""
    point, view, label = _labelled(views)
    count = np.bincount(prim, minlength=num).astype(np.float64)
    nv = views.num_views
    seen = np.zeros((num, nv), np.float64)
    if point.size == 0:
        return sp.csr_matrix((num, 0)), seen
    p = prim[point]
    np.add.at(seen, (p, view), 1.0)
    seen /= np.maximum(count, 1.0)[:, None]
    # histogram entries (primitive, view, id) with counts
    _, col = np.unique(view * (int(label.max()) + 1) + label, return_inverse=True)
    key = p * (int(col.max()) + 1) + col
    uk, cnt = np.unique(key, return_counts=True)
    rows, cols = uk // (int(col.max()) + 1), uk % (int(col.max()) + 1)
    colview = np.zeros(int(col.max()) + 1, np.int64)
    colview[col] = view
    cnt = cnt.astype(np.float64)
    norm2 = np.zeros((num, nv))
    np.add.at(norm2, (rows, colview[cols]), cnt * cnt)
    vals = seen[rows, colview[cols]] * cnt / np.sqrt(norm2[rows, colview[cols]])
    w = sp.csr_matrix((vals, (rows, cols)), shape=(num, int(col.max()) + 1))
    return w, seen


def affinity(pairs_i: np.ndarray, pairs_j: np.ndarray, w: sp.csr_matrix, seen: np.ndarray,
             block: int = 1 << 16) -> np.ndarray:
    """Visibility-weighted mean histogram similarity of primitive pairs (0 where never seen together)."""
    out = np.zeros(pairs_i.size, np.float64)
    for a in range(0, pairs_i.size, block):
        i, j = pairs_i[a:a + block], pairs_j[a:a + block]
        num = np.asarray(w[i].multiply(w[j]).sum(axis=1)).ravel()
        den = np.einsum("ij,ij->i", seen[i], seen[j])
        out[a:a + block] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return out


def grow_regions(layers: list[sp.csr_matrix], adj: sp.csr_matrix, count: np.ndarray, threshold: float,
                 decay: float) -> np.ndarray:
    """assign_seg_label: region label (1..R) per primitive. Primitive j joins the region r of a neighbour when
    sum_k w_k adj[j, k] / sum_k w_k >= threshold over its primitives k in r within len(layers) hops, with
    w_k = decay^(hops - 1) * count[k]."""
    num = count.shape[0]
    # per primitive j: its neighbours k within the hop limit, weight w_k and w_k * adj[j, k]
    hop = sp.csr_matrix((num, num), dtype=np.float64)
    prev = None
    for d, layer in enumerate(layers):
        ring = layer if prev is None else (layer.astype(np.int8) - prev.astype(np.int8)) > 0
        hop = hop + ring.astype(np.float64) * decay ** d
        prev = layer
    hop = hop.tocsr()
    hop.sort_indices()
    ind, ptr = hop.indices, hop.indptr
    weight = hop.data * count[ind]
    aff = np.asarray(adj[np.repeat(np.arange(num), np.diff(ptr)), ind]).ravel() * weight
    # a primitive with zero affinity to every primitive near it can never join a region (at a threshold > 0):
    # leave it out of the neighbour lists the growth walks (unmasked surfaces are mostly such primitives)
    direct = layers[0].tocoo()
    if threshold > 0:
        hopeless = np.add.reduceat(np.r_[aff, 0.0], np.minimum(ptr[:-1], aff.size)) <= 0
        hopeless |= np.diff(ptr) == 0
        keep = ~hopeless[direct.col]
        direct = sp.coo_matrix((direct.data[keep], (direct.row[keep], direct.col[keep])), shape=direct.shape)
    direct = direct.tocsr()
    direct.sort_indices()
    d_ind, d_ptr = direct.indices, direct.indptr
    labels = np.zeros(num, np.int64)
    region = 0
    for seed in range(num):
        if labels[seed]:
            continue
        region += 1
        labels[seed] = region
        queue = deque([seed])
        while queue:
            v = queue.popleft()
            for j in d_ind[d_ptr[v]:d_ptr[v + 1]]:
                if labels[j]:
                    continue
                a, b = ptr[j], ptr[j + 1]
                inside = labels[ind[a:b]] == region
                den = weight[a:b][inside].sum()
                if den > 0 and aff[a:b][inside].sum() / den >= threshold:
                    labels[j] = region
                    queue.append(j)
    return labels


def merge_small(labels: np.ndarray, adj: sp.csr_matrix, count: np.ndarray, min_points: int,
                max_primitives: int) -> np.ndarray:
    """merge_small_segs: regions of <= max_primitives primitives and < min_points points join the region of the
    primitive with the highest summed affinity to them that is not itself waiting; repeated until nothing
    changes; those left are dropped (label 0)."""
    ids, prims = np.unique(labels, return_counts=True)
    points = np.bincount(labels, weights=count, minlength=int(ids.max(initial=0)) + 1)
    small_ids = ids[(prims <= max_primitives) & (points[ids] < min_points)]
    done = ~np.isin(labels, small_ids)
    merged = labels.copy()
    if small_ids.size == 0:
        return merged
    # summed affinity of every small region to every primitive: one sparse product
    rank = np.searchsorted(small_ids, labels)
    member = np.flatnonzero(~done)
    sims = (sp.csr_matrix((np.ones(member.size), (rank[member], member)), shape=(small_ids.size, labels.size))
            @ adj.tocsr()).tocsr()
    sims.sort_indices()
    by_region = member[np.argsort(rank[member], kind="stable")]  # primitives of each small region, grouped
    bounds = np.concatenate([[0], np.cumsum(np.bincount(rank[member], minlength=small_ids.size))])
    targets = []
    for r in range(small_ids.size):
        cols = sims.indices[sims.indptr[r]:sims.indptr[r + 1]]
        vals = sims.data[sims.indptr[r]:sims.indptr[r + 1]]
        # the reference sorts all primitives by summed affinity (descending; ties: higher index first) and
        # stops at the first zero: only primitives with a positive sum can be targets
        order = np.lexsort((-cols, -vals))
        targets.append(cols[order[vals[order] > 0]])
    changed = True
    while changed:
        changed = False
        for r in range(small_ids.size):
            seg = by_region[bounds[r]:bounds[r + 1]]
            if done[seg[0]]:
                continue
            for t in targets[r]:
                if done[t]:
                    merged[seg] = merged[t]
                    done[seg] = True
                    changed = True
                    break
    merged[~done] = 0
    return merged


def region_confidence(labels: np.ndarray, views: PointViews) -> np.ndarray:
    """Per region 1..R: the share of its mask-labelled (point, view) pairs that read the region's most frequent
    id of that view; 0 for a region no mask ever covers."""
    num = int(labels.max(initial=0))
    point, view, label = _labelled(views)
    r = labels[point]
    keep = r > 0
    r, view, label = r[keep], view[keep], label[keep]
    total = np.bincount(r, minlength=num + 1).astype(np.float64)
    if r.size == 0:
        return np.zeros(num)
    # count per (region, view, id), then the largest count per (region, view)
    width = int(label.max()) + 1
    uk, cnt = np.unique((r * views.num_views + view) * width + label, return_counts=True)
    rv = uk // width
    order = np.lexsort((-cnt, rv))
    rv, cnt = rv[order], cnt[order]
    reg = rv // views.num_views
    first = np.flatnonzero(np.r_[True, rv[1:] != rv[:-1]])
    top = np.bincount(reg[first], weights=cnt[first], minlength=num + 1)
    return np.where(total > 0, top / np.maximum(total, 1.0), 0.0)[1:]


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels -> 0..S-1 in order of first value (num_to_natural)."""
    _, inv = np.unique(labels, return_inverse=True)
    return inv.astype(np.int64)


def sai3d(coord: np.ndarray, superpoints: np.ndarray, views: PointViews, cfg: Sai3dConfig | None = None
          ) -> Instances:
    """Instances of a scene by superpoint region growing on the masks of its views (see the module doc).
    superpoints: int (N,) superpoint id per reference point (any non-negative ids)."""
    cfg = cfg or Sai3dConfig()
    coord = np.asarray(coord, np.float64)
    sp_ids = np.asarray(superpoints)
    if coord.shape != (views.num_points, 3) or sp_ids.shape != (views.num_points,):
        raise ValueError(f"coord {coord.shape} / superpoints {sp_ids.shape} do not match the views' "
                         f"{views.num_points} points")
    if sp_ids.dtype.kind not in "iu" or (sp_ids.size and sp_ids.min() < 0):
        raise ValueError("superpoints must be non-negative integer ids, one per point")
    if views.num_points == 0:
        return Instances.from_lists(0, [], [])
    knn = point_neighbours(coord, cfg.k_graph)
    prim = _relabel(sp_ids)
    point_labels = prim
    rounds = list(cfg.thresholds)
    for it, threshold in enumerate(rounds):
        prim = _relabel(point_labels)
        num = int(prim.max()) + 1
        count = np.bincount(prim, minlength=num).astype(np.float64)
        layers = neighbour_layers(prim, knn, num, cfg.max_neighbor_distance)
        pairs = sp.triu(layers[-1], k=1).tocoo()
        w, seen = view_features(prim, num, views)
        vals = affinity(pairs.row.astype(np.int64), pairs.col.astype(np.int64), w, seen)
        adj = sp.csr_matrix((np.r_[vals, vals], (np.r_[pairs.row, pairs.col], np.r_[pairs.col, pairs.row])),
                            shape=(num, num))
        seg = grow_regions(layers, adj, count, threshold, cfg.distance_decay)
        if it == len(rounds) - 1 and cfg.merge_points > 0:
            seg = merge_small(seg, adj, count, cfg.merge_points, cfg.merge_max_primitives)
        point_labels = seg[prim]
    # final labels: 1..R in order of first primitive, 0 = dropped small regions
    kept = point_labels > 0
    out = np.zeros(views.num_points, np.int64)
    out[kept] = _relabel(point_labels[kept]) + 1
    return Instances.from_labels(out, region_confidence(out, views))
