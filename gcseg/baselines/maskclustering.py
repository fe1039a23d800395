"""View-consensus mask clustering: MaskClustering (Yan et al., CVPR 2024; code `PKU-EPIC/MaskClustering@eb2d41c`),
training-free, on any per-view 2D masks.

Every mask of every view, back-projected to the reference points it covers, is a node of a graph
(`graph/construction.py`). For each mask and each other view, the mask's points are looked up there: the view
*observes* the mask if enough of them are seen inside some mask (``mask_visible_threshold`` of them, or
``mask_visible_points``), and *supports* it by the mask that contains more than ``contained_threshold`` of the
seen ones. A mask that is split across the masks of too many observing views (``undersegment_filter_threshold``)
is under-segmented: it is dropped, and its support of other masks is undone. Two nodes are then joined when the
**view consensus** rate, (masks containing both) / (views observing both), reaches ``view_consensus_threshold``
and enough views observe both; the clustering repeats with the observer requirement falling from the 95th to the
0th percentile of all observer counts (`graph/iterative_clustering.py`), nodes merging into clusters as it goes.
Each cluster of >= 2 masks is split into spatially connected parts by DBSCAN (0.1 m), its points kept where they
lie inside the cluster's masks in more than ``point_filter_threshold`` of the cluster's views in which they lie in
any mask, parts supported by fewer than 2 masks are dropped, and an object lying > 0.8 inside another is removed
(`utils/post_process.py`).

Differences from the reference code, each for a stated reason:

* Association: a reference point belongs to a mask where it projects into the mask with agreeing depth (the
  pipeline's point association, `gcseg.lifting.visible_points`), not by a 3 cm ball query around the mask's
  back-projected pixels; "boundary points" (MaskClustering: in two masks of one frame, an artefact of the ball
  query) are the points within ``boundary_px`` pixels of another mask in some view, excluded from the consensus
  counts as in the reference.
* Confidence: the reference writes 1.0 for every object. Here an object's score is its **detection rate**: the
  share of the views observing it (``mask_visible_threshold`` of its points seen, or ``mask_visible_points``) in
  which one of its masks was found, so an object found whenever it is seen ranks above one found once in ten
  views.
* DBSCAN noise points are dropped (the reference keeps them as one more "part", which its filters then judge).

Everything is vectorised over masks and point-view pairs (sparse products, sorted group reductions); the only
loops run over clusters (DBSCAN per cluster) and over overlapping object pairs (the reference's greedy order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from gcseg.baselines.views import Instances, PointViews

_PERCENTILES = tuple(range(95, -5, -5))  # graph/construction.py get_observer_num_thresholds: 95 % .. 0 %


@dataclass(frozen=True)
class MaskClusteringConfig:
    """Defaults: MaskClustering `configs/scannet.json` and the constants of its code (see params.yaml)."""

    mask_visible_threshold: float = 0.3  # scannet.json
    mask_visible_points: int = 500  # graph/construction.py process_one_mask (hard-coded 500 points)
    contained_threshold: float = 0.8  # scannet.json
    undersegment_filter_threshold: float = 0.3  # scannet.json
    view_consensus_threshold: float = 0.9  # scannet.json
    point_filter_threshold: float = 0.5  # scannet.json
    min_mask_points: int = 25  # utils/mask_backprojection.py FEW_POINTS_THRESHOLD
    boundary_px: int = 1  # pixels; stands in for the 3 cm ball-query overlap (assumption)
    min_masks: int = 2  # post_process: clusters / objects of fewer masks are dropped
    dbscan_eps: float = 0.1  # metres, post_process.dbscan_process
    dbscan_min_samples: int = 4  # open3d cluster_dbscan min_points=4
    overlap_merge: float = 0.8  # post_process.merge_overlapping_objects

    def __post_init__(self) -> None:
        for name in ("mask_visible_threshold", "contained_threshold", "undersegment_filter_threshold",
                     "view_consensus_threshold", "point_filter_threshold", "overlap_merge"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v}")
        if self.min_mask_points < 1 or self.min_masks < 1 or self.dbscan_min_samples < 1:
            raise ValueError("min_mask_points, min_masks and dbscan_min_samples must be >= 1")
        if self.dbscan_eps <= 0 or self.boundary_px < 0 or self.mask_visible_points < 1:
            raise ValueError("dbscan_eps must be > 0, boundary_px >= 0, mask_visible_points >= 1")


@dataclass(frozen=True)
class MaskGraph:
    """The masks of all views and what the other views say about each (graph/construction.py)."""

    num_views: int
    mask_view: np.ndarray  # int64 (G,) view of each mask
    entry_mask: np.ndarray  # int64 (E,) mask of each PointViews entry, -1 = none (no mask or a too small one)
    visible: np.ndarray  # bool (G, V): views that observe the mask and contain it in one mask (its "frames")
    contained: sp.csr_matrix  # bool (G, G): [g, h] = mask h contains mask g (in h's view)
    undersegmented: np.ndarray  # bool (G,)

    @property
    def num_masks(self) -> int:
        return int(self.mask_view.shape[0])


def _group_starts(keys: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.zeros(0, np.int64)


def build_mask_graph(views: PointViews, cfg: MaskClusteringConfig) -> MaskGraph:
    """Masks, their observing / supporting views, containment and under-segmentation (process_one_mask)."""
    nv = views.num_views
    label = views.label
    entry_mask = np.full(label.shape[0], -1, np.int64)
    labelled = np.flatnonzero(label > 0)
    width = int(label.max(initial=0)) + 1
    key = views.view[labelled].astype(np.int64) * width + label[labelled]
    uniq, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    big = counts >= cfg.min_mask_points  # masks on too few points are not masks (FEW_POINTS_THRESHOLD)
    new_id = np.cumsum(big) - 1
    ok = big[inv]
    entry_mask[labelled[ok]] = new_id[inv[ok]]
    mask_view = (uniq[big] // width).astype(np.int64)
    g = int(mask_view.shape[0])
    if g == 0:
        return MaskGraph(nv, mask_view, entry_mask, np.zeros((0, nv), bool), sp.csr_matrix((0, 0), dtype=bool),
                         np.zeros(0, bool))
    # boundary points (in two masks of one view somewhere) never count (build_point_in_mask_matrix)
    in_mask = entry_mask >= 0
    boundary = np.zeros(views.num_points, bool)
    boundary[views.point[in_mask & views.boundary]] = True
    valid = in_mask & ~boundary[views.point]
    a = sp.csr_matrix((np.ones(int(valid.sum()), np.int32), (entry_mask[valid], views.point[valid])),
                      shape=(g, views.num_points))
    size = np.bincount(entry_mask[valid], minlength=g)  # |valid points of the mask|
    co = (a @ a.T).tocoo()  # [g, h] = valid points of g lying in mask h (in h's view)
    r, c, n = co.row.astype(np.int64), co.col.astype(np.int64), co.data.astype(np.int64)
    gv = r * nv + mask_view[c]
    order = np.lexsort((c, -n, gv))  # per (mask, view): largest containing mask first, ties: lower id
    r, c, n, gv = r[order], c[order], n[order], gv[order]
    start = _group_starts(gv)
    seen = np.add.reduceat(n, start) if start.size else np.zeros(0, np.int64)  # points in some mask there
    top, top_mask, grp = n[start], c[start], r[start]
    observing = (seen >= cfg.mask_visible_threshold * size[grp]) | (seen >= cfg.mask_visible_points)
    inside = observing & (top > cfg.contained_threshold * seen)
    visible_num = np.bincount(grp[observing], minlength=g)
    split_num = np.bincount(grp[observing & ~inside], minlength=g)
    under = (visible_num == 0) | (split_num > cfg.undersegment_filter_threshold * visible_num)
    visible = np.zeros((g, nv), bool)
    rows, cols = grp[inside], top_mask[inside]
    visible[rows, mask_view[cols]] = True
    # undo the support of under-segmented masks: they would join objects that are separate (process_masks)
    undo = under[cols]
    visible[rows[undo], mask_view[cols[undo]]] = False
    rows, cols = rows[~undo], cols[~undo]
    contained = sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(g, g))
    return MaskGraph(nv, mask_view, entry_mask, visible, contained, under)


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation (np.percentile, method "linear")."""
    d = b - a
    return b - d * (1.0 - t) if t >= 0.5 else a + d * t


