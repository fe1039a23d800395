"""Tiny synthetic scenes shared by the synth tests (64x48, a few frames: well under a second each)."""

from __future__ import annotations

import pytest

from gcseg.synth import SynthScene, generate_scene

TINY = dict(num_frames=6, height=48, width=64, orbit_degrees=90.0)


@pytest.fixture(scope="session")
def tiny_opts() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_scene() -> SynthScene:
    """Noise-free depth, no holes: exact geometry for the consistency checks."""
    return generate_scene(3, **TINY)


@pytest.fixture(scope="session")
def noisy_scene() -> SynthScene:
    return generate_scene(3, depth_noise=0.01, hole_fraction=0.1, **TINY)
