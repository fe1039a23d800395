"""The reprojection backend on exactly rendered static scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from gcseg.errors import InputError
from gcseg.geometry import backproject, project
from gcseg.scene import Frame
from gcseg.tracking.propagators import build_propagator
from gcseg.tracking.reprojection import ReprojectionPropagator

from .conftest import make_scene, orbit_poses


def gt_masks(frame: Frame) -> dict[int, np.ndarray]:
    return {int(i): frame.instance == i for i in np.unique(frame.instance) if i > 0}


def covisible(src: Frame, dst: Frame, tol: float = 0.01) -> np.ndarray:
    """Pixels of dst whose surface point is seen by src (exact geometry)."""
    pts, idx = backproject(dst.depth, dst.intrinsics, dst.pose)
    u, v, z, ok = project(pts, src.intrinsics, src.pose, src.hw)
    d = np.zeros_like(z)
    d[ok] = src.depth[v[ok], u[ok]]
    ok &= np.abs(d - z) < tol
    out = np.zeros(dst.hw, bool)
    out.reshape(-1)[idx[ok]] = True
    return out


def out_of_view(src: Frame, dst: Frame) -> np.ndarray:
    """Pixels of dst whose surface point falls outside src's image."""
    pts, idx = backproject(dst.depth, dst.intrinsics, dst.pose)
    _, _, _, ok = project(pts, src.intrinsics, src.pose, src.hw)
    out = np.zeros(dst.hw, bool)
    out.reshape(-1)[idx[~ok]] = True
    return out


def test_same_pose_is_exact():
    pose = orbit_poses(3)[1]
    scene = make_scene(poses=[pose, pose])
    f0, f1 = scene.frame(0), scene.frame(1)
    prop = ReprojectionPropagator()
    prop.condition(f0, gt_masks(f0))
    (out,) = list(prop.propagate([f0, f1]))
    for i, m in gt_masks(f1).items():
        assert np.array_equal(out[i], m), i


def test_static_scene_exact_on_covisible_surface():
    scene = make_scene(5)
    frames = list(scene.frames())
    prop = ReprojectionPropagator()
    prop.condition(frames[0], gt_masks(frames[0]))
    for f, out in zip(frames[1:], prop.propagate(frames)):
        label = np.zeros(f.hw, np.int64)
        for i, m in out.items():
            assert not (label[m] > 0).any(), "reprojected masks overlap"
            label[m] = i
        vis = covisible(frames[0], f) & (f.instance > 0)
        agree = (label[vis] == f.instance[vis]).mean()
        assert agree > 0.97, (f.index, agree)
        # nothing invented outside frame 0's view (up to the fill margin at its border)
        unseen = ndimage.binary_erosion(out_of_view(frames[0], f), iterations=3, border_value=1)
        assert unseen.sum() > 20 and not (label[unseen] > 0).any()


def test_accumulating_views_grows_the_model():
    frames = list(make_scene(5).frames())
    one, many = ReprojectionPropagator(), ReprojectionPropagator()
    one.condition(frames[0], gt_masks(frames[0]))
    many.condition(frames[0], gt_masks(frames[0]))
    many.condition(frames[2], gt_masks(frames[2]))
    a = list(one.propagate([frames[2], frames[4]]))[0]
    b = list(many.propagate([frames[2], frames[4]]))[0]
    assert sum(int(m.sum()) for m in b.values()) >= sum(int(m.sum()) for m in a.values())


def test_moving_object_fades_out():
    """Documented limitation: a moved object's points fail the depth test and its mask vanishes."""
    from .conftest import BOXES

    def boxes(i: int):
        lo, hi = BOXES[1]
        shift = np.array([0.0, 0.0, 0.0]) if i == 0 else np.array([0.0, 0.6, 0.0])
        return [BOXES[0], (lo + shift, hi + shift), BOXES[2]]

    pose = orbit_poses(3)[1]
    scene = make_scene(poses=[pose, pose], boxes_per_frame=boxes)
    f0, f1 = scene.frame(0), scene.frame(1)
    prop = ReprojectionPropagator()
    prop.condition(f0, {3: f0.instance == 3, 2: f0.instance == 2})
    (out,) = list(prop.propagate([f0, f1]))
    moved = out.get(3, np.zeros(f1.hw, bool))
    assert (moved & (f1.instance == 3)).sum() < 0.2 * (f1.instance == 3).sum()
    both = (f0.instance == 2) & (f1.instance == 2)  # the static box, where the moved one does not hide it
    assert both.sum() > 20 and out[2][both].all()
    assert (out[2] & (f1.instance != 2)).sum() <= 0.1 * out[2].sum()  # at most a fill-margin bleed


def test_remove_reset_and_empty():
    frames = list(make_scene(3).frames())
    prop = build_propagator("reprojection")
    assert list(prop.propagate(frames)) == [{}, {}]
    prop.condition(frames[0], gt_masks(frames[0]))
    prop.remove([2])
    assert 2 not in prop.held_ids() and 3 in prop.held_ids()
    prop.reset()
    assert prop.held_ids() == []


