"""The scene data model every stage reads.

A scene is a sequence of posed RGB-D frames (loaded lazily, one at a time: a 5,000-frame scan is never in
memory whole) plus, optionally, reference points with GT instance ids: the mesh vertices or fused cloud on
which 3D labels live and evaluation happens. Key names follow Pointcept's data dict (``coord``, ``color``,
``instance``, ``segment``).

Conventions: depth is z-depth in metres (float32, 0 = invalid) at the depth camera's resolution; colour is
resized to that resolution by the readers; ``intrinsics`` is the 3x3 K of that image; ``pose`` is 4x4
camera-to-world (OpenCV camera axes). GT instance ids: 0 = no instance / void, ids >= 1 are instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    index: int  # position in the scene's frame list (0..num_frames-1)
    color: np.ndarray  # uint8 (H, W, 3)
    depth: np.ndarray  # float32 (H, W) metres, 0 = invalid
    intrinsics: np.ndarray  # float64 (3, 3)
    pose: np.ndarray  # float64 (4, 4) camera-to-world
    instance: np.ndarray | None = None  # int32 (H, W) GT instance ids, 0 = none (synthetic / projected GT)
    part: np.ndarray | None = None  # int32 (H, W) GT part ids, 0 = none (synthetic scenes only; for gt_sim)
    name: str = ""  # source file stem (e.g. "125" or "frame_000125")

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.depth.shape[0]), int(self.depth.shape[1])


@dataclass(frozen=True)
class PointCloud:
    """Reference points of a scene. ``instance``: GT instance id per point (0 = void) or None;
    ``segment``: GT semantic label per point (0 = void) or None."""

    coord: np.ndarray  # float32 (N, 3) world
    color: np.ndarray | None = None  # uint8 (N, 3)
    instance: np.ndarray | None = None  # int32 (N,)
    segment: np.ndarray | None = None  # int32 (N,)

    def __len__(self) -> int:
        return int(self.coord.shape[0])


@dataclass
class Scene:
    """A lazily loaded posed RGB-D scan. Readers build it; `frame(i)` reads one frame from disk."""

    scene_id: str
    num_frames: int
    image_size: tuple[int, int]  # (H, W) of depth (and of colour after resizing)
    load_frame: Callable[[int], Frame] = field(repr=False)
    load_reference: Callable[[], PointCloud | None] = field(repr=False, default=lambda: None)
    source: str = ""  # reader name: posed_rgbd | scannet | scannetpp | synth
    root: str = ""  # folder the scene was read from (for error messages only; never written to artifacts)

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, i: int) -> Frame:
        if not 0 <= i < self.num_frames:
            raise IndexError(f"frame {i} out of range 0..{self.num_frames - 1} in scene {self.scene_id}")
        return self.load_frame(i)

    def frames(self, indices: Sequence[int] | None = None) -> Iterator[Frame]:
        for i in range(self.num_frames) if indices is None else indices:
            yield self.frame(int(i))

    def reference(self) -> PointCloud | None:
        return self.load_reference()
