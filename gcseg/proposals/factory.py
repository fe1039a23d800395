"""Backend registry: `build_proposer("rgbd" | "classical" | "sam" | "gt_sim", options)`, and `for_scene`, which
gives a proposer what it needs to know about the scene it runs on (rgbd: the world up)."""

from __future__ import annotations

from typing import Any, TypeVar

from gcseg.errors import ConfigError
from gcseg.proposals.base import MaskProposer

BACKENDS = ("rgbd", "classical", "sam", "gt_sim")
P = TypeVar("P")


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


def for_scene(proposer: P, scene: Any) -> P:
    """`proposer` set up for `scene` (a gcseg.scene.Scene) before it runs on the scene's frames: a backend with a
    `for_scene(up)` method (rgbd) gets the scene's world up from its poses (gcseg.upright.proposer_up; a camera
    pitched steeply down cannot tell it alone); every other backend (or object), and an rgbd proposer that
    already has an up (given by its caller, or bound before), is returned as it is."""
    bind = getattr(proposer, "for_scene", None)
    if bind is None or getattr(proposer, "up", None) is not None:
        return proposer
    from gcseg.upright import proposer_up

    return bind(proposer_up(scene))
