"""`gt_sim`: a simulated proposer that derives masks from GT instance / part maps, for controlled ablations.

It is *not* a segmentation method and never a default: it needs GT (``Frame.instance``, optionally
``Frame.part``, present only in synthetic or GT-annotated scenes). Per frame and instance it draws a granularity
(part / whole / merged with a touching neighbour), so that, like SAM across keyframes, the same object can come
out at different granularities in different frames, then perturbs the boundary with a smooth random offset.
Seeded by (seed, frame index): the same frame always gets the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from gcseg.errors import ConfigError, InputError
from gcseg.proposals.base import Proposals, backend_config
from gcseg.scene import Frame


@dataclass(frozen=True)
class GtSimConfig:
    p_part: float = 0.2  # probability an instance comes out as its parts (falls back to whole without parts)
    p_merge: float = 0.1  # probability it is merged with a touching neighbour instance
    p_drop: float = 0.05  # probability it is missed altogether
    boundary_noise_px: float = 1.5  # amplitude (std, pixels) of the smooth boundary offset; 0 = exact masks
    noise_smoothness_px: float = 3.0  # spatial correlation length of that offset
    min_area: int = 20  # GT regions smaller than this (pixels) are not proposed

    def __post_init__(self) -> None:
        for k in ("p_part", "p_merge", "p_drop"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise ConfigError(f"gt_sim.{k} must lie in [0, 1], got {getattr(self, k)}", fix="e.g. 0.1")
        if self.p_part + self.p_merge + self.p_drop > 1.0:
            raise ConfigError("gt_sim.p_part + p_merge + p_drop must not exceed 1", fix="lower them")
        if self.boundary_noise_px < 0 or self.noise_smoothness_px <= 0:
            raise ConfigError("gt_sim.boundary_noise_px must be >= 0 and noise_smoothness_px > 0", fix="e.g. 1.5, 3")


def _noisy(mask: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Move the boundary of `mask` by `offset` pixels (positive grows): threshold the signed distance."""
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    signed = np.where(mask, inside - 0.5, 0.5 - outside)
    return signed + offset > 0


class GtSimProposer:
    """Masks from GT with random granularity switches and boundary noise; score = IoU with the clean mask."""

    name = "gt_sim"

    def __init__(self, cfg: GtSimConfig | Any = None, seed: int = 0):
        self.cfg = backend_config(GtSimConfig, cfg, "gt_sim")
        self.seed = int(seed)

    def __call__(self, frame: Frame) -> Proposals:
        if frame.instance is None:
            raise InputError(f"frame {frame.index} has no GT instance map, which the gt_sim proposer needs",
                             fix="use gt_sim only on synthetic / GT-annotated scenes, or set "
                                 "sam_keyframes.backend=classical")
        h, w = frame.hw
        c = self.cfg
        rng = np.random.default_rng([self.seed, int(frame.index)])
        inst = np.asarray(frame.instance)
        part = None if frame.part is None else np.asarray(frame.part)
        ids = [int(i) for i in np.unique(inst) if i > 0]
        areas = {i: int((inst == i).sum()) for i in ids}
        ids = [i for i in ids if areas[i] >= c.min_area]
        clean: list[np.ndarray] = []
        merged_into: set[int] = set()
        for i in ids:
            u = rng.random()
            if i in merged_into:
                continue
            whole = inst == i
            if u < c.p_drop:
                continue
            if u < c.p_drop + c.p_part and part is not None:
                pids = [int(p) for p in np.unique(part[whole]) if p > 0]
                pieces = [whole & (part == p) for p in pids]
                pieces = [m for m in pieces if m.sum() >= c.min_area]
                if len(pieces) >= 2:
                    clean.extend(pieces)
                    continue
            if u >= 1.0 - c.p_merge:
                ring = ndimage.binary_dilation(whole, iterations=2) & ~whole
                nbrs = sorted(int(j) for j in np.unique(inst[ring]) if j > 0 and j != i and j in areas)
                if nbrs:
                    j = nbrs[int(rng.integers(len(nbrs)))]
                    merged_into.add(j)
                    clean.append(whole | (inst == j))
                    continue
            clean.append(whole)
        if not clean:
            return Proposals.empty(h, w)
        masks, scores = [], []
        for m in clean:
            if c.boundary_noise_px > 0:
                field = ndimage.gaussian_filter(rng.standard_normal((h, w)), c.noise_smoothness_px)
                field *= c.boundary_noise_px / max(float(field.std()), 1e-6)
                noisy = _noisy(m, field)
            else:
                noisy = m
            union = np.logical_or(noisy, m).sum()
            scores.append(float(np.logical_and(noisy, m).sum()) / max(int(union), 1))
            masks.append(noisy)
        return Proposals(np.stack(masks), np.asarray(scores, np.float32))