def percentile_of_counts(hist: np.ndarray, q: float) -> float:
    """np.percentile(values, q) where `hist[v]` is how often integer value v occurs (no value materialised)."""
    cum = np.cumsum(hist)
    n = int(cum[-1]) if cum.size else 0
    if n == 0:
        raise ValueError("percentile of an empty set")
    pos = (n - 1) * (q / 100.0)  # numpy's virtual index for method "linear", in its order of operations
    lo = min(max(int(np.floor(pos)), 0), n - 1)
    hi = lo if pos >= n - 1 else lo + 1
    a = float(np.searchsorted(cum, lo, side="right"))
    b = float(np.searchsorted(cum, hi, side="right"))
    return _lerp(a, b, pos - np.floor(pos))


def observer_thresholds(visible: np.ndarray, block: int = 2048) -> list[float]:
    """get_observer_num_thresholds: the 95th, 90th, ..., 0th percentile of the positive entries of
    visible @ visible.T (views observing both of two masks, diagonal included), stopping below the median once
    it reaches 1 (values <= 1 above the median become 1). Counted in row blocks: no (G, G) matrix is kept."""
    g, nv = visible.shape
    hist = np.zeros(nv + 1, np.int64)
    vis = visible.astype(np.float32)
    for i in range(0, g, block):
        obs = np.rint(vis[i:i + block] @ vis.T).astype(np.int64)
        hist += np.bincount(obs.ravel(), minlength=nv + 1)
    hist[0] = 0
    if hist.sum() == 0:
        return []
    out: list[float] = []
    for q in _PERCENTILES:
        t = percentile_of_counts(hist, q)
        if t <= 1:
            if q < 50:
                break
            t = 1.0
        out.append(t)
    return out


