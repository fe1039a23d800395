"""Fixtures shared across test folders: the real HoloLens capture (../shared/data/hololens_000, no GT) cut to a few
frames, as a user's folder of scans, so that tests of the whole path on a real capture stay fast."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

HOLOLENS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hololens_000"


def cut_hololens(dest: Path, num_frames: int, *, start: int = 0) -> Path:
    """Copy frames start .. start+num_frames-1 of hololens_000 (colour, depth, pose) and its intrinsics into
    `dest` (a posed RGB-D scene folder, frames renumbered from 0); returns `dest`."""
    for sub in ("color", "depth", "pose"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for j in range(num_frames):
        i = start + j
        shutil.copy(HOLOLENS / "color" / f"{i}.jpg", dest / "color" / f"{j}.jpg")
        shutil.copy(HOLOLENS / "depth" / f"{i}.png", dest / "depth" / f"{j}.png")
        shutil.copy(HOLOLENS / "pose" / f"{i}.txt", dest / "pose" / f"{j}.txt")
    shutil.copytree(HOLOLENS / "intrinsic", dest / "intrinsic")
    return dest


@pytest.fixture(scope="session")
def hololens_scans(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """make(num_frames, start=0) -> a folder of scans holding `hololens_000` cut to `num_frames` frames (skips
    when ../shared/data/hololens_000 is absent)."""
    if not HOLOLENS.is_dir():
        pytest.skip("../shared/data/hololens_000 not present")

    def make(num_frames: int, start: int = 0) -> Path:
        root = tmp_path_factory.mktemp("scans")
        cut_hololens(root / "hololens_000", num_frames, start=start)
        return root

    return make
