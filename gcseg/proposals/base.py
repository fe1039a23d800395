"""The mask-proposal interface every backend (classical, sam, gt_sim) implements."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol, TypeVar

import numpy as np

from gcseg.errors import ConfigError
from gcseg.scene import Frame

C = TypeVar("C")


@dataclass(frozen=True)
class Proposals:
    """K binary masks of one image with a score each (higher = better), sorted by nothing in particular."""

    masks: np.ndarray  # bool (K, H, W)
    scores: np.ndarray  # float32 (K,)

    def __post_init__(self) -> None:
        # a check, not an assert (python -O strips those): a backend returning something else is a bug to name
        masks, scores = np.asarray(self.masks), np.asarray(self.scores)
        if masks.ndim != 3 or masks.dtype != np.bool_:
            raise ValueError(f"Proposals.masks must be a bool array (K, H, W), got {masks.dtype} {masks.shape}")
        if scores.shape != (masks.shape[0],) or not np.issubdtype(scores.dtype, np.floating):
            raise ValueError(f"Proposals.scores must be a float array ({masks.shape[0]},) (one score a mask), "
                             f"got {scores.dtype} {scores.shape}")
        if not np.isfinite(scores).all():
            raise ValueError("Proposals.scores must be finite (they rank the masks), got NaN or inf")

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @staticmethod
    def empty(h: int, w: int) -> "Proposals":
        return Proposals(np.zeros((0, h, w), bool), np.zeros((0,), np.float32))


def backend_config(cls: type[C], cfg: Any, backend: str) -> C:
    """A backend's config dataclass from its options: an instance of it, a mapping, a pydantic section (e.g.
    params.yaml's `sam_keyframes.<backend>`) or None (the defaults). Unknown keys are a ConfigError naming them."""
    if isinstance(cfg, cls):
        return cfg
    data = dict(cfg.model_dump()) if hasattr(cfg, "model_dump") else dict(cfg or {})
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {backend} option(s) {unknown}", fix=f"use only {sorted(names)}")
    return cls(**data)


class MaskProposer(Protocol):
    """Image (+ optional depth and GT for the simulator) -> class-agnostic masks at several granularities."""

    name: str

    def __call__(self, frame: Frame) -> Proposals: ...
