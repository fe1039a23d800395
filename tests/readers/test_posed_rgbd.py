"""posed_rgbd / synth reader on format-exact tiny scenes, and one test per kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gcseg.errors import ConfigError, InputError
from gcseg.io.ply import write_ply
from gcseg.readers import SOURCES, list_scenes, open_scene
from gcseg.readers.posed_rgbd import open_posed_rgbd

H, W, F, CX, CY = 24, 32, 30.0, 15.5, 11.5  # as tests/readers/conftest.py writes them


def test_frames_numeric_order_sizes_and_extras(posed_scene, fx):
    scene = open_posed_rgbd(posed_scene())
    assert scene.num_frames == 4 and scene.image_size == (H, W) and scene.source == "posed_rgbd"
    assert [f.name for f in scene.frames()] == ["0", "1", "2", "10"]  # 10 after 2: numeric, not lexical
    fr = scene.frame(3)
    assert fr.index == 3 and fr.color.shape == (H, W, 3) and fr.color.dtype == np.uint8
    assert fr.depth.dtype == np.float32 and fr.depth[0, 0] == 0
    assert fr.depth[12, 15] == pytest.approx(1.5) and fr.depth[2, 2] == pytest.approx(2.0)
    np.testing.assert_allclose(fr.intrinsics, [[F, 0, CX], [0, F, CY], [0, 0, 1]])
    np.testing.assert_allclose(fr.pose, fx.pose_of(3))
    assert fr.instance.dtype == np.int32 and set(np.unique(fr.instance)) == {0, 1}
    assert set(np.unique(fr.part)) == {0, 7}


def test_colour_intrinsics_fallback_is_scaled(posed_scene):
    folder = posed_scene(extras=False)
    (folder / "intrinsic" / "intrinsic_depth.txt").unlink()
    fr = open_posed_rgbd(folder).frame(0)
    np.testing.assert_allclose(fr.intrinsics[:2, :3], [[F, 0, CX], [0, F, CY]], atol=1e-9)
    assert fr.instance is None and fr.part is None


def test_reference_ply_and_fused_reference(posed_scene):
    folder = posed_scene()
    # no reference.ply: fused from depth, GT instance carried from the instance images
    ref = open_posed_rgbd(folder).reference()
    assert len(ref) > 50 and ref.instance is not None
    z = ref.coord[:, 2]
    assert np.all((np.abs(z - 1.5) < 0.03) | (np.abs(z - 2.0) < 0.03))
    assert np.all(ref.instance[np.abs(z - 1.5) < 0.03] == 1) and np.all(ref.instance[np.abs(z - 2.0) < 0.03] == 0)
    again = open_posed_rgbd(folder).reference()
    np.testing.assert_array_equal(ref.coord, again.coord)  # deterministic
    # with reference.ply: read as is
    pts = np.array([[0, 0, 1], [1, 2, 3]], np.float32)
    write_ply(folder / "reference.ply", pts, np.full((2, 3), 9, np.uint8), instance=np.array([0, 5]),
              label=np.array([0, 2]))
    ref = open_posed_rgbd(folder).reference()
    np.testing.assert_array_equal(ref.coord, pts)
    assert ref.instance.tolist() == [0, 5] and ref.segment.tolist() == [0, 2] and ref.color[0, 0] == 9


def test_list_and_open_scene(posed_scene, tmp_path):
    posed_scene("b")
    posed_scene("a")
    assert SOURCES == ("synth", "posed_rgbd", "scannet", "scannetpp")
    assert list_scenes("synth", tmp_path, "all") == ["a", "b"]
    (tmp_path / "splits.json").write_text('{"train": ["b"], "val": ["a"]}')
    assert list_scenes("synth", tmp_path, "train") == ["b"]
    assert list_scenes("posed_rgbd", tmp_path, "val") == ["a"]
    assert list_scenes("posed_rgbd", tmp_path / "a", "all") == ["a"]  # root is itself a scene folder
    s = open_scene("synth", tmp_path, "a")
    assert s.source == "synth" and s.scene_id == "a" and s.num_frames == 4
    assert open_scene("posed_rgbd", tmp_path / "a", "a").num_frames == 4


def test_unlabelled_and_combined_splits(posed_scene, tmp_path):
    for sid in ("a", "b", "c"):
        posed_scene(sid)
    assert list_scenes("synth", tmp_path, "train+unlabelled") == ["a", "b", "c"]  # no split file: every scene
    with pytest.raises(InputError, match="no synth scenes found for split 'unlabelled'"):
        list_scenes("synth", tmp_path, "unlabelled")  # ... and none unlabelled
    (tmp_path / "splits.json").write_text('{"train": ["b"], "val": ["a"]}')
    assert list_scenes("synth", tmp_path, "train+unlabelled") == ["b"]  # no "unlabelled" list: none
    assert list_scenes("synth", tmp_path, "train+val") == ["a", "b"]
    (tmp_path / "splits.json").write_text('{"train": ["b"], "val": ["a"], "unlabelled": ["c"]}')
    assert list_scenes("synth", tmp_path, "unlabelled") == ["c"]
    assert list_scenes("synth", tmp_path, "train+unlabelled") == ["b", "c"]
    assert list_scenes("synth", tmp_path, "train+val") == ["a", "b"]
    assert list_scenes("synth", tmp_path, "all") == ["a", "b", "c"]
    for bad in ("test", "train+train", "all+val", "train+"):
        with pytest.raises(ConfigError, match="unknown split"):
            list_scenes("synth", tmp_path, bad)


# ---- bad inputs: each is an InputError naming the file and the fix ---------------------------------------

def _err(exc: pytest.ExceptionInfo) -> str:
    assert exc.value.fix, "every input error carries a fix"
    return str(exc.value)


def test_missing_pose_file(posed_scene):
    folder = posed_scene()
    (folder / "pose" / "2.txt").unlink()
    with pytest.raises(InputError) as e:
        open_posed_rgbd(folder)
    assert "2.txt" in _err(e) and "no pose file" in str(e.value)


def test_colour_depth_count_mismatch(posed_scene):
    folder = posed_scene()
    (folder / "depth" / "10.png").unlink()
    with pytest.raises(InputError) as e:
        open_posed_rgbd(folder)
    assert "4 colour frames but 3 depth frames" in _err(e) and "'10'" in str(e.value)


@pytest.mark.parametrize("bad", ["nonfinite", "scaled", "reflection"])
def test_invalid_pose_raises_when_frame_loads(posed_scene, bad, fx):
    folder = posed_scene()
    p = fx.pose_of(1)
    if bad == "nonfinite":
        p[0, 3] = np.inf
    elif bad == "scaled":
        p[:3, :3] *= 2.0
    else:
        p[0, 0] = -1.0
    fx.write_matrix(folder / "pose" / "1.txt", p)
    scene = open_posed_rgbd(folder)  # per-frame checks happen at load time
    scene.frame(0)
    with pytest.raises(InputError) as e:
        scene.frame(1)
    assert "1.txt" in _err(e)
    assert ("non-finite" if bad == "nonfinite" else "not rigid") in str(e.value)


def test_nonfinite_pose_skipped_when_asked(posed_scene, fx):
    folder = posed_scene()
    p = fx.pose_of(1)
    p[:] = -np.inf
    fx.write_matrix(folder / "pose" / "1.txt", p)
    with pytest.warns(UserWarning, match="skipped 1 of 4 frames"):
        scene = open_posed_rgbd(folder, skip_nonfinite_poses=True)
    assert scene.num_frames == 3 and [f.name for f in scene.frames()] == ["0", "2", "10"]


def test_depth_frame_of_another_size(posed_scene):
    folder = posed_scene()
    Image.fromarray(np.full((H + 2, W), 1000, np.uint16)).save(folder / "depth" / "2.png")
    scene = open_posed_rgbd(folder)
    with pytest.raises(InputError) as e:
        scene.frame(2)
    assert "2.png" in _err(e) and f"32x26 but the scene's first depth frame is {W}x{H}" in str(e.value)


def test_corrupt_image(posed_scene):
    folder = posed_scene()
    data = (folder / "color" / "1.jpg").read_bytes()
    (folder / "color" / "1.jpg").write_bytes(data[: len(data) // 3])
    scene = open_posed_rgbd(folder)
    with pytest.raises(InputError) as e:
        scene.frame(1)
    assert "1.jpg" in _err(e) and "cannot decode" in str(e.value)
    (folder / "depth" / "0.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError):  # the first depth header is read at open
        open_posed_rgbd(folder)


def test_empty_scene(tmp_path):
    for d in ("color", "depth", "pose", "intrinsic"):
        (tmp_path / "s" / d).mkdir(parents=True)
    with pytest.raises(InputError) as e:
        open_posed_rgbd(tmp_path / "s")
    assert "empty scene" in _err(e)


def test_missing_intrinsics(posed_scene):
    folder = posed_scene()
    for f in (folder / "intrinsic").iterdir():
        f.unlink()
    with pytest.raises(InputError) as e:
        open_posed_rgbd(folder)
    assert "intrinsic" in _err(e) and "no intrinsics" in str(e.value)


def test_missing_folder_and_extras(posed_scene, tmp_path):
    with pytest.raises(InputError, match="folder is missing"):
        open_posed_rgbd(tmp_path)  # no color/ etc.
    folder = posed_scene()
    (folder / "instance" / "10.png").unlink()
    with pytest.raises(InputError, match="instance/ has no image for frame '10'"):
        open_posed_rgbd(folder)


def test_odd_first_depth_frame_names_both_frames(posed_scene):
    """The expected size comes from frame 0: when frame 0 is the odd one, the error must not blame frame 1."""
    folder = posed_scene()
    Image.fromarray(np.full((H + 2, W), 1000, np.uint16)).save(folder / "depth" / "0.png")
    scene = open_posed_rgbd(folder)
    with pytest.raises(InputError) as e:
        scene.frame(1)
    msg = _err(e)
    assert f"is {W}x{H} but the scene's first depth frame is {W}x{H + 2} (depth/0.png)" in msg
    assert "depth/1.png and depth/0.png" in e.value.fix and "this frame" not in e.value.fix


@pytest.mark.parametrize("content", ["", "  \n\t\n", "# no numbers\n"])
def test_empty_pose_file_is_one_error_without_numpy_warning(posed_scene, content):
    import warnings

    folder = posed_scene()
    (folder / "pose" / "1.txt").write_text(content)
    scene = open_posed_rgbd(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Empty input file" UserWarning would fail here
        with pytest.raises(InputError, match="pose file is empty") as e:
            scene.frame(1)
    assert "pose/1.txt" in _err(e)
