"""Keyframe selection for Stage 1: one frame every `stride` frames, moving past frames with too little depth."""

from __future__ import annotations

import numpy as np

from gcseg.errors import ConfigError
from gcseg.scene import Frame, Scene


def valid_depth_fraction(frame: Frame) -> float:
    d = np.asarray(frame.depth)
    return float(np.count_nonzero(np.isfinite(d) & (d > 0))) / max(d.size, 1)


def select_keyframes(scene: Scene, stride: int, min_valid_depth: float) -> list[int]:
    """Frames 0, stride, 2*stride, ...; a frame whose valid-depth fraction is below `min_valid_depth` is
    replaced by the next frame in its window [k*stride, (k+1)*stride) that has enough; a window without one
    contributes no keyframe. Reads depth only of the frames it inspects (lazy scenes)."""
    if stride < 1:
        raise ConfigError(f"keyframe_stride must be >= 1, got {stride}", fix="set sam_keyframes.keyframe_stride: 10")
    if not 0.0 <= min_valid_depth <= 1.0:
        raise ConfigError(f"min_valid_depth must lie in [0, 1], got {min_valid_depth}",
                          fix="set sam_keyframes.min_valid_depth: 0.3")
    out: list[int] = []
    for start in range(0, scene.num_frames, stride):
        for i in range(start, min(start + stride, scene.num_frames)):
            frac = valid_depth_fraction(scene.frame(i))
            if frac > 0 and frac >= min_valid_depth:
                out.append(i)
                break
    return out