def test_broken_pose_is_a_clear_error():
    frames = list(make_scene(2).frames())
    bad = np.array(frames[1].pose)
    bad[0, 0] = np.nan
    broken = Frame(index=1, color=frames[1].color, depth=frames[1].depth, intrinsics=frames[1].intrinsics,
                   pose=bad, instance=frames[1].instance, name="1")
    prop = ReprojectionPropagator()
    prop.condition(frames[0], gt_masks(frames[0]))
    with pytest.raises(InputError, match="frame 1.*non-finite"):
        list(prop.propagate([frames[0], broken]))
    with pytest.raises(InputError, match="non-finite"):
        prop.condition(broken, {1: broken.instance == 1})


HOLOLENS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hololens_000"


@pytest.mark.skipif(not HOLOLENS.is_dir(), reason="real capture ../shared/data/hololens_000 not present")
def test_real_capture_masks_follow_the_camera():
    """On a real posed RGB-D capture (no GT), a region reprojected one and two frames ahead keeps its size
    within the change the camera motion explains and stays on valid depth."""
    from gcseg.readers import open_scene

    scene = open_scene("posed_rgbd", HOLOLENS.parent, HOLOLENS.name)
    frames = [scene.frame(i) for i in range(3)]
    m = np.zeros(frames[0].hw, bool)
    h, w = m.shape
    m[h // 4: h // 2, w // 4: 3 * w // 4] = True
    m &= frames[0].depth > 0
    prop = ReprojectionPropagator()
    prop.condition(frames[0], {1: m})
    for f, out in zip(frames[1:], prop.propagate(frames)):
        got = out[1]
        assert 0.7 < got.sum() / m.sum() < 1.5, (f.index, got.sum(), m.sum())
        assert (f.depth[got] > 0).all()


def test_known_mask_is_the_seen_surface():
    frames = list(make_scene(5).frames())
    prop = ReprojectionPropagator()
    assert not prop.known(frames[0]).any()
    prop.condition(frames[0], {})  # no objects, but frame 0's surface is now seen
    known = prop.known(frames[4])
    seen = covisible(frames[0], frames[4])
    assert (known[seen]).mean() > 0.95
    unseen = ndimage.binary_erosion(out_of_view(frames[0], frames[4]), iterations=3, border_value=1)
    assert not known[unseen].any()


def test_removed_objects_are_archived_and_rendered_for_reidentification():
    frames = list(make_scene(5).frames())
    prop = ReprojectionPropagator()
    prop.condition(frames[0], gt_masks(frames[0]))
    (held,) = list(prop.propagate([frames[0], frames[4]]))
    prop.remove([3])
    assert 3 not in prop.held_ids()
    cand = prop.candidates(frames[4], [2, 3, 9])
    assert set(cand) == {3}  # held objects come from propagate(); unknown ids have no model
    # the archived (1 cm) model renders as the held (5 mm) one did, on the object
    inter = (cand[3] & held[3]).sum()
    assert inter / (cand[3] | held[3]).sum() > 0.8
    assert (cand[3] & (frames[4].instance == 3)).sum() > 0.8 * cand[3].sum()
    # conditioning a revived object brings its archived model back into propagation
    prop.condition(frames[4], {3: frames[4].instance == 3})
    assert 3 in prop.held_ids() and prop.candidates(frames[4], [3]) == {}
    (out,) = list(prop.propagate([frames[4], frames[4]]))
    assert (out[3] & (frames[4].instance == 3)).sum() > 0.95 * (frames[4].instance == 3).sum()
    prop.reset()
    assert prop.candidates(frames[4], [3]) == {}


def test_extend_adds_newly_visible_surface_whatever_accumulate():
    frames = list(make_scene(5).frames())
    prop = ReprojectionPropagator(accumulate=False)
    half = (frames[0].instance == 4) & (np.arange(64)[None, :] < np.median(np.nonzero(frames[0].instance == 4)[1]))
    prop.condition(frames[0], {4: half})
    (before,) = list(prop.propagate([frames[0], frames[0]]))
    prop.extend(frames[0], {4: (frames[0].instance == 4) & ~half, 9: half})  # 9 is not held: ignored
    (after,) = list(prop.propagate([frames[0], frames[0]]))
    assert prop.held_ids() == [4]
    assert after[4].sum() > before[4].sum() + 0.3 * (frames[0].instance == 4).sum()


def test_carried_masks_follow_the_camera_and_keep_the_last_mask_only():
    from gcseg.tracking.reprojection import CarriedMasks

    frames = list(make_scene(5).frames())
    carry = CarriedMasks()
    carry.update(frames[0], {2: frames[0].instance == 2, 3: frames[0].instance == 3})
    carry.update(frames[1], {3: frames[1].instance == 4})  # replaced, not accumulated
    out = carry.render(frames[4], [2, 3])
    for oid, g in ((2, 2), (3, 4)):
        truth = frames[4].instance == g
        assert (out[oid] & truth).sum() > 0.7 * truth.sum() and (out[oid] & ~truth).sum() < 0.3 * out[oid].sum()
    carry.reset()
    assert carry.render(frames[4], [2]) == {}
