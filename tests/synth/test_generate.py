"""generate_scene: determinism, geometric consistency of depth / poses / GT with the reference cloud, parts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from gcseg.errors import ConfigError
from gcseg.geometry import backproject, check_pose
from gcseg.synth import LABELS, generate_scene

TINY = dict(num_frames=6, height=48, width=64, orbit_degrees=90.0)  # as conftest.TINY (importlib mode: no import)


def test_same_seed_same_arrays_other_seed_other_scene(tiny_scene):
    again = generate_scene(3, **TINY)
    for name in ("color", "depth", "instance", "part", "intrinsics", "poses"):
        np.testing.assert_array_equal(getattr(again, name), getattr(tiny_scene, name), err_msg=name)
    for name in ("coord", "color", "instance", "segment"):
        np.testing.assert_array_equal(getattr(again.reference, name), getattr(tiny_scene.reference, name))
    other = generate_scene(4, **TINY)
    assert not np.array_equal(other.depth, tiny_scene.depth)


def test_layout_does_not_depend_on_frames_or_resolution(tiny_scene):
    bigger = generate_scene(3, num_frames=3, height=24, width=32, orbit_degrees=90.0)
    assert [o.to_json() for o in bigger.layout.objects] == [o.to_json() for o in tiny_scene.layout.objects]


def test_arrays_shapes_types_and_poses(tiny_scene):
    s = tiny_scene
    f, h, w = TINY["num_frames"], TINY["height"], TINY["width"]
    assert s.color.shape == (f, h, w, 3) and s.color.dtype == np.uint8
    assert s.depth.shape == (f, h, w) and s.depth.dtype == np.float32
    assert s.instance.dtype == np.int32 and s.part.dtype == np.int32
    # every pixel hits the room; depth is quantised to millimetres (what depth/<i>.png stores)
    assert (s.depth > 0.05).all() and (s.depth < 12).all()
    np.testing.assert_allclose(s.depth * 1000, np.round(s.depth * 1000), atol=1e-3)
    for pose in s.poses:
        check_pose(pose)
    # consecutive frames are close: a smooth path (SAM2 tracks across it)
    steps = np.linalg.norm(np.diff(s.poses[:, :3, 3], axis=0), axis=1)
    assert steps.max() < 1.0
    # part ids are unique per scene and nest in instances: one instance per part id
    parts = s.part[s.part > 0]
    inst = s.instance[s.part > 0]
    for p in np.unique(parts):
        assert np.unique(inst[parts == p]).size == 1
    assert (s.part[s.instance == 0] == 0).all()


def test_gt_instances_reproject_onto_reference(tiny_scene):
    s = tiny_scene
    ref = s.reference
    tree = cKDTree(ref.coord)
    agree = total = near = 0
    for i in range(s.num_frames):
        pts, idx = backproject(s.depth[i], s.intrinsics, s.poses[i])
        dist, nn = tree.query(pts, k=1)
        ok = dist < 0.05
        near += int(ok.sum())
        total += pts.shape[0]
        agree += int((ref.instance[nn[ok]] == s.instance[i].reshape(-1)[idx[ok]]).sum())
    assert near / total > 0.95, f"only {near / total:.3f} of pixels lie near the reference cloud"
    assert agree / near > 0.95, f"instance agreement {agree / near:.3f}"


def test_depth_agrees_across_frames(tiny_scene):
    """Frame i's depth reprojected into frame i+1 matches i+1's depth (bilinear lookup: with nearest-pixel
    lookup a 64x48 image's grazing floor alone gives ~1.5 cm of slope error)."""
    s = tiny_scene
    h, w = s.image_size
    k = s.intrinsics
    for i in range(s.num_frames - 1):
        pts, _ = backproject(s.depth[i], k, s.poses[i])
        w2c = np.linalg.inv(s.poses[i + 1])
        pc = pts.astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
        u = k[0, 0] * pc[:, 0] / pc[:, 2] + k[0, 2]
        v = k[1, 1] * pc[:, 1] / pc[:, 2] + k[1, 2]
        ok = (pc[:, 2] > 0.1) & (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
        assert ok.sum() > 0.3 * pts.shape[0]
        d = ndimage.map_coordinates(s.depth[i + 1].astype(np.float64), [v[ok], u[ok]], order=1)
        assert np.median(np.abs(d - pc[ok, 2])) < 0.01


def test_reference_cloud_labels_and_sizes(tiny_scene):
    ref = tiny_scene.reference
    assert ref.coord.dtype == np.float32 and ref.color.dtype == np.uint8
    assert ((ref.instance == 0) == (ref.segment == 0)).all()
    assert set(np.unique(ref.segment).tolist()) <= set(LABELS)
    counts = np.bincount(ref.instance)
    for k in np.unique(tiny_scene.instance):
        if k > 0:
            assert counts[k] >= 100, f"instance {k} seen in the images has only {counts[k]} reference points"
    # an instance's points carry one label
    for k in np.unique(ref.instance):
        assert np.unique(ref.segment[ref.instance == k]).size == 1


def test_every_object_has_parts_with_different_colours(tiny_scene):
    s = tiny_scene
    for obj in s.layout.objects:
        prims = [p for p in s.layout.primitives if p.instance == obj.instance]
        assert len({p.part for p in prims}) >= 2, obj.name
        assert len({p.color for p in prims}) >= 2, obj.name
    # and the images show it: large instances show >= 2 parts whose mean colours differ
    shown = multi = 0
    color = s.color.reshape(-1, 3).astype(np.float64)
    inst, part = s.instance.reshape(-1), s.part.reshape(-1)
    for k in np.unique(inst[inst > 0]):
        sel = inst == k
        if sel.sum() < 150:
            continue
        shown += 1
        ps = [p for p in np.unique(part[sel]) if (part == p).sum() >= 10]
        means = [color[part == p].mean(0) for p in ps]
        if any(np.abs(a - b).sum() > 20 for j, a in enumerate(means) for b in means[j + 1:]):
            multi += 1
    assert shown >= 3 and multi >= 0.8 * shown, (shown, multi)


def test_noise_and_holes(tiny_scene, noisy_scene):
    clean, noisy = tiny_scene.depth, noisy_scene.depth
    holes = noisy == 0
    assert 0.07 < holes.mean() < 0.13
    np.testing.assert_array_equal(noisy_scene.instance, tiny_scene.instance)  # GT stays clean
    diff = np.abs(noisy - clean)[~holes]
    assert 0.005 < np.median(diff) < 0.05


def test_scene_view_and_meta(tiny_scene):
    scene = tiny_scene.to_scene()
    fr = scene.frame(2)
    np.testing.assert_array_equal(fr.depth, tiny_scene.depth[2])
    assert fr.part is not None and fr.instance is not None and scene.reference() is tiny_scene.reference
    meta = tiny_scene.meta()
    assert meta["seed"] == 3 and meta["objects"] and all(len(o["parts"]) >= 2 for o in meta["objects"])


@pytest.mark.parametrize("bad", [dict(num_frames=0), dict(height=2), dict(hole_fraction=0.95),
                                 dict(depth_noise=-0.1)])
def test_bad_options_raise_config_error(bad):
    opts = {**TINY, **bad}
    with pytest.raises(ConfigError, match=next(iter(bad))):
        generate_scene(0, **opts)
