"""Hand-made RGB-D frames for proposal tests (top-down view of a textured floor with raised boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.scene import Frame


def make_frame(index: int = 0, h: int = 48, w: int = 64, seed: int = 0) -> Frame:
    """Floor at 2 m (checker texture, instance 0) seen from above; three boxes with flat tops at 1.4-1.7 m,
    one of them made of two differently coloured parts. GT instance and part maps included."""
    rng = np.random.default_rng(seed)
    depth = np.full((h, w), 2.0, np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    color = np.where(((yy // 6 + xx // 6) % 2)[..., None] == 0, [150, 140, 120], [120, 110, 95]).astype(np.uint8)
    instance = np.zeros((h, w), np.int32)
    part = np.zeros((h, w), np.int32)
    boxes = [  # y0, y1, x0, x1, top depth, colour(s)
        (4, 22, 5, 25, 1.5, [(200, 40, 40)]),
        (26, 44, 8, 30, 1.7, [(40, 160, 60), (30, 60, 200)]),
        (10, 38, 36, 58, 1.4, [(220, 200, 40)]),
    ]
    pid = 1
    for i, (y0, y1, x0, x1, z, cols) in enumerate(boxes, start=1):
        dy = int(rng.integers(-1, 2))
        sl = (slice(y0 + dy, y1 + dy), slice(x0, x1))
        depth[sl] = z
        instance[sl] = i
        xs = np.array_split(np.arange(x0, x1), len(cols))
        for c, cx in zip(cols, xs):
            color[y0 + dy:y1 + dy, cx[0]:cx[-1] + 1] = c
            part[y0 + dy:y1 + dy, cx[0]:cx[-1] + 1] = pid
            pid += 1
    noise = rng.integers(-6, 7, size=color.shape)
    color = np.clip(color.astype(np.int32) + noise, 0, 255).astype(np.uint8)
    k = np.array([[60.0, 0, w / 2], [0, 60.0, h / 2], [0, 0, 1]])
    return Frame(index=index, color=color, depth=depth, intrinsics=k, pose=np.eye(4), instance=instance, part=part,
                 name=f"{index:06d}")


@pytest.fixture
def frame() -> Frame:
    return make_frame()
