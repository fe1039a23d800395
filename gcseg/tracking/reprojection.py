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

Re-identification: a removed (TERMINATED) object's model is archived, downsampled to ``reid_voxel``;
:meth:`ReprojectionPropagator.candidates` renders archived models into a keyframe the same way, so the policy
can recognise an object that comes back into view, and conditioning a revived object restores its model.
:class:`CarriedMasks` does the same for the SAM2 backend with each object's last conditioning mask ("the last
mask carried by pose").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from gcseg.geometry import backproject, check_pose, project, voxel_downsample
from gcseg.scene import Frame


# defaults shared by ReprojectionPropagator and CarriedMasks (stages/sam2_track.py: sam2_track.reprojection)
TOL_ABS = 0.03  # metres: depth agreement for the occlusion test (ScanNet depth noise ~1-2 cm)
TOL_REL = 0.02  # fraction of depth added to the tolerance (noise grows with depth)
FILL_PX = 1.5  # pixels: minimum nearest-id fill radius
REID_VOXEL = 0.01  # metres: point spacing of re-identification models (archived / carried)


def _checked_pose(frame: Frame) -> np.ndarray:
    return check_pose(frame.pose, path=f"frame {frame.index}" + (f" ({frame.name})" if frame.name else ""))


def _downsample(pts: np.ndarray, voxel: float) -> np.ndarray:
    return pts[voxel_downsample(pts, voxel)] if len(pts) else pts


def render_points(frame: Frame, pts: np.ndarray, lab: np.ndarray, *, spacing: float, tol_abs: float = TOL_ABS,
                  tol_rel: float = TOL_REL, fill_px: float = FILL_PX) -> dict[int, np.ndarray]:
    """Masks of labelled world points (labels >= 1) on `frame`: points that pass the occlusion test against the
    frame's depth, nearest point per pixel (ties by label), densified by depth-consistent nearest-label fill
    within ``fill_px`` + 1.5 x the on-screen point spacing (``spacing`` metres)."""
    pose = _checked_pose(frame)
    h, w = frame.hw
    depth = frame.depth
    if len(pts) == 0:
        return {}
    u, v, z, ok = project(pts, frame.intrinsics, pose, (h, w))
    d = np.zeros_like(z)
    d[ok] = depth[v[ok], u[ok]]
    ok &= (d > 0) & (np.abs(z - d) < tol_abs + tol_rel * d)  # occlusion test against this frame's depth
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
    # nearest-id fill: the point spacing on screen is ~ fx * spacing / depth pixels
    dist, (iy, ix) = ndimage.distance_transform_edt(sparse == 0, return_indices=True)
    radius = fill_px + 1.5 * float(frame.intrinsics[0, 0]) * spacing / np.maximum(depth, 1e-6)
    src_depth = depth[iy, ix]
    fill = (depth > 0) & (dist <= radius) & (np.abs(depth - src_depth) < tol_abs + tol_rel * depth)
    dense = np.where(fill, sparse[iy, ix], 0)
    return {int(i): dense == i for i in np.unique(dense) if i != 0}


def render_models(frame: Frame, models: Mapping[int, np.ndarray], ids: Iterable[int], *, spacing: float,
                  tol_abs: float = TOL_ABS, tol_rel: float = TOL_REL, fill_px: float = FILL_PX
                  ) -> dict[int, np.ndarray]:
    """Masks on `frame` of the objects `ids` (those in `models` with points), rendered together (a pixel goes
    to the nearest surface)."""
    ids = sorted(i for i in set(int(i) for i in ids) if i in models and len(models[i]))
    if not ids:
        return {}
    pts = np.concatenate([models[i] for i in ids])
    lab = np.concatenate([np.full(len(models[i]), k + 1, np.int64) for k, i in enumerate(ids)])
    out = render_points(frame, pts, lab, spacing=spacing, tol_abs=tol_abs, tol_rel=tol_rel, fill_px=fill_px)
    return {ids[k - 1]: m for k, m in out.items()}


