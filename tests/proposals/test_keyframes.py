"""Keyframe selection: regular stride, skipping frames with too little valid depth within the window."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import ConfigError
from gcseg.proposals.keyframes import select_keyframes
from gcseg.scene import Frame, Scene


def scene_with_valid(fractions: list[float], h: int = 4, w: int = 5) -> tuple[Scene, list[int]]:
    loaded: list[int] = []

    def load(i: int) -> Frame:
        loaded.append(i)
        d = np.zeros(h * w, np.float32)
        d[: int(round(fractions[i] * h * w))] = 1.5
        return Frame(i, np.zeros((h, w, 3), np.uint8), d.reshape(h, w), np.eye(3), np.eye(4))

    return Scene("s", len(fractions), (h, w), load), loaded


def test_regular_stride():
    scene, _ = scene_with_valid([1.0] * 11)
    assert select_keyframes(scene, 5, 0.5) == [0, 5, 10]
    assert select_keyframes(scene, 1, 0.5) == list(range(11))
    assert select_keyframes(scene, 20, 0.5) == [0]


def test_moves_past_frames_without_depth():
    f = [0.0, 0.2, 0.9, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6]
    scene, loaded = scene_with_valid(f)
    assert select_keyframes(scene, 5, 0.5) == [2, 10]  # window 5..9 has no depth at all: no keyframe
    assert loaded == [0, 1, 2, 5, 6, 7, 8, 9, 10]  # stops looking once the window has its keyframe


def test_zero_threshold_still_needs_some_depth():
    scene, _ = scene_with_valid([0.0, 0.05, 1.0])
    assert select_keyframes(scene, 3, 0.0) == [1]


def test_bad_arguments():
    scene, _ = scene_with_valid([1.0])
    with pytest.raises(ConfigError):
        select_keyframes(scene, 0, 0.5)
    with pytest.raises(ConfigError):
        select_keyframes(scene, 2, 1.5)
