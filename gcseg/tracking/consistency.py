"""How consistently 2D labels follow 3D objects over time (needs per-frame GT instance ids).

For each GT instance and each frame where it is visible (at least ``min_visible_frac`` of the image), the
label id with the largest overlap *covers* it if their IoU >= ``iou_thresh`` or the id holds the majority
(> 50 %) of the instance's pixels. Per instance:

* ``consistency``: fraction of its visible frames covered by its most frequent covering id (1.0 = one id
  followed it everywhere; independent per-frame ids give at most 1 / #frames);
* ``purity``: the same fraction over the frames where it is covered at all (1.0 = never covered by another
  id; frames where no id covers it, e.g. while its track is DORMANT, do not count);
* ``ids``: how many distinct ids covered it (1 = never split over time).

Summary: means over instances, plus ``coverage`` (fraction of (instance, frame) pairs covered at all).
Per-keyframe Stage 1 labels are measured with ``namespace=frame index`` (fresh ids every keyframe).
Coverage is decided from per-frame pixel counts (instance areas, nonzero instance/label intersections, label
areas) when the figures are read, so merging tracks afterwards (:meth:`ConsistencyMeter.relabel`) is exact.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable
from typing import NamedTuple

import numpy as np

from gcseg.scene import Frame


class _FrameCounts(NamedTuple):
    """What one frame gives the meter, enough to decide coverage after any relabelling of the label ids."""

    namespace: Hashable | None
    labels: np.ndarray  # (L, 2) int64: label id > 0, its area in the frame (every label, not only those on GT)
    gts: np.ndarray  # (G, 2) int64: visible GT id, its area (frame order of the meter's instances)
    pairs: np.ndarray  # (K, 3) int64: GT id, label id, intersection > 0 (visible GT ids only)


class ConsistencyMeter:
    """Per frame it keeps each visible GT instance's area, the nonzero intersections with the label ids and those
    ids' areas; coverage is decided from these counts when read, so :meth:`relabel` (tracks merged after tracking)
    gives exactly the figures of a meter fed the relabelled id maps."""

    def __init__(self, *, iou_thresh: float = 0.5, min_visible_frac: float = 0.002):
        self.iou_thresh = iou_thresh
        self.min_visible_frac = min_visible_frac
        self._frames: list[_FrameCounts] = []
        self.frames = 0

    def add(self, frame: Frame, id_map: np.ndarray, namespace: Hashable | None = None) -> None:
        """Record one frame's labels (0 = unlabelled). Frames without GT are ignored."""
        if frame.instance is None:
            return
        gt = frame.instance.reshape(-1).astype(np.int64)
        lab = id_map.reshape(-1).astype(np.int64)
        self.frames += 1
        min_px = max(1, int(self.min_visible_frac * gt.size))
        gt_ids, gt_area = np.unique(gt, return_counts=True)
        vis = (gt_ids > 0) & (gt_area >= min_px)
        if not vis.any():
            return
        lab_ids, lab_area = np.unique(lab[lab > 0], return_counts=True)
        sel = (gt > 0) & (lab > 0)
        pairs, inter = np.unique(np.stack([gt[sel], lab[sel]], 1), axis=0, return_counts=True)
        keep = np.isin(pairs[:, 0], gt_ids[vis])
        self._frames.append(_FrameCounts(
            namespace, np.stack([lab_ids, lab_area], 1).astype(np.int64),
            np.stack([gt_ids[vis], gt_area[vis]], 1).astype(np.int64),
            np.concatenate([pairs[keep], inter[keep, None]], 1).astype(np.int64).reshape(-1, 3)))

    def relabel(self, alias: dict[int, int]) -> None:
        """Map the label ids recorded so far through ``alias`` (tracks merged after tracking): the areas and
        intersections of ids mapped to one id add up, as in the relabelled id maps. Frames recorded with a
        ``namespace`` (fresh ids per keyframe) are not relabelled."""
        if not alias:
            return
        keys = np.fromiter(alias, np.int64, len(alias))
        for i, f in enumerate(self._frames):
            if f.namespace is not None or not np.isin(f.labels[:, 0], keys).any():
                continue
            lab = np.array([alias.get(x, x) for x in f.labels[:, 0].tolist()], np.int64).reshape(-1)
            pl = np.array([alias.get(x, x) for x in f.pairs[:, 1].tolist()], np.int64).reshape(-1)
            lab_ids, inv = np.unique(lab, return_inverse=True)
            labels = np.stack([lab_ids, np.bincount(inv.reshape(-1), f.labels[:, 1]).astype(np.int64)], 1)
            pairs, inv = np.unique(np.stack([f.pairs[:, 0], pl], 1), axis=0, return_inverse=True)
            pairs = np.concatenate([pairs, np.bincount(inv.reshape(-1), f.pairs[:, 2],
                                                       minlength=len(pairs)).astype(np.int64)[:, None]], 1)
            self._frames[i] = f._replace(labels=labels[labels[:, 0] > 0].reshape(-1, 2),
                                         pairs=pairs[pairs[:, 1] > 0].reshape(-1, 3))

    def _frame_covers(self, f: _FrameCounts) -> list[tuple[int, Hashable | None]]:
        """(GT id, covering id or None) for each visible GT instance of a recorded frame."""
        lab_area_of = dict(map(tuple, f.labels.tolist()))
        best: dict[int, tuple[int, int]] = {}  # gt id -> (intersection, label id), largest overlap, ties by id
        for g, l, n in f.pairs.tolist():
            if g not in best or (n, -l) > (best[g][0], -best[g][1]):
                best[g] = (n, l)
        out: list[tuple[int, Hashable | None]] = []
        for g, area in f.gts.tolist():
            cover: Hashable | None = None
            if g in best:
                n, l = best[g]
                iou = n / (area + lab_area_of[l] - n)
                if iou >= self.iou_thresh or n / area > 0.5:
                    cover = l if f.namespace is None else (f.namespace, l)
            out.append((g, cover))
        return out

    def covers(self) -> dict[int, list[Hashable | None]]:
        """GT id -> its covering id (None: uncovered) on each recorded frame where it is visible, in frame order."""
        out: dict[int, list[Hashable | None]] = defaultdict(list)
        for f in self._frames:
            for g, cover in self._frame_covers(f):
                out[g].append(cover)
        return dict(out)

    def per_instance(self) -> dict[int, dict[str, float | int]]:
        out: dict[int, dict[str, float | int]] = {}
        all_covers = self.covers()
        for g in sorted(all_covers):
            covers = all_covers[g]
            got = [c for c in covers if c is not None]
            top = Counter(got).most_common(1)[0][1] if got else 0
            out[g] = {"visible_frames": len(covers), "covered_frames": len(got),
                      "consistency": top / len(covers), "purity": top / len(got) if got else 0.0,
                      "ids": len(set(got))}
        return out

    def summary(self) -> dict[str, float | int]:
        per = self.per_instance()
        if not per:
            return {"frames": self.frames, "instances": 0, "consistency": 0.0, "purity": 0.0,
                    "ids_per_instance": 0.0, "coverage": 0.0}
        vis = sum(int(p["visible_frames"]) for p in per.values())
        cov = sum(int(p["covered_frames"]) for p in per.values())
        covered_inst = [p for p in per.values() if int(p["covered_frames"]) > 0]
        return {
            "frames": self.frames,
            "instances": len(per),
            "consistency": round(float(np.mean([p["consistency"] for p in per.values()])), 6),
            "purity": round(float(np.mean([p["purity"] for p in covered_inst])), 6) if covered_inst else 0.0,
            "ids_per_instance": round(float(np.mean([p["ids"] for p in covered_inst])), 6) if covered_inst else 0.0,
            "coverage": round(cov / vis, 6),
        }
