"""write_scene / write_dataset: the posed RGB-D layout, byte-identical reruns, atomic dataset writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData

from gcseg.errors import ConfigError
from gcseg.readers import list_scenes, open_scene
from gcseg.readers.posed_rgbd import open_posed_rgbd
from gcseg.synth import contact_sheet, write_dataset, write_scene


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_lossless_round_trip(tiny_scene, tmp_path):
    s = tiny_scene
    out = tmp_path / "scene"
    write_scene(s, out)
    n = s.num_frames
    for sub, ext in (("color", "jpg"), ("depth", "png"), ("pose", "txt"), ("instance", "png"), ("part", "png")):
        assert sorted(p.name for p in (out / sub).iterdir()) == sorted(f"{i}.{ext}" for i in range(n)), sub
    depth = np.asarray(Image.open(out / "depth" / "2.png"))
    assert depth.dtype == np.uint16
    np.testing.assert_array_equal(depth.astype(np.float32) / 1000.0, s.depth[2])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "instance" / "2.png")), s.instance[2])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "part" / "2.png")), s.part[2])
    color = np.asarray(Image.open(out / "color" / "2.jpg").convert("RGB")).astype(int)
    assert np.abs(color - s.color[2]).mean() < 4  # JPEG q95
    np.testing.assert_allclose(np.loadtxt(out / "pose" / "2.txt"), s.poses[2], atol=1e-7)
    k4 = np.loadtxt(out / "intrinsic" / "intrinsic_depth.txt")
    np.testing.assert_allclose(k4[:3, :3], s.intrinsics, atol=1e-7)
    intr = out / "intrinsic"
    assert (intr / "intrinsic_color.txt").read_bytes() == (intr / "intrinsic_depth.txt").read_bytes()
    ply = PlyData.read(str(out / "reference.ply"))
    assert ply.header.splitlines()[1] == "format binary_little_endian 1.0"
    v = ply["vertex"].data
    assert list(v.dtype.names) == ["x", "y", "z", "red", "green", "blue", "instance", "label"]
    np.testing.assert_array_equal(np.stack([v["x"], v["y"], v["z"]], 1), s.reference.coord)
    np.testing.assert_array_equal(v["instance"], s.reference.instance)
    np.testing.assert_array_equal(v["label"], s.reference.segment)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 3 and len(meta["objects"]) == len(s.layout.objects)
    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.shape == contact_sheet(s).shape and sheet.shape[0] > 4 * 48


def test_reader_round_trip(tiny_scene, tmp_path):
    """The posed_rgbd reader (gcseg.readers) opens what the writer wrote, GT included."""
    write_scene(tiny_scene, tmp_path / "scene")
    scene = open_posed_rgbd(tmp_path / "scene")
    assert scene.num_frames == tiny_scene.num_frames
    fr = scene.frame(4)
    np.testing.assert_array_equal(fr.depth, tiny_scene.depth[4])
    np.testing.assert_array_equal(fr.instance, tiny_scene.instance[4])
    np.testing.assert_array_equal(fr.part, tiny_scene.part[4])
    np.testing.assert_allclose(fr.intrinsics, tiny_scene.intrinsics, atol=1e-7)
    ref = scene.reference()
    np.testing.assert_array_equal(ref.instance, tiny_scene.reference.instance)


def test_same_seed_identical_bytes(tiny_opts, tmp_path):
    opts = dict(tiny_opts, num_frames=3, depth_noise=0.003, hole_fraction=0.05)
    write_dataset(tmp_path / "a", num_scenes=2, num_val=1, seed=7, progress=False, **opts)
    # two worker processes (gcseg.parallel) write the same bytes as one
    write_dataset(tmp_path / "b", num_scenes=2, num_val=1, seed=7, progress=False, jobs=2, **opts)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 20
    assert [k for k in a if a[k] != b[k]] == []
    splits = json.loads(a["splits.json"])
    assert splits == {"train": ["synth_000"], "val": ["synth_001"]}
    # the two scenes differ (independent seeds)
    assert a["synth_000/depth/0.png"] != a["synth_001/depth/0.png"]
    # nothing but the dataset folders (no temporaries) in the parent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert list_scenes("synth", tmp_path / "a", "val") == ["synth_001"]
    assert open_scene("synth", tmp_path / "a", "synth_000").num_frames == 3


def test_unlabelled_scenes_follow_the_same_scenes(tiny_opts, tmp_path):
    opts = dict(tiny_opts, num_frames=2)
    write_dataset(tmp_path / "a", num_scenes=2, num_val=1, seed=7, progress=False, **opts)
    write_dataset(tmp_path / "b", num_scenes=2, num_val=1, seed=7, progress=False, num_unlabelled=1, **opts)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert json.loads(b["splits.json"]) == {"train": ["synth_000"], "val": ["synth_001"], "unlabelled": ["synth_002"]}
    assert {k: v for k, v in b.items() if not k.startswith("synth_002/") and k != "splits.json"} == \
        {k: v for k, v in a.items() if k != "splits.json"}  # scenes 0 and 1: the same bytes
    assert any(k.startswith("synth_002/") for k in b)
    assert list_scenes("synth", tmp_path / "b", "train+unlabelled") == ["synth_000", "synth_002"]
    with pytest.raises(ConfigError, match="num_unlabelled"):
        write_dataset(tmp_path / "c", num_scenes=2, num_val=1, seed=7, num_unlabelled=-1, **opts)


def test_dataset_write_is_atomic(tiny_opts, tmp_path):
    root = tmp_path / "scenes"
    (tmp_path / ".scenes.killed.tmp").mkdir()  # left behind by a killed run: cleaned up
    (tmp_path / ".other.x.tmp").mkdir()  # someone else's: left alone
    write_dataset(root, num_scenes=1, num_val=0, seed=1, progress=False, **dict(tiny_opts, num_frames=2))
    before = _tree_bytes(root)
    with pytest.raises(ConfigError, match="width"):
        write_dataset(root, num_scenes=1, num_val=0, seed=2, progress=False, **dict(tiny_opts, width=4))
    assert _tree_bytes(root) == before  # the old dataset is intact, no temporary left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.x.tmp", "scenes"]
    with pytest.raises(ConfigError, match="num_val"):
        write_dataset(root, num_scenes=2, num_val=2, seed=1, **tiny_opts)