def _membership(node_of_mask: np.ndarray, num_nodes: int) -> sp.csr_matrix:
    m = np.flatnonzero(node_of_mask >= 0)
    return sp.csr_matrix((np.ones(m.size, np.int32), (node_of_mask[m], m)), shape=(num_nodes, node_of_mask.size))


def iterative_clustering(graph: MaskGraph, thresholds: list[float], consensus: float,
                         pair_block: int = 1 << 18) -> np.ndarray:
    """Node (cluster) of every mask after the clustering rounds; -1 for under-segmented masks.

    Each round (iterative_clustering.update_graph): two nodes are connected when (masks containing both) /
    (views observing both) >= `consensus` and at least `thresholds[round]` views observe both; connected
    components become the next round's nodes (their views and containing masks: the union of their members')."""
    node = np.where(graph.undersegmented, -1, np.cumsum(~graph.undersegmented) - 1).astype(np.int64)
    vis = sp.csr_matrix(graph.visible.astype(np.int32))
    cont = graph.contained.astype(np.int32)
    for t_obs in thresholds:
        k = int(node.max(initial=-1)) + 1
        if k <= 1:
            break
        member = _membership(node, k)
        vn = (member @ vis).toarray() > 0  # (K, V)
        cn = (member @ cont) > 0  # (K, G)
        cn = cn.astype(np.int32)
        sup = sp.triu(cn @ cn.T, k=1).tocoo()  # masks containing both, for pairs that share one
        i, j, s = sup.row.astype(np.int64), sup.col.astype(np.int64), sup.data.astype(np.float64)
        obs = np.empty(i.size, np.int64)
        for a in range(0, i.size, pair_block):  # views observing both, pair by pair, in bounded blocks
            b = a + pair_block
            obs[a:b] = np.count_nonzero(vn[i[a:b]] & vn[j[a:b]], axis=1)
        edge = (s / (obs + 1e-7) >= consensus) & (obs >= t_obs)
        adj = sp.csr_matrix((np.ones(int(edge.sum()), bool), (i[edge], j[edge])), shape=(k, k))
        _, comp = connected_components(adj, directed=False)
        node = np.where(node >= 0, comp[np.clip(node, 0, None)], -1)
    return node


def _csr_by(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, order) grouping positions of `keys` (ints in [0, size)) by key, stable."""
    order = np.argsort(keys, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=size))]).astype(np.int64)
    return indptr, order


def _gather(indptr: np.ndarray, order: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions grouped under each of `keys` (concatenated) and, for each, the index into `keys` it came from."""
    lens = indptr[keys + 1] - indptr[keys]
    owner = np.repeat(np.arange(keys.size), lens)
    offs = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    return order[np.repeat(indptr[keys], lens) + offs], owner


def _observing_views(views: PointViews, pos: np.ndarray, n_pts: int, cfg: MaskClusteringConfig) -> np.ndarray:
    """Views seeing >= mask_visible_threshold of a point set (or mask_visible_points of it): sorted view ids.
    pos: the PointViews entries (any label) of the set's points."""
    cnt = np.bincount(views.view[pos], minlength=views.num_views)
    return np.flatnonzero((cnt >= cfg.mask_visible_threshold * n_pts) | (cnt >= cfg.mask_visible_points))


