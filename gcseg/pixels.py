"""The project's one convention for pixel-area thresholds: a **fraction of the image area**.

Every minimum mask / object size in the configs (``sam_keyframes.min_area_frac``, ``coverage_min_area_frac``,
``sam2_track.min_new_area_frac``, ``min_visible_area_frac``, the proposers' ``*_frac`` sizes) is a fraction of
``H * W`` of the frame it applies to, so one params.yaml means the same objects at 160x120, 320x240 or 640x480.
The library functions that test masks take pixel counts; the stages and proposers convert with :func:`area_px`
once they know the image size. Pixel *lengths* (filter radii, boundary offsets) are not areas and are scaled
where they are defined (e.g. gt_sim's boundary noise is relative to each object's size).
"""

from __future__ import annotations

from collections.abc import Sequence

from gcseg.errors import ConfigError

REFERENCE_HW: tuple[int, int] = (240, 320)  # the synthetic default, used to quote pixel equivalents in docs


def area_px(frac: float, hw: Sequence[int]) -> int:
    """Pixels of `frac` of an (H, W) image, rounded, at least 1 (0 = "any non-empty mask")."""
    frac = float(frac)
    if not 0.0 <= frac <= 1.0:
        raise ConfigError(f"an area fraction must lie in [0, 1], got {frac}",
                          fix="give pixel areas as fractions of the image area, e.g. 0.00026 (20 px at 320x240)")
    h, w = int(hw[0]), int(hw[1])
    return max(1, int(round(frac * h * w)))
