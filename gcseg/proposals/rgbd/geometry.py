"""Per-frame geometry of the `rgbd` proposer: input checks, working resolution, hole filling, camera points,
normals, the world up direction, heights and depth continuity between neighbouring pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gcseg.errors import InputError
from gcseg.geometry import check_pose, neighbour_pairs, scale_intrinsics
from gcseg.proposals.rgbd.config import RgbdConfig
from gcseg.scene import Frame

REFERENCE_PIXELS = 320 * 240  # pixel-unit options are given at this image size and scaled with the image side


@dataclass
class View:
    """One frame at the working resolution. Arrays are (h, w[, 3]); `valid` = measured or filled depth."""

    hw: tuple[int, int]  # working size
    out_hw: tuple[int, int]  # the frame's size (masks are returned at this size)
    px: float  # pixel-unit scale: working image side / reference side
    f: float  # focal length (pixels, working resolution)
    color: np.ndarray  # uint8 (h, w, 3)
    lab: np.ndarray  # float32 CIE-Lab (h, w, 3), lightness scaled by lightness_weight
    z: np.ndarray  # float64 smoothed depth, nearest-valid fill everywhere (use with `valid`)
    valid: np.ndarray  # bool: measured depth, or a hole narrower than fill_hole_px filled from its border
    points: np.ndarray  # float64 (h, w, 3) camera frame
    normals: np.ndarray  # float64 (h, w, 3) unit, facing the camera; zero where undefined
    normal_ok: np.ndarray  # bool
    up: np.ndarray  # float64 (3,) world up in camera coordinates
    up_world: np.ndarray  # float64 (3,) world up in world coordinates
    rot: np.ndarray  # float64 (3, 3) camera-to-world rotation
    eye: np.ndarray  # float64 (3,) camera centre in the world
    height: np.ndarray  # float64 world height along `up_world` (metres)
    world: np.ndarray  # float64 (h, w, 3) world points
    cont_h: np.ndarray  # bool (h, w-1): pixel (y, x) and (y, x+1) lie on one continuous surface
    cont_v: np.ndarray  # bool (h-1, w): pixel (y, x) and (y+1, x) likewise
    area: np.ndarray  # float64 metric area (m^2) of each pixel's surface patch


def check_frame(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Depth (float64) and colour (uint8) of a frame, or an InputError naming what is wrong. Depth must be
    finite and >= 0 (0 = no measurement); colour uint8 (H, W, 3) at the depth's size; K and pose finite."""
    depth = np.asarray(frame.depth)
    color = np.asarray(frame.color)
    name = f"frame {frame.index}" + (f" ({frame.name})" if frame.name else "")
    if depth.ndim != 2 or min(depth.shape) < 4:
        raise InputError(f"{name}: depth must be an (H, W) image of at least 4x4 pixels, got shape {depth.shape}",
                         fix="pass z-depth in metres as a 2-D array")
    if color.shape != depth.shape + (3,):
        raise InputError(f"{name}: colour is {color.shape}, depth is {depth.shape}; the rgbd proposer needs "
                         "colour at the depth resolution", fix="resize colour to the depth image (the readers do)")
    if color.dtype != np.uint8:
        raise InputError(f"{name}: colour must be uint8 RGB, got {color.dtype}", fix="convert colour to uint8 0-255")
    depth = depth.astype(np.float64)
    bad = ~np.isfinite(depth)
    if bad.any():
        raise InputError(f"{name}: depth has {int(bad.sum())} non-finite values (NaN/inf)",
                         fix="mark missing depth with 0, as the readers do")
    if (depth < 0).any():
        raise InputError(f"{name}: depth has negative values", fix="depth is z-depth in metres, 0 = missing")
    k = np.asarray(frame.intrinsics, np.float64)
    if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InputError(f"{name}: intrinsics must be a finite 3x3 K with fx, fy > 0", fix="check the intrinsics file")
    check_pose(frame.pose)
    return depth, color


def working_size(hw: tuple[int, int], work_pixels: int) -> tuple[int, int]:
    """The frame's size, shrunk (never enlarged) to about `work_pixels` pixels with its aspect ratio."""
    h, w = hw
    s = min(1.0, float(np.sqrt(work_pixels / float(h * w))))
    return max(4, int(round(h * s))), max(4, int(round(w * s)))


def resample_index(src: int, dst: int) -> np.ndarray:
    """Nearest source index of each destination pixel centre (pixel-centre convention)."""
    return np.clip(np.floor((np.arange(dst) + 0.5) * src / dst).astype(np.int64), 0, src - 1)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb).astype(np.float32)


