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
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable

import numpy as np

from gcseg.scene import Frame


class ConsistencyMeter:
    def __init__(self, *, iou_thresh: float = 0.5, min_visible_frac: float = 0.002):
        self.iou_thresh = iou_thresh
        self.min_visible_frac = min_visible_frac
        self._covers: dict[int, list[Hashable | None]] = defaultdict(list)  # gt id -> covering id per frame
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
        lab_ids, lab_area = np.unique(lab, return_counts=True)
        lab_area_of = dict(zip(lab_ids.tolist(), lab_area.tolist()))
        sel = (gt > 0) & (lab > 0)
        pairs, inter = np.unique(np.stack([gt[sel], lab[sel]], 1), axis=0, return_counts=True)
        best: dict[int, tuple[int, int]] = {}  # gt id -> (intersection, label id), largest overlap, ties by id
        for (g, l), n in zip(pairs.tolist(), inter.tolist()):
            if g not in best or (n, -l) > (best[g][0], -best[g][1]):
                best[g] = (n, l)
        for g, area in zip(gt_ids.tolist(), gt_area.tolist()):
            if g <= 0 or area < min_px:
                continue
            cover: Hashable | None = None
            if g in best:
                n, l = best[g]
                iou = n / (area + lab_area_of[l] - n)
                if iou >= self.iou_thresh or n / area > 0.5:
                    cover = l if namespace is None else (namespace, l)
            self._covers[g].append(cover)

    def relabel(self, alias: dict[int, int]) -> None:
        """Map the label ids recorded so far through ``alias`` (tracks merged after tracking)."""
        for g, covers in self._covers.items():
            self._covers[g] = [alias.get(c, c) if isinstance(c, int) else c for c in covers]

    def per_instance(self) -> dict[int, dict[str, float | int]]:
        out: dict[int, dict[str, float | int]] = {}
        for g in sorted(self._covers):
            covers = self._covers[g]
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
