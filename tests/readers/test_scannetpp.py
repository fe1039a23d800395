"""ScanNet++ reader on tiny format-exact files: iphone rgb/depth frames, pose_intrinsic_imu.json, mesh + GT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcseg.errors import InputError
from gcseg.readers import list_scenes, open_scene

SID = "0a5c013435"


def test_frames_pose_and_scaled_intrinsics(scannetpp_root, fx):
    assert list_scenes("scannetpp", scannetpp_root, "all") == [SID]
    scene = open_scene("scannetpp", scannetpp_root, SID)
    assert scene.num_frames == 3 and scene.image_size == (fx.H, fx.W) and scene.source == "scannetpp"
    assert [f.name for f in scene.frames()] == ["frame_000000", "frame_000010", "frame_000020"]
    fr = scene.frame(1)
    # `intrinsic` refers to the 1920x1440 RGB: scaled to the 32x24 depth
    np.testing.assert_allclose(fr.intrinsics, [[fx.F, 0, fx.CX], [0, fx.F, fx.CY], [0, 0, 1]], atol=1e-9)
    np.testing.assert_allclose(fr.pose, fx.pose_of(1))
    assert fr.color.shape == (fx.H, fx.W, 3) and fr.depth[12, 15] == pytest.approx(1.5)


def test_mesh_gt_with_and_without_class_list(scannetpp_root):
    ref = open_scene("scannetpp", scannetpp_root, SID).reference()
    assert ref.instance.tolist() == [1] * 6 + [2] * 3 + [3] * 3 and ref.segment is None
    cl = scannetpp_root / "metadata" / "semantic_benchmark" / "top100_instance.txt"
    cl.parent.mkdir(parents=True)
    cl.write_text("table\nchair\nlamp\n")  # wall is not a benchmark instance class
    ref = open_scene("scannetpp", scannetpp_root, SID).reference()
    assert ref.instance.tolist() == [1] * 6 + [0] * 3 + [3] * 3
    assert ref.segment.tolist() == [2] * 6 + [0] * 3 + [3] * 3


def test_missing_pose_entry_and_depth(scannetpp_root):
    iph = scannetpp_root / "data" / SID / "iphone"
    meta = json.loads((iph / "pose_intrinsic_imu.json").read_text())
    del meta["frame_000010"]
    (iph / "pose_intrinsic_imu.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="no 'aligned_pose'/'intrinsic' for frame 'frame_000010'"):
        open_scene("scannetpp", scannetpp_root, SID)
    (iph / "depth" / "frame_000020.png").unlink()
    with pytest.raises(InputError, match="3 RGB frames but 2 depth frames"):
        open_scene("scannetpp", scannetpp_root, SID)
    for p in (iph / "depth").iterdir():
        p.unlink()
    (iph / "depth").rmdir()
    with pytest.raises(InputError, match="extracted depth frames are missing") as e:
        open_scene("scannetpp", scannetpp_root, SID)
    assert "prepare_iphone_data" in str(e.value)
