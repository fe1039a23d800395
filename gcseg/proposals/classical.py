"""`classical`: a weight-free RGB-D mask proposer (the CPU default) at several granularities.

0. Denoise depth with a small median filter (keeps steps); normals from one-sided differences (the side with
   the smaller depth change, so normals next to an occluding contour come from the pixel's own surface).
1. Oversegment: Felzenszwalb graph segmentation of a feature image (CIE-Lab colour, surface normals, log depth).
2. Boundary strength of every 4-neighbour pixel pair from three cues: colour difference, depth discontinuity
   (the step left after extrapolating each side's slope across the pair, relative to depth, so slanted planes
   and creases are not edges) and concave creases (normal angle where surfaces meet concavely, as objects meet
   their support; convex creases, the edges of one object, count `convex_factor`: the local-convexity
   criterion of LCCP, Stein et al. 2014).
3. Agglomerate adjacent regions by ascending mean boundary strength (a hierarchy, like a UCM). Every node of
   the hierarchy is a candidate; its score is its persistence (strength at which it is absorbed minus strength
   at which it formed, i.e. how clearly its boundary stands out), damped for non-compact regions (slivers
   along edges). Nodes of moderate size with the highest score are proposed: overlapping masks, from parts to
   whole objects to object groups.

Defaults were chosen on synthetic frames (160x120, depth noise 0.002, 2 % holes; 8 scenes x 3 frames, seeds
unrelated to the pipeline's): GT instances >= 500 px matched at IoU >= 0.5 by some proposal: 0.85 (0.63 after
the containment filter at 0.8 with min area 100 px: the filter keeps object groups over their members).
Minimum sizes are fractions of the image area (gcseg.pixels). Measured at 320x240 on the synthetic default (val
scenes 4-7, keyframes every 5th frame, containment min area 20 px, GT >= 77 px; coverage before / after
containment, perfect-identity AP50): the earlier sizes (superpixels >= 48 px, proposals >= 120 px: 12 and 30 px
at 160x120 scaled up) 0.67 / 0.40, 0.04 (scenes 4-5); superpixels >= 12 px and proposals >= 77 px (the defaults)
0.83 / 0.51, 0.08; proposals >= 20 px 0.79 / 0.57, 0.12, but on the real HoloLens capture (540x360) its
80-mask budget then fills with small textured fragments and the masks cover 4 % of the view (95 % at the
defaults), so the minimum proposal is the size coverage counts (0.1 % of the image).
Heavier crease / normal weights measured worse (e.g. w_crease 0.5 and feature_normal_weight 0.7: 0.3-0.7)
because per-pixel normals of noisy depth are noisy. ~0.1-0.3 s per 160x120 frame, ~2.5 s at 540x360
(HoloLens capture: walls, furniture, posters come out; textured clutter fragments) on one CPU core.
"""

from __future__ import annotations

import heapq
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from gcseg.errors import ConfigError, InputError
from gcseg.geometry import neighbour_pairs
from gcseg.pixels import area_px
from gcseg.proposals.base import Proposals, backend_config
from gcseg.scene import Frame


@dataclass(frozen=True)
class ClassicalConfig:
    felzenszwalb_scale: float = 60.0  # oversegmentation scale (larger = fewer, larger superpixels)
    felzenszwalb_sigma: float = 0.5  # Gaussian pre-smoothing (pixels)
    feature_normal_weight: float = 0.1  # weight of normals in the oversegmentation features (Lab / 100 = 1)
    feature_depth_weight: float = 2.0  # weight of log depth in the oversegmentation features
    superpixel_min_frac: float = 0.00016  # smallest superpixel, fraction of the image area (12 px at 320x240)
    w_color: float = 1.0  # weight of the colour cue (Lab distance / 100)
    w_depth: float = 1.0  # weight of the depth-discontinuity cue
    w_crease: float = 0.1  # weight of the crease cue (1 - cos angle between normals)
    convex_factor: float = 0.0  # convex creases count this fraction of a concave one
    depth_edge_rel: float = 0.05  # a depth step of this fraction of the depth counts as a full edge (5 cm at 1 m)
    median_px: int = 3  # median filter on depth before the geometric cues (denoise, keep steps); 1 = off
    max_area_frac: float = 0.6  # proposals cover at most this fraction of the image
    min_area_frac: float = 0.001  # proposals under this fraction of the image (77 px at 320x240) are not emitted
    compactness_ref: float = 0.25  # score is damped below this compactness (16 A / P^2; slivers along edges)
    max_masks: int = 80  # at most this many proposals per frame (highest score first)
    min_persistence: float = 0.02  # hierarchy nodes whose boundary stands out less are not proposed

    def __post_init__(self) -> None:
        if not 0 < self.max_area_frac <= 1:
            raise ConfigError(f"classical.max_area_frac must lie in (0, 1], got {self.max_area_frac}", fix="e.g. 0.6")
        if self.max_masks < 1:
            raise ConfigError("classical.max_masks must be >= 1", fix="e.g. 80")
        for k in ("superpixel_min_frac", "min_area_frac"):
            if not 0 <= getattr(self, k) <= 1:
                raise ConfigError(f"classical.{k} must lie in [0, 1] (a fraction of the image area)",
                                  fix="e.g. 0.00026 (20 px at 320x240)")
        if min(self.w_color, self.w_depth, self.w_crease) < 0:
            raise ConfigError("classical cue weights must be >= 0", fix="e.g. w_color: 1.0")
        if not (isinstance(self.median_px, (int, np.integer)) and self.median_px >= 1 and self.median_px % 2 == 1):
            raise ConfigError(f"classical.median_px must be an odd number of pixels >= 1 (a centred median window), "
                              f"got {self.median_px!r}", fix="e.g. 3; 1 = no median filter")



