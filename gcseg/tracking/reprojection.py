"""Mask propagation through depth and camera poses (CPU, no weights).

Each object is a set of world points: the back-projected valid-depth pixels of every mask it was conditioned
with, voxel-downsampled (``voxel`` metres). To get its mask on a frame t', the points are projected into t';
a point counts only if t' sees that surface (|z - depth_t'(u, v)| < ``tol_abs`` + ``tol_rel`` * depth, the
occlusion test against t''s own depth), the nearest point wins a pixel (z-buffer), and the sparse label image is
densified by nearest-id fill: a valid-depth pixel takes the id of the nearest labelled pixel within the point
spacing (``fill_px`` + 1.5 x the projected voxel size) if their depths agree within the same tolerance.

Exact for static scenes, on the part of each object's surface some conditioning view has seen. It **cannot
follow moving objects**: a moved object's points stay where they were seen, fail the depth test and the object
fades out (it then goes DORMANT and is either re-matched by a proposal or TERMINATED). Use the ``sam2`` backend
for dynamic scenes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from gcseg.geometry import backproject, check_pose, project, voxel_downsample
from gcseg.scene import Frame


def _checked_pose(frame: Frame) -> np.ndarray:
    return check_pose(frame.pose, path=f"frame {frame.index}" + (f" ({frame.name})" if frame.name else ""))


@dataclass
class ReprojectionPropagator:
    voxel: float = 0.005  # metres: point spacing of each object's model (5 mm keeps 640x480 views dense)
    tol_abs: float = 0.03  # metres: depth agreement for the occlusion test (ScanNet depth noise ~1-2 cm)
    tol_rel: float = 0.02  # fraction of depth added to the tolerance (noise grows with depth)
    fill_px: float = 1.5  # pixels: minimum nearest-id fill radius
    accumulate: bool = True  # grow each object's model over its conditionings (False: last one only)
    known_voxel: float = 0.02  # metres: grid of the "seen surface" model (all valid depth of conditioned keyframes)
    name: str = "reprojection"
    _points: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _seen: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32), repr=False)

    def reset(self) -> None:
        self._points.clear()
        self._seen = np.zeros((0, 3), np.float32)

    def held_ids(self) -> list[int]:
        return sorted(self._points)

    def condition(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        pose = _checked_pose(frame)
        seen, _ = backproject(frame.depth, frame.intrinsics, pose)  # the keyframe's whole surface is now known
        if len(seen):
            seen = np.concatenate([self._seen, seen])
            self._seen = seen[voxel_downsample(seen, self.known_voxel)]
        for oid in sorted(masks):
            pts, _ = backproject(frame.depth, frame.intrinsics, pose, np.asarray(masks[oid], bool))
            if self.accumulate and oid in self._points and len(pts):
                pts = np.concatenate([self._points[oid], pts])
            elif len(pts) == 0:
                # no valid depth under the mask: keep the old model (or an empty one for a new object)
                pts = self._points.get(oid, np.zeros((0, 3), np.float32))
            self._points[oid] = pts[voxel_downsample(pts, self.voxel)] if len(pts) else pts

    def remove(self, ids: Iterable[int]) -> None:
        for oid in ids:
            self._points.pop(int(oid), None)

    def propagate(self, window: Sequence[Frame]) -> Iterator[dict[int, np.ndarray]]:
        ids = self.held_ids()
        pts = np.concatenate([self._points[i] for i in ids]) if ids else np.zeros((0, 3), np.float32)
        # internal labels 1..T (0 = empty pixel), whatever the object ids are
        lab = (np.concatenate([np.full(len(self._points[i]), k + 1, np.int64) for k, i in enumerate(ids)])
               if ids else np.zeros(0, np.int64))
        for f in window[1:]:
            yield {ids[k - 1]: m for k, m in self._render(f, pts, lab).items()}

    def known(self, frame: Frame) -> np.ndarray:
        """Pixels of `frame` whose surface some conditioned keyframe has seen (rendered seen-surface model);
        newly visible surface is unknown: it neither supports nor contradicts a match."""
        if len(self._seen) == 0:
            return np.zeros(frame.hw, bool)
        dense = self._render(frame, self._seen, np.ones(len(self._seen), np.int64), voxel=self.known_voxel)
        return dense.get(1, np.zeros(frame.hw, bool))

    def _tol(self, depth: np.ndarray) -> np.ndarray:
        return self.tol_abs + self.tol_rel * depth

    def _render(self, frame: Frame, pts: np.ndarray, lab: np.ndarray, voxel: float | None = None
                ) -> dict[int, np.ndarray]:
        pose = _checked_pose(frame)
        h, w = frame.hw
        depth = frame.depth
        if len(pts) == 0:
            return {}
        u, v, z, ok = project(pts, frame.intrinsics, pose, (h, w))
        d = np.zeros_like(z)
        d[ok] = depth[v[ok], u[ok]]
        ok &= (d > 0) & (np.abs(z - d) < self._tol(d))  # occlusion test against this frame's depth
        if not ok.any():
            return {}
        pix = v[ok] * w + u[ok]
        zz, ll = z[ok], lab[ok]
        order = np.lexsort((ll, zz, pix))  # per pixel: nearest point first, ties by id (deterministic)
        pix, ll = pix[order], ll[order]
        first = np.ones(len(pix), bool)
        first[1:] = pix[1:] != pix[:-1]
        sparse = np.zeros(h * w, np.int64)
        sparse[pix[first]] = ll[first]
        sparse = sparse.reshape(h, w)
        # nearest-id fill: the point spacing on screen is ~ fx * voxel / depth pixels
        dist, (iy, ix) = ndimage.distance_transform_edt(sparse == 0, return_indices=True)
        spacing = self.voxel if voxel is None else voxel
        radius = self.fill_px + 1.5 * float(frame.intrinsics[0, 0]) * spacing / np.maximum(depth, 1e-6)
        src_depth = depth[iy, ix]
        fill = (depth > 0) & (dist <= radius) & (np.abs(depth - src_depth) < self._tol(depth))
        dense = np.where(fill, sparse[iy, ix], 0)
        return {int(i): dense == i for i in np.unique(dense) if i != 0}
