"""Options of the `rgbd` proposer (one frozen dataclass; params.yaml `sam_keyframes.rgbd` mirrors it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from gcseg.errors import ConfigError


@dataclass(frozen=True)
class RgbdConfig:
    # --- geometry (pixel options at 320x240, scaled with the image side) ---
    work_pixels: int = 320 * 240  # larger frames are segmented at about this many pixels, masks scaled back
    fill_hole_px: float = 3.0  # depth holes up to this far from a measurement are filled from their border
    median_px: int = 3  # median filter on depth before anything geometric (denoise, keep steps); 1 = off
    normal_step_px: float = 2.0  # central-difference half baseline of the normals
    normal_smooth_px: float = 3.0  # box average of the normals
    step_abs: float = 0.01  # metres: neighbours farther apart in depth (after slope extrapolation) are not
    step_rel: float = 0.01  # ... one surface; plus this fraction of the depth (sensor noise grows with depth)
    weak_step_abs: float = 0.002  # metres: a smaller step (plus weak_step_rel * depth) is a boundary where
    weak_step_rel: float = 0.003  # ... the colour changes too (CIE-Lab distance above color_edge)
    color_edge: float = 12.0
    lightness_weight: float = 0.5  # colour distances weigh CIE-Lab lightness by this (shading between faces)
    up_refine_deg: float = 20.0  # normals this close to the up axis refine it (horizontal surfaces)
    # --- room shell ---
    horizontal_deg: float = 20.0  # a normal this close to up/down is a horizontal surface (floor, tops)
    vertical_deg: float = 15.0  # a normal this close to horizontal is a vertical surface (walls)
    plane_abs: float = 0.012  # metres: points this close to the floor / ceiling / a wall plane belong to it,
    plane_rel: float = 0.003  # ... plus this fraction of the depth
    floor_min_area: float = 0.3  # m^2: a floor / ceiling candidate covers at least this much
    below_max_frac: float = 0.02  # nothing (this fraction of the valid pixels) may lie 5 cm below the floor
    wall_min_area: float = 0.3  # m^2: a wall candidate covers at least this much
    wall_min_height: float = 0.3  # metres: ... spans at least this much height ...
    wall_below_eye: float = 0.3  # metres: ... and reaches up to this far below the camera or out of the view
    # --- objects ---
    support_dh: float = 0.015  # metres: neighbouring up-facing pixels this close in height form one surface
    support_min_area: float = 0.01  # m^2: a support surface covers at least this much
    support_min_extent: float = 0.12  # metres: ... and is at least this long
    support_min_depth: float = 0.6  # metres: a support's footprint is at least this deep (boards seen edge-on)
    slab_max_thickness: float = 0.05  # metres: a surface this thin between depth steps, seen edge-on ...
    slab_min_extent: float = 0.25  # ... and at least this long is a support too (a shelf board at eye level)
    band_abs: float = 0.012  # metres: the band taken out around a support's height (+- this ...
    band_rel: float = 0.003  # ... plus this fraction of the depth)
    footprint_margin: float = 0.03  # metres: a support's footprint box is widened by this much
    item_max_ratio: float = 0.92  # an item is at most this fraction of its support's length
    item_min_height: float = 0.03  # metres: an item stands at least this high (flatter: noise on the support)
    under_reach: float = 0.3  # metres: pieces whose top is this close under a support may join it
    color_cut: float = 20.0  # CIE-Lab distance: above a support, pieces holding its structure split at such
    column_height: float = 0.5  # ... colour edges, up to this height over the support (metres); 0 = off
    tall_plane_height: float = 0.7  # metres: vertical planes this tall among the objects are structure
    regrow_px: float = 2.0  # an item grows back into the band by this many pixels
    max_area_frac: float = 0.5  # no mask covers more than this share of the image (an unremoved wall)
    part_max_share: float = 0.95  # a part covers less than this share of its object (else it is the object)
    min_area_px: float = 20.0  # masks under this many pixels (at 320x240, scaled with the image area) are dropped

    def __post_init__(self) -> None:
        checks = {
            "work_pixels": self.work_pixels >= 64,
            "fill_hole_px": self.fill_hole_px >= 0,
            "median_px": self.median_px >= 1,
            "normal_step_px": self.normal_step_px > 0,
            "normal_smooth_px": self.normal_smooth_px >= 1,
            "step_abs": self.step_abs > 0,
            "step_rel": self.step_rel >= 0,
            "up_refine_deg": 0 < self.up_refine_deg < 45,
            "horizontal_deg": 0 < self.horizontal_deg < 45,
            "vertical_deg": 0 < self.vertical_deg < 45,
            "plane_abs": self.plane_abs > 0,
            "plane_rel": self.plane_rel >= 0,
            "floor_min_area": self.floor_min_area > 0,
            "below_max_frac": 0 <= self.below_max_frac < 1,
            "wall_min_area": self.wall_min_area > 0,
            "wall_min_height": self.wall_min_height >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"rgbd option(s) out of range: {', '.join(f'{k}={getattr(self, k)}' for k in bad)}",
                              fix="see the ranges in params.yaml (sam_keyframes.rgbd)")

    @classmethod
    def from_mapping(cls, cfg: Any) -> "RgbdConfig":
        if isinstance(cfg, cls):
            return cfg
        data = dict(cfg.model_dump()) if hasattr(cfg, "model_dump") else dict(cfg or {})
        names = {f.name for f in fields(cls)}
        if set(data) - names:
            raise ConfigError(f"unknown rgbd option(s) {sorted(set(data) - names)}", fix=f"use only {sorted(names)}")
        return cls(**data)
