"""Fixtures of the sparse-convolution tests; helpers live in reference.py (fixture ``ref``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # MinkowskiEngine's OpenBLAS beside torch's OpenMP: 2 cores

import pytest
import torch
from torch import Tensor


def _load_reference() -> ModuleType:
    name = "gcseg_tests_sparse_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("reference.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def ref() -> ModuleType:
    return _load_reference()


@pytest.fixture
def tiny_coords(ref) -> Tensor:
    return ref.random_coords(60, batches=2, extent=4, seed=1)
