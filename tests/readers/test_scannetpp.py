"""ScanNet++ reader on tiny format-exact files: iphone rgb/depth frames, pose_intrinsic_imu.json, mesh + GT."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

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


def _meta(iph):
    return json.loads((iph / "pose_intrinsic_imu.json").read_text())


def test_matching_frames_open_without_a_warning(scannetpp_root):
    iph = scannetpp_root / "data" / SID / "iphone"
    meta = _meta(iph)
    meta["frame_000030"] = meta["frame_000020"]  # a pose for a frame not extracted: nothing is dropped
    (iph / "pose_intrinsic_imu.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_scene("scannetpp", scannetpp_root, SID).num_frames == 3


def test_missing_pose_entry_drops_the_frame(scannetpp_root, fx):
    iph = scannetpp_root / "data" / SID / "iphone"
    meta = _meta(iph)
    del meta["frame_000010"]
    meta["frame_000020"] = {"pose": meta["frame_000020"]["pose"]}  # an entry without aligned_pose/intrinsic
    meta["frame_000000"]["aligned_pose"] = fx.pose_of(0).tolist()
    (iph / "pose_intrinsic_imu.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"using the 1 frames .*dropped 2 of 3 RGB frames \(0 without depth, 2 "
                                         r"without a pose\), 2 of 3 depth frames \(0 without RGB, 2 without a pose\) "
                                         r"and left 0 of 1 poses unused"):
        scene = open_scene("scannetpp", scannetpp_root, SID)
    assert scene.num_frames == 1 and [f.name for f in scene.frames()] == ["frame_000000"]


def test_extra_rgb_frame_past_the_poses_is_dropped(scannetpp_root, fx):
    """ffmpeg extracts one frame more than pose_intrinsic_imu.json has (scannetpp issue #104)."""
    iph = scannetpp_root / "data" / SID / "iphone"
    Image.fromarray(np.zeros((fx.CH, fx.CW, 3), np.uint8)).save(iph / "rgb" / "frame_000030.jpg")
    with pytest.warns(UserWarning, match=r"ScanNet\+\+ scene 0a5c013435: using the 3 frames .*dropped 1 of 4 RGB "
                                         r"frames \(1 without depth, 1 without a pose\), 0 of 3 depth frames"):
        scene = open_scene("scannetpp", scannetpp_root, SID)
    assert [f.name for f in scene.frames()] == ["frame_000000", "frame_000010", "frame_000020"]
    np.testing.assert_allclose(scene.frame(2).pose, fx.pose_of(2))


def test_rgb_a_subset_of_depth(scannetpp_root, fx):
    """extract_only_rgb_in_colmap: RGB of some frames only, depth of all."""
    iph = scannetpp_root / "data" / SID / "iphone"
    (iph / "rgb" / "frame_000010.jpg").unlink()
    with pytest.warns(UserWarning) as rec:
        scene = open_scene("scannetpp", scannetpp_root, SID)
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "dropped 0 of 2 RGB frames" in msg and "1 of 3 depth frames (1 without RGB, 0 without a pose)" in msg
    assert "left 1 of 3 poses unused" in msg and "\n" not in msg
    assert [f.name for f in scene.frames()] == ["frame_000000", "frame_000020"]
    fr = scene.frame(1)
    np.testing.assert_allclose(fr.pose, fx.pose_of(2))
    assert fr.depth[12, 15] == pytest.approx(1.5)


def test_no_frame_in_all_three_and_missing_depth(scannetpp_root):
    iph = scannetpp_root / "data" / SID / "iphone"
    meta = _meta(iph)
    (iph / "pose_intrinsic_imu.json").write_text(json.dumps({f"frame_1{k[7:]}": v for k, v in meta.items()}))
    with pytest.raises(InputError, match="no frame has RGB, depth and a pose: 3 RGB frames") as e:
        open_scene("scannetpp", scannetpp_root, SID)
    assert str(iph) in str(e.value)
    (iph / "pose_intrinsic_imu.json").write_text(json.dumps(meta))
    for p in (iph / "depth").iterdir():
        p.unlink()
    with pytest.raises(InputError, match="no frame has RGB, depth and a pose: 3 RGB frames .*, 0 depth frames"):
        open_scene("scannetpp", scannetpp_root, SID)
    (iph / "depth").rmdir()
    with pytest.raises(InputError, match="extracted depth frames are missing") as e:
        open_scene("scannetpp", scannetpp_root, SID)
    assert "prepare_iphone_data" in str(e.value)
    (iph / "pose_intrinsic_imu.json").write_text("[]")
    (iph / "depth").mkdir()
    with pytest.raises(InputError, match="not a JSON object of frames"):
        open_scene("scannetpp", scannetpp_root, SID)


# GT as the toolkit prepares it: 12 vertices in over-segments 10, 11, 12, 13 (3 vertices each)

def _gt(root, groups, *, instance=None, semantic=None, csv=None):
    sd = root / "data" / SID / "scans"
    (sd / "segments_anno.json").write_text(json.dumps({"segGroups": [
        {"id": i, "objectId": i, "label": lab, "segments": segs} for i, (lab, segs) in enumerate(groups)]}))
    bench = root / "metadata" / "semantic_benchmark"
    bench.mkdir(parents=True, exist_ok=True)
    for name, text in (("top100_instance.txt", instance), ("top100.txt", semantic), ("map_benchmark.csv", csv)):
        if text is None:
            (bench / name).unlink(missing_ok=True)
        else:
            (bench / name).write_text(text)
    return open_scene("scannetpp", root, SID).reference()


MAP_CSV = ("class,count,semantic_map_to,instance_map_to\n"
           "books,10,book,\n"      # mapped
           "chair,5,,\n"           # no mapping: kept as it is
           "lamp,3,None,\n"        # dropped
           "stool,,stool,\n")      # no count: the toolkit's count filter drops the row
MAP_GROUPS = [("books", [10]), ("chair", [11]), ("lamp", [12]), ("stool", [13])]


def test_gt_maps_raw_labels_through_map_benchmark_csv(scannetpp_root):
    classes = "book\nchair\nlamp\nstool\n"
    ref = _gt(scannetpp_root, MAP_GROUPS + [("unlisted", [13])], instance=classes, csv=MAP_CSV)
    assert ref.instance.tolist() == [1] * 3 + [2] * 3 + [0] * 6  # lamp, stool and a label not in the CSV: void
    assert ref.segment.tolist() == [1] * 3 + [2] * 3 + [0] * 6
    ref = _gt(scannetpp_root, MAP_GROUPS, instance=classes)  # without the CSV: raw labels
    assert ref.instance.tolist() == [0] * 3 + [2] * 3 + [3] * 3 + [4] * 3
    assert ref.segment.tolist() == [0] * 3 + [2] * 3 + [3] * 3 + [4] * 3
    ref = _gt(scannetpp_root, MAP_GROUPS, csv=MAP_CSV)  # no class list: every mapped object is an instance
    assert ref.instance.tolist() == [1] * 3 + [2] * 3 + [0] * 6 and ref.segment is None


def test_gt_label_map_columns_are_checked(scannetpp_root):
    with pytest.raises(InputError, match=r"lacks column\(s\) semantic_map_to .*map_benchmark.csv"):
        _gt(scannetpp_root, MAP_GROUPS, instance="book\n", csv="class,count,map_to\nbooks,1,book\n")
    # header names are matched whatever the column order, with spaces or a BOM around them
    ref = _gt(scannetpp_root, MAP_GROUPS, instance="book\n",
              csv="\ufeffsemantic_map_to , class,instance_map_to\nbook,books,\n")
    assert ref.instance.tolist() == [1] * 3 + [0] * 9


def test_gt_overlapping_objects_keep_the_smallest(scannetpp_root):
    classes = "table\nchair\nlamp\nbox\n"
    groups = [("chair", [11]), ("table", [10, 11, 12]), ("lamp", [13]), ("box", [13])]
    ref = _gt(scannetpp_root, groups, instance=classes)
    # segment 11: chair (3 vertices) beats table (9), though table comes later; 13: equal sizes, the earlier wins
    assert ref.instance.tolist() == [2] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert ref.segment.tolist() == [1] * 3 + [2] * 3 + [1] * 3 + [3] * 3
    # a semantic-only class (in top100.txt, not an instance class) wins its vertices too, and leaves them void
    groups = [("table", [10, 11, 12]), ("wall", [12]), ("ceiling", [13])]
    ref = _gt(scannetpp_root, groups, instance=classes, semantic="wall\ntable\nchair\nlamp\nbox\n")
    assert ref.instance.tolist() == [1] * 6 + [0] * 6
    ref = _gt(scannetpp_root, groups, instance=classes)  # without top100.txt only instance classes compete
    assert ref.instance.tolist() == [1] * 9 + [0] * 3
    # the toolkit considers the first 3 objects on a vertex: the 4th on segment 13 is not counted there
    groups = [("table", [10, 11, 12, 13]), ("chair", [11, 12, 13]), ("lamp", [12, 13]), ("box", [13])]
    ref = _gt(scannetpp_root, groups, instance=classes)
    assert ref.instance.tolist() == [1] * 3 + [2] * 3 + [3] * 6