def fill_holes(depth: np.ndarray, max_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(depth with every pixel set to its nearest measured pixel's depth, valid = measured or within `max_px`
    of a measurement). Sensor dropouts (HoloLens' line grid, small blobs) stop cutting surfaces apart."""
    measured = depth > 0
    dist, (iy, ix) = ndimage.distance_transform_edt(~measured, return_indices=True)
    return depth[iy, ix], measured | (dist <= max_px)


def camera_points(z: np.ndarray, k: np.ndarray) -> np.ndarray:
    h, w = z.shape
    u = np.arange(w, dtype=np.float64)[None, :]
    v = np.arange(h, dtype=np.float64)[:, None]
    return np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], axis=-1)


def _residual_steps(z: np.ndarray, axis: int) -> np.ndarray:
    """Depth step between neighbours along `axis` left after extrapolating either side's slope across the pair
    (a slanted plane leaves ~0, an occluding contour its whole jump); shape of the pair array."""
    zz = np.moveaxis(z, axis, -1)
    za, zb = zz[..., :-1], zz[..., 1:]
    zl = np.concatenate([zz[..., :1], zz[..., :-2]], axis=-1)  # z[x-1] for pair (x, x+1), edge-replicated
    zr = np.concatenate([zz[..., 2:], zz[..., -1:]], axis=-1)  # z[x+2]
    step = np.abs(zb - za)
    from_left = np.abs(zb - (2 * za - zl))
    from_right = np.abs(za - (2 * zb - zr))
    return np.moveaxis(np.minimum(np.minimum(from_left, from_right), step), -1, axis)


def continuity(z: np.ndarray, valid: np.ndarray, lab: np.ndarray, cfg: RgbdConfig
               ) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical neighbour pairs on one continuous surface: both valid, the slope-corrected depth
    step under step_abs + step_rel * depth, and not a smaller step (weak_step_*) that coincides with a colour
    edge (an object standing a few centimetres in front of another of another colour)."""
    out = []
    for axis in (1, 0):
        a, b = neighbour_pairs(axis)
        zmin = np.minimum(z[a], z[b])
        resid = _residual_steps(z, axis)
        ok = resid <= cfg.step_abs + cfg.step_rel * zmin
        weak = resid > cfg.weak_step_abs + cfg.weak_step_rel * zmin
        colour = np.linalg.norm(lab[a] - lab[b], axis=-1) > cfg.color_edge
        out.append(ok & ~(weak & colour) & valid[a] & valid[b])
    return out[0], out[1]


def _shifted(x: np.ndarray, axis: int, step: int) -> np.ndarray:
    idx = np.clip(np.arange(x.shape[axis]) + step, 0, x.shape[axis] - 1)
    return np.take(x, idx, axis=axis)


def _run_ok(cont: np.ndarray, axis: int, step: int) -> np.ndarray:
    """ok[i] = the `step` neighbour pairs from pixel i to pixel i + step along `axis` are all continuous."""
    c = np.moveaxis(cont, axis, -1)
    bad = np.concatenate([np.zeros(c.shape[:-1] + (1,), np.int64), np.cumsum(~c, axis=-1)], axis=-1)
    n = bad.shape[-1]
    ok = np.zeros(bad.shape, bool)
    ok[..., : n - step] = (bad[..., step:] - bad[..., : n - step]) == 0
    return np.moveaxis(ok, -1, axis)


def surface_normals(points: np.ndarray, valid: np.ndarray, cont_h: np.ndarray, cont_v: np.ndarray, step: int,
                    smooth: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals facing the camera from central differences over +-`step` pixels (unbiased, unlike one-sided
    ones) that do not cross a depth discontinuity (one-sided where only one side is continuous), averaged over a
    `smooth` x `smooth` window of defined normals. Returns (normals, defined)."""
    tangents = []
    for axis, cont in ((1, cont_h), (0, cont_v)):
        fwd_ok = _run_ok(cont, axis, step)
        bwd_ok = _shifted(fwd_ok, axis, -step)
        edge = [slice(None)] * 2
        edge[axis] = slice(0, step)
        bwd_ok[tuple(edge)] = False
        fwd = _shifted(points, axis, step)
        bwd = _shifted(points, axis, -step)
        t = np.where((fwd_ok & bwd_ok)[..., None], fwd - bwd,
                     np.where(fwd_ok[..., None], 2 * (fwd - points),
                              np.where(bwd_ok[..., None], 2 * (points - bwd), 0.0)))
        tangents.append((t, fwd_ok | bwd_ok))
    (tx, okx), (ty, oky) = tangents
    n = np.cross(tx, ty)
    ok = okx & oky & valid
    norm = np.linalg.norm(n, axis=-1)
    ok &= norm > 1e-12
    n = np.where(ok[..., None], n / np.maximum(norm, 1e-12)[..., None], 0.0)
    n[(n * points).sum(-1) > 0] *= -1  # face the camera
    if smooth > 1:
        n = np.stack([ndimage.uniform_filter(n[..., c], smooth, mode="nearest") for c in range(3)], axis=-1)
        norm = np.linalg.norm(n, axis=-1)
        ok &= norm > 0.3  # neighbours disagree wildly: leave undefined
        n = np.where(ok[..., None], n / np.maximum(norm, 1e-12)[..., None], 0.0)
    return n, ok


