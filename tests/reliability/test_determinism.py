"""Determinism (gcseg issue 10, part 3): two clean runs of the tiny profile, in two separate folders, give
byte-identical artifacts through full_scene_pseudolabel (synth -> sam_keyframes -> stage1_train -> sam2_track ->
stage2_train -> full_scene_pseudolabel): scenes, per-scene HDF5 files, overlays, model.pt files and metrics.
Identical bytes are what DVC's cache and run-cache need (docs/reliability.md says how it is controlled)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _reliability import run_pipeline

COMPARED = ("data/scenes", "data/sam_keyframes", "data/overlays", "data/models/stage1/model.pt", "data/sam2_track",
            "data/models/stage2/model.pt", "data/pseudolabel", "metrics/sam_keyframes.json",
            "metrics/stage1_train", "metrics/sam2_track.json", "metrics/stage2_train",
            "metrics/full_scene_pseudolabel.json")


def tree(root: Path, rel: str) -> dict[str, bytes]:
    p = root / rel
    if p.is_file():
        return {rel: p.read_bytes()}
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}


@pytest.mark.slow
def test_two_clean_runs_are_byte_identical(project: Path, tmp_path: Path) -> None:
    """`project` is the first clean run (session fixture, its own folder); the second runs in tmp_path."""
    second = run_pipeline(tmp_path / "second", upto="full_scene_pseudolabel")
    for rel in COMPARED:
        a, b = tree(project, rel), tree(second, rel)
        assert a, f"{rel} is missing in the first run"
        assert sorted(a) == sorted(b), f"{rel}: different files"
        differ = [k for k in a if a[k] != b[k]]
        assert not differ, f"{rel}: bytes differ in {differ}"
    assert len(tree(project, "data/pseudolabel")) == 2  # both scenes pseudo-labelled (the thing under test)
