"""What every view says about every reference point: the shared input of the training-free baselines.

`collect_views` associates the reference points with each view's id map as `sam2_track`'s point association
lifts (`visible_points`: a point is seen where it projects into the image and the pixel's depth agrees with its
own within ``max_dist``) and keeps, per (view, seen point), the id at its pixel (0 = seen, no mask).
The result is a sparse table over (view, point) rather than a dense (points x views) matrix, so that long scans
with many views stay within memory. `Instances` is the baselines' output: point sets with one confidence each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gcseg.geometry import project
from gcseg.scene import Frame


@dataclass(frozen=True)
class PointViews:
    """Per view, the reference points it sees and the id each one reads there, as flat arrays sorted by
    (view, point). ``boundary`` marks points whose pixel touches another mask's pixel within ``boundary_px``
    (only computed when asked; all False otherwise)."""

    num_points: int
    frames: np.ndarray  # int64 (V,) frame index of every view
    view: np.ndarray  # int32 (E,) view of each entry (ascending)
    point: np.ndarray  # int32 (E,) reference point (ascending within a view)
    label: np.ndarray  # int64 (E,) id at the point's pixel, 0 = no mask
    boundary: np.ndarray  # bool (E,)

    @property
    def num_views(self) -> int:
        return int(self.frames.shape[0])


def visible_points(coord: np.ndarray, frame: Frame, max_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ascending) of the points of `coord` (N, 3) that project into the frame where the pixel's depth
    agrees with theirs within `max_dist` metres, and their flat pixel indices (VoteAccumulator's "point"
    association: nearest pixel, depth test)."""
    h, w = frame.hw
    u, v, z, inside = project(coord, frame.intrinsics, frame.pose, (h, w))
    pts = np.flatnonzero(inside)
    flat = v[pts] * w + u[pts]
    d = frame.depth.reshape(-1)[flat]
    seen = (d > 0) & np.isfinite(d) & (np.abs(d - z[pts]) <= max_dist)
    return pts[seen], flat[seen]


def mask_boundary(id_map: np.ndarray, radius: int) -> np.ndarray:
    """bool (H, W): pixels of a mask (id > 0) with a pixel of another mask (another id > 0) within `radius`
    pixels (Chebyshev). Background pixels never make a boundary: only where two masks meet is the point's mask
    ambiguous (MaskClustering's "boundary points", which its 3 cm ball query puts in two masks at once)."""
    ids = np.asarray(id_map, np.int64)
    if radius <= 0:
        return np.zeros(ids.shape, bool)
    size = 2 * radius + 1
    big = int(ids.max(initial=0)) + 1  # above every id (no huge sentinel: ndimage may pass through float)
    hi = ndimage.maximum_filter(ids, size=size, mode="nearest")
    lo = ndimage.minimum_filter(np.where(ids > 0, ids, big), size=size, mode="nearest")
    return (ids > 0) & ((hi != ids) | (lo != ids))


def collect_views(coord: np.ndarray, views: Iterable[tuple[Frame, np.ndarray]], *, max_dist: float,
                  boundary_px: int = 0) -> PointViews:
    """Associate every view's id map (int (H, W), 0 = no mask) with the reference points `coord` (N, 3)."""
    ref = np.ascontiguousarray(coord, dtype=np.float32)
    if ref.ndim != 2 or ref.shape[1] != 3:
        raise ValueError(f"coord must be (N, 3), got {ref.shape}")
    if max_dist <= 0:
        raise ValueError(f"max_dist must be positive, got {max_dist}")
    frames, vs, ps, ls, bs = [], [], [], [], []
    for v, (frame, id_map) in enumerate(views):
        id_map = np.asarray(id_map)
        if id_map.shape != frame.hw or id_map.dtype.kind not in "iu":
            raise ValueError(f"view {v} (frame {frame.index}): id map must be an integer {frame.hw} array, "
                             f"got {id_map.dtype} {id_map.shape}")
        pts, flat = visible_points(ref, frame, max_dist)
        labels = id_map.reshape(-1)[flat].astype(np.int64)
        labels[labels < 0] = 0
        frames.append(int(frame.index))
        vs.append(np.full(pts.size, v, np.int32))
        ps.append(pts.astype(np.int32))
        ls.append(labels)
        bs.append(mask_boundary(id_map, boundary_px).reshape(-1)[flat] if boundary_px > 0
                  else np.zeros(pts.size, bool))
    cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt))
    return PointViews(num_points=int(ref.shape[0]), frames=np.asarray(frames, np.int64), view=cat(vs, np.int32),
                      point=cat(ps, np.int32), label=cat(ls, np.int64), boundary=cat(bs, bool))


@dataclass(frozen=True)
class Instances:
    """K point sets over N reference points (CSR: instance k holds ``points[indptr[k]:indptr[k+1]]``, ascending)
    and a confidence each, in descending confidence (ties: creation order)."""

    num_points: int
    indptr: np.ndarray  # int64 (K + 1,)
    points: np.ndarray  # int32 (nnz,)
    scores: np.ndarray  # float32 (K,)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def dense(self) -> np.ndarray:
        """bool (K, N) masks."""
        from gcseg.baselines.artifact import dense_masks

        return dense_masks(self.indptr, self.points, self.num_points)

    @staticmethod
    def from_lists(num_points: int, point_sets: list[np.ndarray], scores: Iterable[float]) -> Instances:
        """Instances from point index arrays and scores, sorted by descending score (stable)."""
        scores = np.asarray(list(scores), np.float64)
        if len(point_sets) != scores.shape[0]:
            raise ValueError(f"{len(point_sets)} point sets but {scores.shape[0]} scores")
        order = np.argsort(-scores, kind="stable")
        sets = [np.unique(np.asarray(point_sets[i], np.int64)) for i in order]
        sizes = np.array([s.size for s in sets], np.int64)
        indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        points = np.concatenate(sets).astype(np.int32) if sets else np.zeros(0, np.int32)
        return Instances(num_points=int(num_points), indptr=indptr, points=points,
                         scores=scores[order].astype(np.float32))

    @staticmethod
    def from_labels(labels: np.ndarray, scores: np.ndarray) -> Instances:
        """One instance per label >= 1 of a per-point labelling; `scores[label - 1]` is its confidence."""
        labels = np.asarray(labels, np.int64)
        ids = np.unique(labels[labels > 0])
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        starts = np.searchsorted(sorted_labels, ids, side="left")
        ends = np.searchsorted(sorted_labels, ids, side="right")
        sets = [order[a:b] for a, b in zip(starts, ends)]
        return Instances.from_lists(labels.shape[0], sets, np.asarray(scores, np.float64)[ids - 1])