def world_up(pose: np.ndarray, normals: np.ndarray, ok: np.ndarray, weight: np.ndarray, cfg: RgbdConfig,
             scene_up: np.ndarray | None = None) -> np.ndarray:
    """World up (unit, world coordinates). The starting axis: `scene_up` when given (decided once per scene from
    its poses, gcseg.upright.proposer_up: one frame alone cannot tell a camera pitched steeply down from one
    looking ahead), else this frame's rule: the camera's up (-y of OpenCV axes) in the world is usually within 45
    degrees of gravity, so take the world axis closest to it (ScanNet and the synthetic scenes are z-up, the
    HoloLens capture y-up), or the camera's up itself when no axis is within 45 degrees. Either start is then
    refined to the area-weighted mean of the normals of horizontal surfaces (floor, table tops) within
    up_refine_deg of it, so a world frame not aligned with gravity still works."""
    r = pose[:3, :3]
    if scene_up is not None:
        up = np.asarray(scene_up, np.float64) / float(np.linalg.norm(scene_up))
    else:
        cam_up = -r[:, 1]
        k = int(np.argmax(np.abs(cam_up)))
        up = cam_up.copy()
        if abs(cam_up[k]) >= np.cos(np.radians(45.0)):
            up = np.zeros(3)
            up[k] = np.sign(cam_up[k])
    nw = normals[ok] @ r.T  # world-frame normals
    wt = weight[ok]
    for deg in (cfg.up_refine_deg, cfg.up_refine_deg / 2):
        c = nw @ up
        sel = np.abs(c) >= np.cos(np.radians(deg))
        if wt[sel].sum() <= 0 or sel.sum() < 50:
            break
        m = (nw[sel] * (np.sign(c[sel]) * wt[sel])[:, None]).sum(0)
        up = m / np.linalg.norm(m)
    return up


def prepare(frame: Frame, cfg: RgbdConfig, scene_up: np.ndarray | None = None) -> View | None:
    """Check the frame and compute its geometry at the working resolution; None when no depth is valid.
    `scene_up`: the scene's world up (world coordinates) that `world_up` starts from; None = the frame's own."""
    depth, color = check_frame(frame)
    out_hw = depth.shape
    if not (depth > 0).any():
        return None
    hw = working_size(out_hw, cfg.work_pixels)
    k = np.asarray(frame.intrinsics, np.float64)
    if hw != out_hw:
        iy, ix = resample_index(out_hw[0], hw[0]), resample_index(out_hw[1], hw[1])
        depth = depth[np.ix_(iy, ix)]  # nearest: keeps depth edges sharp, mixes no surfaces
        from PIL import Image

        color = np.asarray(Image.fromarray(color).resize((hw[1], hw[0]), Image.BOX))
        k = scale_intrinsics(k, out_hw, hw)
    px = float(np.sqrt(hw[0] * hw[1] / REFERENCE_PIXELS))
    z, valid = fill_holes(depth, cfg.fill_hole_px * px)
    if cfg.median_px > 1:
        med = ndimage.median_filter(z, size=cfg.median_px, mode="nearest")
        # a pixel far off its neighbourhood's median is a thin structure (a lamp's pole, a chair leg seen from
        # afar), not noise: keep it
        z = np.where(np.abs(z - med) > cfg.step_abs + cfg.step_rel * med, z, med)
    points = camera_points(z, k)
    lab = rgb_to_lab(color)
    lab[..., 0] *= cfg.lightness_weight  # shading changes lightness between the faces of one object, not hue
    cont_h, cont_v = continuity(z, valid, lab, cfg)
    step = max(1, int(round(cfg.normal_step_px * px)))
    smooth = max(1, int(round(cfg.normal_smooth_px * px)) | 1)
    normals, normal_ok = surface_normals(points, valid, cont_h, cont_v, step, smooth)
    f = float(np.sqrt(k[0, 0] * k[1, 1]))
    ray = points / np.maximum(np.linalg.norm(points, axis=-1, keepdims=True), 1e-9)
    facing = np.where(normal_ok, np.abs((normals * ray).sum(-1)), 1.0)
    area = (z / f) ** 2 / np.maximum(facing, 0.2)
    pose = np.asarray(frame.pose, np.float64)
    up_world = world_up(pose, normals, normal_ok & valid, area, cfg, scene_up)
    up = pose[:3, :3].T @ up_world
    world = points @ pose[:3, :3].T + pose[:3, 3]
    height = world @ up_world
    return View(hw=hw, out_hw=out_hw, px=px, f=f, color=color, lab=lab, z=z, valid=valid,
                points=points, normals=normals, normal_ok=normal_ok, up=up, up_world=up_world, rot=pose[:3, :3], eye=pose[:3, 3].copy(), height=height,
                world=world, cont_h=cont_h, cont_v=cont_v, area=area)
