"""Backend registry: `build_proposer("classical" | "sam" | "gt_sim", options)`."""

from __future__ import annotations

from typing import Any

from gcseg.errors import ConfigError
from gcseg.proposals.base import MaskProposer

BACKENDS = ("rgbd", "classical", "sam", "gt_sim")


def build_proposer(backend: str, cfg: Any = None, *, seed: int = 0) -> MaskProposer:
    """Build a mask proposer. `cfg`: that backend's options (a mapping, a pydantic model, the backend's config
    dataclass, or None for defaults), e.g. the `sam_keyframes.classical` section of params.yaml.
    Heavy imports (torch, segment_anything) happen only for the sam backend."""
    if backend == "rgbd":
        from gcseg.proposals.rgbd import RgbdProposer

        return RgbdProposer(cfg, seed=seed)
    if backend == "classical":
        from gcseg.proposals.classical import ClassicalProposer

        return ClassicalProposer(cfg, seed=seed)
    if backend == "sam":
        from gcseg.proposals.sam import SamProposer

        return SamProposer(cfg, seed=seed)
    if backend == "gt_sim":
        from gcseg.proposals.gt_sim import GtSimProposer

        return GtSimProposer(cfg, seed=seed)
    raise ConfigError(f"unknown proposal backend {backend!r}", fix=f"use one of {list(BACKENDS)}")