@dataclass
class CarriedMasks:
    """Each object's last conditioning mask as world points (``voxel`` spacing), rendered into other frames by
    pose and depth: the re-identification masks of the SAM2 backend, whose own memory is appearance-based."""

    voxel: float = REID_VOXEL
    tol_abs: float = TOL_ABS
    tol_rel: float = TOL_REL
    fill_px: float = FILL_PX
    _points: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def reset(self) -> None:
        self._points.clear()

    def update(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        """Replace the models of the objects in `masks` by their masks on `frame` (kept when no valid depth)."""
        pose = _checked_pose(frame)
        for oid in sorted(masks):
            pts, _ = backproject(frame.depth, frame.intrinsics, pose, np.asarray(masks[oid], bool))
            if len(pts):
                self._points[int(oid)] = _downsample(pts, self.voxel)

    def render(self, frame: Frame, ids: Iterable[int]) -> dict[int, np.ndarray]:
        return render_models(frame, self._points, ids, spacing=self.voxel, tol_abs=self.tol_abs,
                             tol_rel=self.tol_rel, fill_px=self.fill_px)


@dataclass
class ReprojectionPropagator:
    voxel: float = 0.005  # metres: point spacing of each object's model (5 mm keeps 640x480 views dense)
    tol_abs: float = TOL_ABS
    tol_rel: float = TOL_REL
    fill_px: float = FILL_PX
    accumulate: bool = True  # grow each object's model over its conditionings (False: last one only)
    known_voxel: float = 0.02  # metres: grid of the "seen surface" model (all valid depth of conditioned keyframes)
    reid_voxel: float = REID_VOXEL  # metres: point spacing of archived (TERMINATED) models, for re-identification
    name: str = "reprojection"
    _points: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _archive: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _seen: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32), repr=False)

    def reset(self) -> None:
        self._points.clear()
        self._archive.clear()
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
            if oid not in self._points and oid in self._archive:  # revived: its archived model comes back
                self._points[oid] = self._archive.pop(oid)
            pts, _ = backproject(frame.depth, frame.intrinsics, pose, np.asarray(masks[oid], bool))
            if self.accumulate and oid in self._points and len(pts):
                pts = np.concatenate([self._points[oid], pts])
            elif len(pts) == 0:
                # no valid depth under the mask: keep the old model (or an empty one for a new object)
                pts = self._points.get(oid, np.zeros((0, 3), np.float32))
            self._points[oid] = pts[voxel_downsample(pts, self.voxel)] if len(pts) else pts

    def extend(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        """Add the points of `masks` (newly visible surface) to held objects' models, whatever ``accumulate``."""
        pose = _checked_pose(frame)
        for oid in sorted(masks):
            if oid not in self._points:
                continue
            pts, _ = backproject(frame.depth, frame.intrinsics, pose, np.asarray(masks[oid], bool))
            if len(pts):
                self._points[oid] = _downsample(np.concatenate([self._points[oid], pts]), self.voxel)

    def remove(self, ids: Iterable[int]) -> None:
        """Drop objects from propagation; their models are archived (``reid_voxel``) for :meth:`candidates`."""
        for oid in ids:
            pts = self._points.pop(int(oid), None)
            if pts is not None:
                self._archive[int(oid)] = _downsample(pts, self.reid_voxel)

    def candidates(self, frame: Frame, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Re-identification masks on `frame`: the archived models of the removed objects among `ids` (held
        objects are already in :meth:`propagate`'s masks)."""
        return render_models(frame, self._archive, ids, spacing=self.reid_voxel, tol_abs=self.tol_abs,
                             tol_rel=self.tol_rel, fill_px=self.fill_px)

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

    def _render(self, frame: Frame, pts: np.ndarray, lab: np.ndarray, voxel: float | None = None
                ) -> dict[int, np.ndarray]:
        return render_points(frame, pts, lab, spacing=self.voxel if voxel is None else voxel, tol_abs=self.tol_abs,
                             tol_rel=self.tol_rel, fill_px=self.fill_px)
