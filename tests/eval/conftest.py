"""Shared helpers for the evaluator tests: the official-script oracle, random scenes, scene builders."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gcseg.eval.ap import SceneEval

HERE = Path(__file__).parent


def _load(name: str, filename: str) -> ModuleType:
    # Tests run with --import-mode=importlib: load sibling helper modules by path under unique names.
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def oracle() -> ModuleType:
    return _load("gcseg_tests_eval_official_oracle", "official_oracle.py")


@pytest.fixture(scope="session")
def random_scenes() -> ModuleType:
    return _load("gcseg_tests_eval_scenes", "scenes.py")


def build_scene(gt: np.ndarray, masks: list[np.ndarray], scores: list[float], scene_id: str = "s",
                valid: np.ndarray | None = None) -> SceneEval:
    """A SceneEval from GT ids and masks given as vertex-index arrays."""
    n = gt.shape[0]
    dense = np.zeros((len(masks), n), dtype=bool)
    for k, idx in enumerate(masks):
        dense[k, idx] = True
    return SceneEval(scene_id=scene_id, gt_ids=gt.astype(np.int64), valid=valid, pred_masks=dense,
                     pred_scores=np.asarray(scores, dtype=np.float64))


@pytest.fixture
def scene_builder():
    return build_scene