def post_process(coord: np.ndarray, views: PointViews, graph: MaskGraph, node: np.ndarray,
                 cfg: MaskClusteringConfig) -> Instances:
    """Clusters -> objects (post_process.py): DBSCAN split, point filter by detection ratio, >= min_masks
    supporting masks, detection-rate confidence, then removal of objects lying inside another."""
    from sklearn.cluster import DBSCAN

    n_points = views.num_points
    if graph.num_masks == 0 or node.max(initial=-1) < 0:
        return Instances.from_lists(n_points, [], [])
    k = int(node.max()) + 1
    vis_node = (_membership(node, k) @ sp.csr_matrix(graph.visible.astype(np.int32))).toarray() > 0
    in_mask = np.flatnonzero(graph.entry_mask >= 0)
    mask_ptr, mask_ord = _csr_by(graph.entry_mask[in_mask], graph.num_masks)
    point_ptr, point_ord = _csr_by(views.point.astype(np.int64), n_points)  # all seen entries per point
    node_masks_ptr, node_masks = _csr_by(np.where(node >= 0, node, k), k + 1)
    objects: list[np.ndarray] = []
    scores: list[float] = []
    for n in range(k):
        members = node_masks[node_masks_ptr[n]:node_masks_ptr[n + 1]]
        if members.size < cfg.min_masks:
            continue
        ent, _ = _gather(mask_ptr, mask_ord, members)
        ent = in_mask[ent]  # the entries (view, point) of the cluster's masks
        pts = np.unique(views.point[ent]).astype(np.int64)
        part = DBSCAN(eps=cfg.dbscan_eps, min_samples=cfg.dbscan_min_samples).fit(coord[pts]).labels_
        # detection ratio per point over the cluster's views (filter_point)
        pos, owner = _gather(point_ptr, point_ord, pts)
        em = graph.entry_mask[pos]
        sel = vis_node[n][views.view[pos]] & (em >= 0)
        in_video = np.bincount(owner[sel], minlength=pts.size)
        in_node = np.bincount(owner[sel & (node[np.clip(em, 0, None)] == n)], minlength=pts.size)
        keep = in_node / (in_video + 1e-6) > cfg.point_filter_threshold
        # every mask goes to the part it overlaps most (ties: the lower part)
        local = np.searchsorted(pts, views.point[ent])
        ent_part = part[local]
        ok = ent_part >= 0
        n_parts = int(part.max(initial=-1)) + 1
        if n_parts == 0:
            continue
        mrank = np.searchsorted(members, graph.entry_mask[ent[ok]])
        counts = np.zeros((members.size, n_parts), np.int64)
        np.add.at(counts, (mrank, ent_part[ok]), 1)
        best = np.where(counts.max(1) > 0, counts.argmax(1), -1)
        for q in range(n_parts):
            obj = pts[(part == q) & keep]
            masks_q = members[best == q]
            if obj.size == 0 or masks_q.size < cfg.min_masks:
                continue
            supported = np.unique(graph.mask_view[masks_q])
            observed = _observing_views(views, _gather(point_ptr, point_ord, obj)[0], obj.size, cfg)
            objects.append(obj)
            scores.append(supported.size / np.union1d(supported, observed).size)
    keep_obj = _drop_contained(objects, n_points, cfg.overlap_merge)
    return Instances.from_lists(n_points, [objects[i] for i in keep_obj], [scores[i] for i in keep_obj])


def _drop_contained(objects: list[np.ndarray], n_points: int, ratio: float) -> list[int]:
    """merge_overlapping_objects: in creation order, of two objects sharing more than `ratio` of one of them the
    contained one is removed (the earlier one first, as the reference's double loop). Returns survivors."""
    k = len(objects)
    if k == 0:
        return []
    rows = np.repeat(np.arange(k), [o.size for o in objects])
    member = sp.csr_matrix((np.ones(rows.size, np.int32), (rows, np.concatenate(objects))), shape=(k, n_points))
    size = np.array([o.size for o in objects], np.float64)
    inter = sp.triu(member @ member.T, k=1).tocoo()
    order = np.lexsort((inter.col, inter.row))
    invalid = np.zeros(k, bool)
    skip_row, current = False, -1
    for i, j, x in zip(inter.row[order], inter.col[order], inter.data[order]):
        if i != current:  # the outer loop skips an object removed before its turn
            current, skip_row = i, bool(invalid[i])
        if skip_row or invalid[j]:
            continue
        if x / size[i] > ratio:
            invalid[i] = True
        elif x / size[j] > ratio:
            invalid[j] = True
    return [i for i in range(k) if not invalid[i]]


def mask_clustering(coord: np.ndarray, views: PointViews, cfg: MaskClusteringConfig | None = None) -> Instances:
    """Instances of a scene from the masks of its views (see the module doc). `views` must be collected with
    ``boundary_px=cfg.boundary_px`` (gcseg.baselines.views.collect_views)."""
    cfg = cfg or MaskClusteringConfig()
    coord = np.asarray(coord, np.float64)
    if coord.shape != (views.num_points, 3):
        raise ValueError(f"coord is {coord.shape}, the views hold {views.num_points} points")
    graph = build_mask_graph(views, cfg)
    if graph.num_masks == 0:
        return Instances.from_lists(views.num_points, [], [])
    node = iterative_clustering(graph, observer_thresholds(graph.visible), cfg.view_consensus_threshold)
    return post_process(coord, views, graph, node, cfg)
