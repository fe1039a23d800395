"""`gt_sim`: a simulated proposer that derives masks from GT instance / part maps, for controlled ablations.

It is *not* a segmentation method and never a default: it needs GT (``Frame.instance``, optionally
``Frame.part``, present only in synthetic or GT-annotated scenes). Per frame and instance it draws a granularity
(part / whole / merged with a touching neighbour), so that, like SAM across keyframes, the same object can come
out at different granularities in different frames, then perturbs the boundary with a smooth random offset.
Seeded by (seed, frame index): the same frame always gets the same masks.

Boundary noise is **relative to each mask's size**, its radius ``r = 2 * area / perimeter`` in pixels (a disc's
radius; about half the width of a thin part): offset std ``boundary_noise * r``, correlation length
``noise_smoothness * r``. An absolute offset (the earlier 1.5 px) erased small objects (a 25 px item is 5 px
wide) while barely touching large ones, and meant other objects at another image size; a relative offset costs
every mask, compact or thin, about the same share of its area (IoU with the clean mask ~1 - 1.6 *
boundary_noise) at any resolution, as SAM's masks (IoU ~0.9) behave. Offsets under half a pixel move no pixel, so
masks of a few pixels stay nearly exact. The minimum region size is a fraction of the image area (gcseg.pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import ndimage

from gcseg.errors import ConfigError, InputError
from gcseg.pixels import area_px
from gcseg.proposals.base import Proposals
from gcseg.scene import Frame


@dataclass(frozen=True)
class GtSimConfig:
    p_part: float = 0.2  # probability an instance comes out as its parts (falls back to whole without parts)
    p_merge: float = 0.1  # probability it is merged with a touching neighbour instance
    p_drop: float = 0.05  # probability it is missed altogether
    boundary_noise: float = 0.05  # std of the smooth boundary offset, fraction of the mask's equivalent radius
    noise_smoothness: float = 0.5  # correlation length of that offset, fraction of the equivalent radius
    min_area_frac: float = 0.00026  # GT regions under this fraction of the image (20 px at 320x240) are skipped

    def __post_init__(self) -> None:
        for k in ("p_part", "p_merge", "p_drop"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise ConfigError(f"gt_sim.{k} must lie in [0, 1], got {getattr(self, k)}", fix="e.g. 0.1")
        if self.p_part + self.p_merge + self.p_drop > 1.0:
            raise ConfigError("gt_sim.p_part + p_merge + p_drop must not exceed 1", fix="lower them")
        if not 0 <= self.boundary_noise <= 1 or self.noise_smoothness <= 0:
            raise ConfigError("gt_sim.boundary_noise must lie in [0, 1] and noise_smoothness be > 0",
                              fix="e.g. boundary_noise: 0.05, noise_smoothness: 0.5")
        if not 0 <= self.min_area_frac <= 1:
            raise ConfigError(f"gt_sim.min_area_frac must lie in [0, 1], got {self.min_area_frac}", fix="e.g. 0.00026")

    @classmethod
    def from_mapping(cls, cfg: Any) -> "GtSimConfig":
        data = dict(cfg.model_dump()) if hasattr(cfg, "model_dump") else dict(cfg or {})
        names = {f.name for f in fields(cls)}
        if set(data) - names:
            raise ConfigError(f"unknown gt_sim option(s) {sorted(set(data) - names)}", fix=f"use only {sorted(names)}")
        return cls(**data)


def _noisy(mask: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Move the boundary of `mask` by `offset` pixels (positive grows): threshold the signed distance."""
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    signed = np.where(mask, inside - 0.5, 0.5 - outside)
    return signed + offset > 0


def _filtered_noise_std(sigma: float) -> float:
    """Std of unit white noise after ``ndimage.gaussian_filter(., sigma)``: the kernel's L2 norm (its impulse
    response), so a field can be scaled to a std without measuring it on a crop that may be far smaller than
    the correlation length (where a measured std is meaningless)."""
    r = int(4.0 * sigma + 0.5)  # gaussian_filter's default truncation
    delta = np.zeros((2 * r + 1, 2 * r + 1))
    delta[r, r] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(delta, sigma, mode="constant") ** 2).sum()))


def mask_radius(mask: np.ndarray) -> float:
    """2 * area / perimeter in pixels (perimeter = mask pixels with a 4-neighbour outside the mask): a disc's
    radius, about half the width of a thin mask."""
    inner = ndimage.binary_erosion(mask, border_value=0)
    perimeter = int(mask.sum()) - int(inner.sum())
    return 2.0 * float(mask.sum()) / max(perimeter, 1)


def perturb_boundary(mask: np.ndarray, rng: np.random.Generator, noise: float, smoothness: float) -> np.ndarray:
    """`mask` with its boundary moved by a smooth random offset of std ``noise * r`` pixels and correlation
    length ``smoothness * r``, r = :func:`mask_radius`. Only a crop around the mask (bounding box plus 4 std) is
    drawn and filtered: cost grows with the object, not the image."""
    if noise <= 0 or not mask.any():
        return mask.copy()
    r = mask_radius(mask)
    std, corr = noise * r, max(smoothness * r, 0.3)
    margin = int(np.ceil(4.0 * std)) + 1  # an offset beyond 4 std is not drawn: the crop bounds the growth
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, mask.shape[0])
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, mask.shape[1])
    field = ndimage.gaussian_filter(rng.standard_normal((y1 - y0, x1 - x0)), corr)
    field *= std / _filtered_noise_std(corr)
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = _noisy(mask[y0:y1, x0:x1], field)
    return out


class GtSimProposer:
    """Masks from GT with random granularity switches and boundary noise; score = IoU with the clean mask."""

    name = "gt_sim"

    def __init__(self, cfg: GtSimConfig | Any = None, seed: int = 0):
        self.cfg = cfg if isinstance(cfg, GtSimConfig) else GtSimConfig.from_mapping(cfg)
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
        min_area = area_px(c.min_area_frac, (h, w))
        ids = [i for i in ids if areas[i] >= min_area]
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
                pieces = [m for m in pieces if m.sum() >= min_area]
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
            noisy = perturb_boundary(m, rng, c.boundary_noise, c.noise_smoothness)
            if not noisy.any():  # shrunk away (a sliver): not proposed
                continue
            union = np.logical_or(noisy, m).sum()
            scores.append(float(np.logical_and(noisy, m).sum()) / max(int(union), 1))
            masks.append(noisy)
        if not masks:
            return Proposals.empty(h, w)
        return Proposals(np.stack(masks), np.asarray(scores, np.float32))
