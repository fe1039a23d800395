"""Sparse 3D convolution with interchangeable backends.

* ``"minkowski"``: MinkowskiEngine 0.5.4 (compiled; optional: ``pip install .[minkowski]``, see the install notes);
* ``"torch"``: pure PyTorch (sort-based hashing + searchsorted + gather/matmul/index_add), always available.

Both run the same modules (:mod:`gcseg.sparse.common`) with the same weight layout, so a state_dict trained with
one backend loads into a model using the other. A backend is a module exposing ``NAME`` and
``make_context(coords) -> Context``; the context owns the coordinate maps of one forward pass.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

from gcseg.errors import ConfigError

BACKENDS = ("minkowski", "torch")
_INSTALL_FIX = ("install MinkowskiEngine 0.5.4 (CPU: scripts/build_minkowski.sh, run by `make`; "
                "needs libopenblas-dev), or set backend: torch (pure PyTorch, same weights)")


@functools.cache
def _minkowski_import_error() -> str | None:
    """None if MinkowskiEngine imports, else the reason (cached: importing it is slow)."""
    try:
        importlib.import_module("gcseg.sparse.minkowski_backend")
    except ImportError as exc:  # not installed, or built against another torch / missing libopenblas
        return f"{type(exc).__name__}: {exc}"
    return None


def available_backends() -> list[str]:
    """Backends that work in this environment, preferred first."""
    return [b for b in BACKENDS if b != "minkowski" or _minkowski_import_error() is None]


def resolve_backend(name: str, device: str = "cpu") -> str:
    """Map ``"auto" | "minkowski" | "torch"`` to a usable backend name for tensors on ``device``.

    ``"auto"`` is ``"minkowski"`` when MinkowskiEngine imports and the tensors are on the CPU (the backend drives
    the CPU build that the install makes), else ``"torch"``. An explicit ``"minkowski"`` without MinkowskiEngine,
    or on another device, raises :class:`ConfigError` with the fix.
    """
    device = str(device).split(":")[0]
    if name == "auto":
        return available_backends()[0] if device == "cpu" else "torch"
    if name not in BACKENDS:
        raise ConfigError(f"unknown sparse backend {name!r}", fix=f"use one of auto, {', '.join(BACKENDS)}")
    if name == "minkowski":
        err = _minkowski_import_error()
        if err is not None:
            raise ConfigError(f"sparse backend 'minkowski' requested but MinkowskiEngine does not import ({err})",
                              fix=_INSTALL_FIX)
        if device != "cpu":
            raise ConfigError(f"sparse backend 'minkowski' runs on CPU tensors only, got {device} tensors",
                              fix="set model.backend to auto or torch on GPU (same weights)")
    return name


def get_backend(name: str, device: str = "cpu") -> ModuleType:
    """The backend module for ``name`` on ``device`` (resolved first, see :func:`resolve_backend`)."""
    resolved = resolve_backend(name, device)
    return importlib.import_module(f"gcseg.sparse.{resolved}_backend")


__all__ = ["BACKENDS", "available_backends", "resolve_backend", "get_backend"]
