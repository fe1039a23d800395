"""The mask-proposal interface every backend (classical, sam, gt_sim) implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gcseg.scene import Frame


@dataclass(frozen=True)
class Proposals:
    """K binary masks of one image with a score each (higher = better), sorted by nothing in particular."""

    masks: np.ndarray  # bool (K, H, W)
    scores: np.ndarray  # float32 (K,)

    def __post_init__(self) -> None:
        assert self.masks.ndim == 3 and self.masks.dtype == np.bool_, self.masks.shape
        assert self.scores.shape == (self.masks.shape[0],)

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @staticmethod
    def empty(h: int, w: int) -> "Proposals":
        return Proposals(np.zeros((0, h, w), bool), np.zeros((0,), np.float32))


class MaskProposer(Protocol):
    """Image (+ optional depth and GT for the simulator) -> class-agnostic masks at several granularities."""

    name: str

    def __call__(self, frame: Frame) -> Proposals: ...
