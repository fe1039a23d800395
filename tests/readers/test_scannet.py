"""ScanNet reader on a hand-written tiny scan: mesh PLY, segs/aggregation JSON, a 4-row labels tsv."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import InputError
from gcseg.readers import list_scenes, open_scene
from gcseg.readers.scannet200_constants import CLASS_LABELS_200, INSTANCE_CLASS_IDS_200, VALID_CLASS_IDS_200

pytestmark = pytest.mark.filterwarnings("ignore:.*non-finite poses:UserWarning")


def test_scannet200_constants():
    assert len(VALID_CLASS_IDS_200) == 200 and len(INSTANCE_CLASS_IDS_200) == 198
    assert 1 not in INSTANCE_CLASS_IDS_200 and 3 not in INSTANCE_CLASS_IDS_200
    assert dict(zip(VALID_CLASS_IDS_200, CLASS_LABELS_200))[2] == "chair"
    assert VALID_CLASS_IDS_200[-1] == 1191 and CLASS_LABELS_200[-1] == "mattress"


def test_frames_skip_nonfinite_poses(scannet_root, fx):
    with pytest.warns(UserWarning, match="skipped 1 of 4 frames with non-finite poses"):
        scene = open_scene("scannet", scannet_root, "scene0000_00")
    assert scene.source == "scannet" and scene.num_frames == 3
    assert [f.name for f in scene.frames()] == ["0", "1", "3"]
    fr = scene.frame(2)
    assert fr.color.shape == (fx.H, fx.W, 3)  # 64x48 colour resized to the 32x24 depth
    np.testing.assert_allclose(fr.pose, fx.pose_of(3))
    np.testing.assert_allclose(fr.intrinsics[0, 0], fx.F)


def test_mesh_reference_gt(scannet_root, fx):
    ref = open_scene("scannet", scannet_root, "scene0000_00").reference()
    xyz, rgb, _, _ = fx.tiny_mesh()
    np.testing.assert_allclose(ref.coord, xyz)
    np.testing.assert_array_equal(ref.color, rgb)
    # wall (class 1) is not an instance class: void; chair = objectId 1 -> 2; table = objectId 2 -> 3
    assert ref.instance.tolist() == [0] * 3 + [2] * 6 + [3] * 3
    assert ref.segment.tolist() == [0] * 3 + [2] * 6 + [4] * 3


def test_unannotated_scene_and_splits(scannet_root):
    assert open_scene("scannet", scannet_root, "scene0001_00").reference().instance is None  # test split: no GT
    assert list_scenes("scannet", scannet_root, "all") == ["scene0000_00", "scene0001_00"]
    assert list_scenes("scannet", scannet_root, "train") == ["scene0001_00"]
    with pytest.warns(UserWarning, match="1 scene.* not present"):
        assert list_scenes("scannet", scannet_root, "val") == ["scene0000_00"]  # listed but absent: skipped


def test_bad_annotation_files(scannet_root):
    sd = scannet_root / "scans" / "scene0000_00"
    (scannet_root / "scannetv2-labels.combined.tsv").unlink()
    scene = open_scene("scannet", scannet_root, "scene0000_00")
    with pytest.raises(InputError, match="label table not found") as e:
        scene.reference()
    assert "scannetv2-labels.combined.tsv" in str(e.value)
    (sd / "scene0000_00_vh_clean_2.0.010000.segs.json").write_text('{"segIndices": [1, 2]}')
    (scannet_root / "scannetv2-labels.combined.tsv").write_text("id\traw_category\n1\twall\n")
    with pytest.raises(InputError, match="2 segIndices for a mesh of 12 vertices"):
        scene.reference()
    data = (sd / "scene0000_00_vh_clean_2.ply").read_bytes()
    (sd / "scene0000_00_vh_clean_2.ply").write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError, match="not a readable PLY"):
        scene.reference()


def test_missing_scene(scannet_root):
    with pytest.raises(InputError, match="not found"):
        open_scene("scannet", scannet_root, "scene0999_00")
