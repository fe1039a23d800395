"""The room shell of one frame: floor, ceiling and walls, found as the extreme planes of the scene.

* floor: the lowest height peak of up-facing surfaces with (almost) nothing below it; a table top seen without
  the floor has its legs below it and is not taken. Ceiling: the same from above.
* walls: the dominant horizontal directions of vertical surfaces; along each direction (and its opposite) the
  farthest plane with enough area and height that rises to about the camera's height; everything on or beyond it
  (posters, what a doorway shows) is shell. Furniture standing a few centimetres in front of a wall stays.
* tolerances: plane_abs + plane_rel * depth, or three times the sensor noise measured on the plane's own pixels
  if larger (a real depth camera at 5 m).
Heights use the world up direction of `geometry.world_up`; nothing assumes a particular world axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from gcseg.proposals.rgbd.config import RgbdConfig
from gcseg.proposals.rgbd.geometry import View

BIN = 0.02  # metres: histogram bin of plane offsets
PEAK_HALF = 2  # bins on either side summed into a peak's mass (noise spreads a plane over a few bins)


@dataclass
class Room:
    mask: np.ndarray  # bool (h, w): floor, ceiling, walls and what lies beyond the walls
    floor: float | None = None  # height of the floor (metres, along world up)
    ceiling: float | None = None
    walls: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (world direction, offset) per wall


def _peaks(values: np.ndarray, weights: np.ndarray, min_mass: float) -> list[float]:
    """Centres of histogram peaks (local maxima of the mass within +-PEAK_HALF bins) with mass >= min_mass."""
    if values.size == 0:
        return []
    lo = float(values.min()) - BIN * (PEAK_HALF + 1)
    nb = int((float(values.max()) - lo) / BIN) + PEAK_HALF + 2
    hist = np.bincount(((values - lo) / BIN).astype(np.int64), weights=weights, minlength=nb)
    mass = np.convolve(hist, np.ones(2 * PEAK_HALF + 1), mode="same")
    left = np.concatenate([[-1.0], mass[:-1]])
    right = np.concatenate([mass[1:], [-1.0]])
    idx = np.flatnonzero((mass >= min_mass) & (mass > left) & (mass >= right))
    return [lo + (i + 0.5) * BIN for i in idx]


def _refine(values: np.ndarray, weights: np.ndarray, centre: float) -> float:
    """Weighted median of the values within the peak's window."""
    sel = np.abs(values - centre) <= BIN * (PEAK_HALF + 0.5)
    v, w = values[sel], weights[sel]
    order = np.argsort(v, kind="stable")
    cw = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cw, cw[-1] / 2)])


def noise_rel(resid: np.ndarray, z: np.ndarray) -> float:
    """Robust relative spread (1.4826 MAD of resid / depth) of the inliers of a plane: the sensor's noise."""
    r = resid / np.maximum(z, 1e-6)
    if r.size < 20:
        return 0.0
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def _tolerance(view: View, resid: np.ndarray, inl: np.ndarray, cfg: RgbdConfig) -> np.ndarray:
    """Per-pixel distance to a plane still counted on it: plane_abs + plane_rel * depth, or 3 sigma of the
    sensor noise measured on the plane's own inliers if that is larger (a real depth camera at 5 m)."""
    rel = noise_rel(resid[inl], view.z[inl])
    return np.maximum(cfg.plane_abs + cfg.plane_rel * view.z, 3.0 * rel * view.z)


def _extreme_plane(sign: float, view: View, facing: np.ndarray, cfg: RgbdConfig) -> tuple[float, np.ndarray] | None:
    """Lowest (sign +1: floor) or highest (-1: ceiling) horizontal plane with at most below_max_frac of the
    valid pixels clearly beyond it (5 cm plus the noise). Returns (height, per-pixel tolerance) or None."""
    h = sign * view.height
    vals, wts = h[facing], view.area[facing]
    for c in _peaks(vals, wts, cfg.floor_min_area):  # ascending
        level = _refine(vals, wts, c)
        near = facing & (np.abs(h - level) <= 0.1)
        tol = _tolerance(view, h - level, near, cfg)
        if np.mean((h < level - 0.05 - tol) & view.valid) / max(np.mean(view.valid), 1e-9) <= cfg.below_max_frac:
            return sign * level, tol
        return None  # something stands below the lowest candidate: not the floor (higher ones neither)
    return None


def find_room(view: View, cfg: RgbdConfig) -> Room:
    valid = view.valid
    ok = view.normal_ok & valid
    cos_up = (view.normals * view.up).sum(-1)
    room = np.zeros(view.hw, bool)
    ch = np.cos(np.radians(cfg.horizontal_deg))
    floor = ceiling = None
    found = _extreme_plane(1.0, view, ok & (cos_up > ch), cfg)
    if found is not None:
        floor, tol = found
        room |= valid & (view.height < floor + tol)
    found = _extreme_plane(-1.0, view, ok & (cos_up < -ch), cfg)
    if found is not None:
        ceiling, tol = found
        room |= valid & (view.height > ceiling - tol)
    walls = []
    vert = ok & ~room & (np.abs(cos_up) < np.sin(np.radians(cfg.vertical_deg)))
    if vert.sum() >= 50:
        up = view.up_world
        e1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(up, e1)
        nw = view.normals[vert] @ view.rot.T
        wv = view.area[vert]
        phi = np.degrees(np.arctan2(nw @ e2, nw @ e1)) % 180.0
        hist = np.bincount(phi.astype(np.int64) % 180, weights=wv, minlength=180)
        mass = ndimage.convolve1d(hist, np.ones(7), mode="wrap")
        axes: list[float] = []
        for a in np.argsort(-mass, kind="stable"):
            if mass[a] < cfg.wall_min_area:
                break
            if all(min(abs(a - b), 180 - abs(a - b)) >= 20 for b in axes):
                axes.append(float(a))
            if len(axes) >= 4:
                break
        eye = float(view.eye @ view.up_world)
        rows_v = np.nonzero(vert)[0]
        top_rows = max(2, int(round(0.02 * view.hw[0])))
        pts_v = view.world[vert]
        hts_v = view.height[vert]
        for a in axes:
            for flip in (0.0, 180.0):
                ang = np.radians(a + 0.5 + flip)
                d = np.cos(ang) * e1 + np.sin(ang) * e2
                facing = (nw @ d) < -np.cos(np.radians(20.0))  # seen from inside the room, looking along d
                if facing.sum() < 20:
                    continue
                s = pts_v[facing] @ d
                wf = wv[facing]
                for c in reversed(_peaks(s, wf, cfg.wall_min_area)):  # farthest first
                    off = _refine(s, wf, c)
                    inl = np.abs(s - off) <= BIN * (PEAK_HALF + 0.5)
                    hts = hts_v[facing][inl]
                    lo, hi = np.percentile(hts, 5), np.percentile(hts, 95)
                    # a wall rises to about eye level or out of the view (a kitchen cabinet's front, the
                    # farthest plane when nothing behind it shows, does neither)
                    tall = hi >= eye - cfg.wall_below_eye or (rows_v[facing][inl] < top_rows).any()
                    if hi - lo >= cfg.wall_min_height and tall:
                        walls.append((d, off))
                        s_all = view.world @ d
                        inl_px = np.zeros(view.hw[0] * view.hw[1], bool)
                        inl_px[np.flatnonzero(vert)[np.flatnonzero(facing)[inl]]] = True
                        inl_px = inl_px.reshape(view.hw)
                        tol = _tolerance(view, s_all - off, inl_px, cfg)
                        room |= valid & (s_all > off - tol)
                        break
    return Room(room, floor, ceiling, walls)
