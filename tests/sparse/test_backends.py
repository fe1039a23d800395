"""Backend selection: auto / explicit / unknown / MinkowskiEngine missing."""

from __future__ import annotations

import pytest

import gcseg.sparse as sparse
from gcseg.errors import ConfigError


def test_torch_always_available_and_auto_prefers_minkowski():
    names = sparse.available_backends()
    assert "torch" in names
    assert sparse.resolve_backend("auto") == names[0]
    assert sparse.resolve_backend("torch") == "torch"
    assert sparse.get_backend("torch").NAME == "torch"


def test_unknown_backend():
    with pytest.raises(ConfigError, match="unknown sparse backend 'spconv'"):
        sparse.resolve_backend("spconv")


def test_minkowski_missing_is_a_config_error_with_fix(monkeypatch):
    monkeypatch.setattr(sparse, "_minkowski_import_error", lambda: "ModuleNotFoundError: No module named 'X'")
    assert sparse.available_backends() == ["torch"]
    assert sparse.resolve_backend("auto") == "torch"
    with pytest.raises(ConfigError, match="MinkowskiEngine does not import") as err:
        sparse.resolve_backend("minkowski")
    assert "backend: torch" in str(err.value)


def test_auto_picks_torch_for_gpu_tensors_and_minkowski_refuses_them(monkeypatch):
    # the installed MinkowskiEngine is the CPU build: "auto" must not hand it CUDA tensors
    monkeypatch.setattr(sparse, "_minkowski_import_error", lambda: None)
    assert sparse.resolve_backend("auto", "cpu") == "minkowski"
    assert sparse.resolve_backend("auto", "cuda") == "torch"
    assert sparse.resolve_backend("auto", "cuda:1") == "torch"
    with pytest.raises(ConfigError, match="CPU tensors only") as err:
        sparse.resolve_backend("minkowski", "cuda")
    assert "auto or torch" in str(err.value)
