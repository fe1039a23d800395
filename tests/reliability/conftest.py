"""Fixtures of the reliability tests (gcseg issue 10): a session-scoped tiny project, every pipeline stage run
(through full_scene_pseudolabel) once on a tiny synthetic dataset (2 scenes x 8 frames at 64x48) with the tiny params profile. Helpers live in
_reliability.py (this folder is put on sys.path: pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _reliability import run_pipeline  # noqa: E402


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny pipeline, synth -> full_scene_pseudolabel (the first of the determinism test's two clean
    runs). Tests must not modify it: they copy what they corrupt."""
    reuse = os.environ.get("GCSEG_RELIABILITY_PROJECT")  # development: a finished project folder to reuse
    if reuse and (Path(reuse) / "metrics/full_scene_pseudolabel.json").is_file():
        return Path(reuse)
    return run_pipeline(tmp_path_factory.mktemp("project"), upto="full_scene_pseudolabel")
