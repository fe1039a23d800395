"""Strict state_dict loading with a readable error naming the mismatched keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from gcseg.errors import ArtifactError

_SHOW = 6  # key names listed per kind of mismatch


def _names(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def load_state_strict(model: nn.Module, state_dict: Mapping[str, Tensor], path: str | Path | None = None) -> None:
    """Load ``state_dict`` into ``model`` only if keys and shapes match exactly.

    Raises :class:`ArtifactError` (naming ``path``) listing missing keys, unexpected keys and shape mismatches,
    e.g. when a checkpoint of another architecture / configuration is loaded. Backend does not matter: both
    sparse backends use the same parameter names and layouts.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state_dict)
                    if hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys [{_names(missing)}]")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys [{_names(unexpected)}]")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches [{_names(shapes)}]")
        raise ArtifactError(f"checkpoint does not fit this {type(model).__name__}: " + "; ".join(parts),
                            path=path, fix="load it with the model configuration (planes, layers, channels) it "
                                           "was trained with, or retrain")
    model.load_state_dict(dict(state_dict), strict=True)
