"""The synthetic generator's output read back through the `synth` reader, and its GT instance images lifted
and voted onto the reference cloud recover the reference's GT instances (formats.md section 6, step 5)."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.lifting import VoteAccumulator
from gcseg.readers import list_scenes, open_scene

write_dataset = pytest.importorskip("gcseg.synth.writer").write_dataset


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "scenes"
    write_dataset(root, num_scenes=2, num_val=1, seed=0, num_frames=4, height=48, width=64, point_spacing=0.05,
                  progress=False)
    return root


def test_read_back_and_lift_gt(synth_root):
    assert list_scenes("synth", synth_root, "train") == ["synth_000"]
    assert list_scenes("synth", synth_root, "val") == ["synth_001"]
    scene = open_scene("synth", synth_root, "synth_000")
    assert scene.num_frames == 4 and scene.image_size == (48, 64)
    ref = scene.reference()
    assert ref.instance is not None and ref.segment is not None and ref.color is not None
    for voxel in (None, 0.01):
        acc = VoteAccumulator(ref.coord, max_dist=0.05, voxel=voxel, association="pixel")
        for fr in scene.frames():
            assert fr.instance is not None and fr.part is not None
            acc.add(fr, fr.instance)
        out = acc.result(min_share=0.5, min_points=1)
        lab = out >= 0
        assert lab.sum() > 200
        assert (out[lab] == ref.instance[lab]).mean() > 0.95
