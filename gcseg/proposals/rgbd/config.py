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
    color_edge: float = 12.0  # ... CIE-Lab distance of that colour change
    lightness_weight: float = 0.5  # colour distances weigh CIE-Lab lightness by this (shading between faces)
    up_refine_deg: float = 20.0  # normals this close to the up axis refine it (horizontal surfaces)
    # --- room shell ---
    horizontal_deg: float = 20.0  # a normal this close to up/down is a horizontal surface (floor, tops)
    vertical_deg: float = 15.0  # a normal this close to horizontal is a vertical surface (walls)
    plane_abs: float = 0.012  # metres: points this close to the floor / ceiling / a wall plane belong to it,
    plane_rel: float = 0.003  # ... plus this fraction of the depth
    floor_min_area: float = 0.3  # m^2: a floor / ceiling candidate covers at least this much
    below_max_frac: float = 0.02  # at most this fraction of the valid pixels lies clearly (5 cm + noise) below
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
    footprint_margin: float = 0.03  # metres: a footprint box is widened (what hangs under) or shrunk (zone) so much
    item_max_ratio: float = 0.92  # an item is at most this fraction of its support's length
    item_min_height: float = 0.03  # metres: an item stands at least this high (flatter: noise on the support)
    under_reach: float = 0.3  # metres: pieces ending this close under a support or piece above may join it
    color_cut: float = 20.0  # CIE-Lab distance: what stands on a support is told apart at colour edges this strong
    column_height: float = 0.5  # metres: ... up to this height over the support (its zone); 0 = no items
    tall_plane_height: float = 1.0  # metres: vertical planes this tall among the objects are structure
    regrow_px: float = 2.0  # an item grows back into the band by this many pixels
    max_area_frac: float = 0.5  # no mask covers more than this share of the image (an unremoved wall)
    part_max_share: float = 0.95  # a part covers less than this share of its object (else it is the object)
    min_area_px: float = 20.0  # masks under this many pixels (at 320x240, scaled with the image area) are dropped

    def __post_init__(self) -> None:
        positive = ("work_pixels", "normal_step_px", "step_abs", "plane_abs", "floor_min_area", "wall_min_area",
                    "support_dh", "support_min_area", "support_min_extent", "slab_max_thickness", "band_abs",
                    "item_min_height", "tall_plane_height", "color_cut", "color_edge", "max_area_frac",
                    "part_max_share")
        non_negative = ("fill_hole_px", "step_rel", "weak_step_abs", "weak_step_rel", "plane_rel", "wall_min_height",
                        "wall_below_eye", "support_min_depth", "slab_min_extent", "band_rel", "footprint_margin",
                        "under_reach", "column_height", "regrow_px", "min_area_px", "lightness_weight")
        checks = {k: getattr(self, k) > 0 for k in positive}
        checks.update({k: getattr(self, k) >= 0 for k in non_negative})
        checks.update({
            "work_pixels": self.work_pixels >= 64,
            "median_px": self.median_px >= 1 and self.median_px % 2 == 1,
            "normal_smooth_px": self.normal_smooth_px >= 1,
            "up_refine_deg": 0 < self.up_refine_deg < 45,
            "horizontal_deg": 0 < self.horizontal_deg < 45,
            "vertical_deg": 0 < self.vertical_deg < 45,
            "below_max_frac": 0 <= self.below_max_frac < 1,
            "item_max_ratio": 0 < self.item_max_ratio <= 1,
            "max_area_frac": 0 < self.max_area_frac <= 1,
            "part_max_share": 0 < self.part_max_share <= 1,
        })
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