# ---------------------------------------------------------------------------------------------- geometry cues
def camera_points(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(H, W, 3) camera-frame points (z = depth)."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    z = depth.astype(np.float64)
    return np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], axis=-1)


def smooth_depth(depth: np.ndarray, valid: np.ndarray, size: int) -> np.ndarray:
    """Edge-preserving denoising: median over the valid pixels of a size x size window (steps survive a
    median, sensor noise does not); invalid pixels stay 0."""
    if size <= 1:
        return depth
    med = _nan_median(np.where(valid, depth, np.nan), size)
    return np.where(valid & np.isfinite(med), med, 0.0)


def _nan_median(x: np.ndarray, size: int) -> np.ndarray:
    """nan-aware median filter via a sliding-window view (vectorised)."""
    r = size // 2
    pad = np.pad(x, r, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, (size, size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan windows -> nan, handled by the caller
        return np.nanmedian(win.reshape(*x.shape, size * size), axis=-1)


def _one_sided_diff(p: np.ndarray, valid: np.ndarray, axis: int) -> np.ndarray:
    """Derivative of points along `axis` using the neighbour (forward or backward) with the smaller depth
    change, so that normals next to a depth discontinuity come from the pixel's own surface."""
    fwd = np.zeros_like(p)
    bwd = np.zeros_like(p)
    sl_a = [slice(None)] * 2
    sl_b = [slice(None)] * 2
    sl_a[axis], sl_b[axis] = slice(1, None), slice(None, -1)
    d = p[tuple(sl_a)] - p[tuple(sl_b)]
    ok = valid[tuple(sl_a)] & valid[tuple(sl_b)]
    d[~ok] = np.inf
    fwd[tuple(sl_b)] = d
    bwd[tuple(sl_a)] = d
    edge_f = [slice(None)] * 2
    edge_f[axis] = slice(-1, None)
    fwd[tuple(edge_f)] = np.inf
    edge_b = [slice(None)] * 2
    edge_b[axis] = slice(0, 1)
    bwd[tuple(edge_b)] = np.inf
    use_fwd = np.abs(fwd[..., 2]) <= np.abs(bwd[..., 2])
    out = np.where(use_fwd[..., None], fwd, bwd)
    out[~np.isfinite(out).all(-1)] = 0.0
    return out


def surface_normals(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Unit normals (H, W, 3) oriented towards the camera; zero where undefined."""
    n = np.cross(_one_sided_diff(points, valid, 1), _one_sided_diff(points, valid, 0))
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(norm > 1e-12, n / np.maximum(norm, 1e-12), 0.0)
    flip = (n * points).sum(-1) > 0  # must face the camera: n . p < 0
    n[flip] *= -1
    n[~valid] = 0.0
    return n


def pair_strength(lab: np.ndarray, points: np.ndarray, normals: np.ndarray, valid: np.ndarray,
                  cfg: ClassicalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Boundary strength of horizontal (H, W-1) and vertical (H-1, W) neighbour pairs."""
    out = []
    for axis in (1, 0):
        a, b = neighbour_pairs(axis)
        color = np.linalg.norm(lab[a] - lab[b], axis=-1) / 100.0
        both = valid[a] & valid[b]
        pa, pb = points[a], points[b]
        depth_edge = _jump_strength(points[..., 2], valid, axis, cfg)
        # normals one pixel further out on each side, so a crease smeared over two pixels is still seen
        n2a = _shift(normals, axis, -1)[a]
        n2b = _shift(normals, axis, +1)[b]
        bend = np.clip(1.0 - (n2a * n2b).sum(-1), 0.0, 1.0)
        concave = ((n2a - n2b) * (pa - pb)).sum(-1) < 0
        crease = bend * np.where(concave, 1.0, cfg.convex_factor)
        geo = cfg.w_depth * depth_edge + cfg.w_crease * crease
        s = cfg.w_color * color + np.where(both, geo, 0.0)
        out.append(s.astype(np.float64))
    return out[0], out[1]


def _jump_strength(z: np.ndarray, valid: np.ndarray, axis: int, cfg: ClassicalConfig) -> np.ndarray:
    """Depth-discontinuity strength of each neighbour pair along `axis`: the step left after extrapolating
    each side's local slope (two-pixel baseline) across the pair, relative to depth. A slanted plane or a
    crease leaves (almost) no step, an occluding contour leaves the whole jump."""
    za, zb = np.moveaxis(z, axis, -1)[..., :-1], np.moveaxis(z, axis, -1)[..., 1:]
    zl = np.moveaxis(_shift(z, axis, -2), axis, -1)[..., :-1]  # z[x-2] for pair (x, x+1)
    zr = np.moveaxis(_shift(z, axis, +2), axis, -1)[..., 1:]  # z[x+3]
    va = np.moveaxis(valid & _shift(valid, axis, -2), axis, -1)[..., :-1]
    vb = np.moveaxis(valid & _shift(valid, axis, +2), axis, -1)[..., 1:]
    step = np.abs(zb - za)
    from_left = np.where(va, np.abs(zb - (za + (za - zl) / 2.0)), step)
    from_right = np.where(vb, np.abs(za - (zb - (zr - zb) / 2.0)), step)
    resid = np.minimum(np.minimum(from_left, from_right), step)
    rel = resid / np.maximum(np.minimum(za, zb), 1e-6)
    out = np.clip(rel / cfg.depth_edge_rel, 0.0, 1.0)
    return np.moveaxis(out, -1, axis)


def _shift(x: np.ndarray, axis: int, step: int) -> np.ndarray:
    """x shifted by `step` along `axis` with edge replication (x[i+step])."""
    idx = np.clip(np.arange(x.shape[axis]) + step, 0, x.shape[axis] - 1)
    return np.take(x, idx, axis=axis)


# ----------------------------------------------------------------------------------------------- hierarchy
@dataclass
class Hierarchy:
    """Agglomeration result: node i < n_leaves is superpixel i; later nodes are merges (children, birth, death)."""

    n_leaves: int
    children: list[tuple[int, int]]  # of node n_leaves + j
    birth: np.ndarray  # float64 (nodes,)
    death: np.ndarray  # float64 (nodes,); inf for roots
    area: np.ndarray  # int64 (nodes,)
    perimeter: np.ndarray  # int64 (nodes,): 4-neighbour boundary pairs to other nodes + image-border pixels


def agglomerate(labels: np.ndarray, sh: np.ndarray, sv: np.ndarray) -> Hierarchy:
    """Merge adjacent regions by ascending mean boundary strength until every connected part is one node."""
    n = int(labels.max()) + 1
    area = list(np.bincount(labels.ravel(), minlength=n).astype(np.int64))
    la = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    lb = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    s = np.concatenate([sh.ravel(), sv.ravel()])
    diff = la != lb
    lo, hi, s = np.minimum(la, lb)[diff], np.maximum(la, lb)[diff], s[diff]
    key = lo.astype(np.int64) * n + hi
    uniq, inv = np.unique(key, return_inverse=True)
    ssum = np.bincount(inv, weights=s)
    cnt = np.bincount(inv).astype(np.float64)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    perim = list((np.bincount(lo, minlength=n) + np.bincount(hi, minlength=n)
                  + np.bincount(border, minlength=n)).astype(np.int64))
    adj: list[dict[int, list[float]]] = [dict() for _ in range(n)]
    heap: list[tuple[float, int, int]] = []
    for kk, sm, c in zip(uniq.tolist(), ssum.tolist(), cnt.tolist()):
        i, j = divmod(kk, n)
        adj[i][j] = [sm, c]
        adj[j][i] = [sm, c]
        heap.append((sm / c, i, j))
    heapq.heapify(heap)
    alive = [True] * n
    birth = [0.0] * n
    death = [np.inf] * n
    children: list[tuple[int, int]] = []
    while heap:
        cost, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        new = len(alive)
        alive[i] = alive[j] = False
        death[i] = death[j] = cost
        alive.append(True)
        birth.append(cost)
        death.append(np.inf)
        area.append(area[i] + area[j])
        perim.append(perim[i] + perim[j] - 2 * int(adj[i][j][1]))
        children.append((i, j))
        merged: dict[int, list[float]] = {}
        for src in (i, j):
            for nb, (sm, c) in adj[src].items():
                if nb in (i, j):
                    continue
                e = merged.setdefault(nb, [0.0, 0.0])
                e[0] += sm
                e[1] += c
                del adj[nb][src]
            adj[src] = {}
        adj.append(merged)
        for nb, (sm, c) in merged.items():
            adj[nb][new] = [sm, c]
            heapq.heappush(heap, (sm / c, min(nb, new), max(nb, new)))
    return Hierarchy(n, children, np.asarray(birth), np.asarray(death), np.asarray(area, np.int64),
                     np.asarray(perim, np.int64))


def node_leaves(h: Hierarchy, node: int) -> list[int]:
    stack, out = [node], []
    while stack:
        x = stack.pop()
        if x < h.n_leaves:
            out.append(x)
        else:
            stack.extend(h.children[x - h.n_leaves])
    return out


# ------------------------------------------------------------------------------------------------- proposer
class ClassicalProposer:
    """Multi-granularity RGB-D proposals from a boundary-strength region hierarchy (no learned weights)."""

    name = "classical"

    def __init__(self, cfg: ClassicalConfig | Any = None, seed: int = 0):
        self.cfg = backend_config(ClassicalConfig, cfg, "classical")
        self.seed = seed  # deterministic algorithm; kept for a uniform constructor

    def oversegment(self, frame: Frame, lab: np.ndarray, normals: np.ndarray, depth: np.ndarray) -> np.ndarray:
        from skimage.segmentation import felzenszwalb

        valid = depth > 0
        logd = np.log(np.where(valid, depth, np.median(depth[valid]) if valid.any() else 1.0))
        c = self.cfg
        feats = np.concatenate([lab / 100.0 * np.array([0.5, 1.0, 1.0]), normals * c.feature_normal_weight,
                                (logd * c.feature_depth_weight)[..., None]], axis=-1)
        h, w = depth.shape
        min_size = max(2, area_px(self.cfg.superpixel_min_frac, (h, w)))
        with warnings.catch_warnings():  # skimage warns about > 4 channels; a feature image is intended
            warnings.simplefilter("ignore", RuntimeWarning)
            labels = felzenszwalb(feats, scale=self.cfg.felzenszwalb_scale / 255.0,
                                  sigma=self.cfg.felzenszwalb_sigma, min_size=min_size, channel_axis=-1)
        _, labels = np.unique(labels, return_inverse=True)
        return labels.reshape(h, w).astype(np.int64)

    def __call__(self, frame: Frame) -> Proposals:
        from skimage.color import rgb2lab

        h, w = frame.hw
        if frame.color.shape != (h, w, 3):
            raise InputError(f"frame {frame.index}: colour {frame.color.shape} does not match depth {(h, w)}",
                             fix="readers must resize colour to the depth resolution")
        cfg = self.cfg
        depth = np.nan_to_num(np.asarray(frame.depth, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        valid = depth > 0
        lab = rgb2lab(frame.color)
        depth = smooth_depth(depth, valid, int(cfg.median_px))
        points = camera_points(depth, np.asarray(frame.intrinsics, np.float64))
        normals = surface_normals(points, valid)
        labels = self.oversegment(frame, lab, normals, depth)
        sh, sv = pair_strength(lab, points, normals, valid, cfg)
        hier = agglomerate(labels, sh, sv)
        finite_death = np.where(np.isfinite(hier.death), hier.death, hier.birth.max(initial=0.0) + 1.0)
        persistence = finite_death - hier.birth
        # compactness 16 A / P^2 (a square: 1, a one-pixel sliver along an edge: ~4 / length)
        compact = np.minimum(1.0, 16.0 * hier.area / np.maximum(hier.perimeter, 1) ** 2)
        score = (1.0 - np.exp(-persistence / 0.1)) * np.minimum(1.0, compact / cfg.compactness_ref)
        cand = np.flatnonzero((hier.area >= area_px(cfg.min_area_frac, (h, w))) & (hier.area <= cfg.max_area_frac * h * w)
                              & (persistence >= cfg.min_persistence))
        if len(cand) == 0:
            return Proposals.empty(h, w)
        # highest score first; ties: smaller node id (deterministic)
        cand = cand[np.lexsort((cand, -score[cand]))][: cfg.max_masks]
        masks = np.stack([np.isin(labels, node_leaves(hier, int(c))) for c in cand])
        return Proposals(masks, score[cand].astype(np.float32))
