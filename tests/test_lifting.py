"""Lifting and voting: exact back-projection of a known box, majority voting across frames, size filter."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.geometry import backproject
from gcseg.lifting import LiftConfig, VoteAccumulator, label_confidence, label_means, lift_frame, wilson_lower
from gcseg.scene import Frame

H, W, F = 24, 32, 30.0
K = np.array([[F, 0, 15.5], [0, F, 11.5], [0, 0, 1.0]])


def _frame(depth: np.ndarray, pose: np.ndarray | None = None, index: int = 0) -> Frame:
    color = np.stack([*np.meshgrid(np.arange(W), np.arange(H)), np.zeros((H, W), int)], -1).astype(np.uint8)
    return Frame(index=index, color=color, depth=depth.astype(np.float32), intrinsics=K,
                 pose=np.eye(4) if pose is None else pose)


def _box_scene() -> tuple[Frame, np.ndarray]:
    """Wall at 2 m, a box face at 1.5 m on pixels [8:16, 10:22] (id 3), one invalid pixel."""
    depth = np.full((H, W), 2.0)
    depth[8:16, 10:22] = 1.5
    depth[0, 0] = 0
    ids = np.zeros((H, W), np.int32)
    ids[8:16, 10:22] = 3
    pose = np.eye(4)
    pose[:3, 3] = [0.3, -0.2, 0.1]
    return _frame(depth, pose), ids


def test_box_lifts_to_exactly_its_points():
    frame, ids = _box_scene()
    coord, color, inst = lift_frame(frame, ids)
    assert coord.dtype == np.float32 and color.dtype == np.uint8 and inst.dtype == np.int32
    assert coord.shape == (H * W - 1, 3)  # every valid-depth pixel, the invalid one dropped
    box = inst == 3
    assert box.sum() == 8 * 12 and set(np.unique(inst)) == {-1, 3}
    # the box points: z = 1.5 in the camera = 1.6 in the world (pose translates z by 0.1), on the right pixels
    np.testing.assert_allclose(coord[box, 2], 1.6, atol=1e-6)
    v, u = np.mgrid[8:16, 10:22]
    expect_x = (u.ravel() - 15.5) * 1.5 / F + 0.3
    np.testing.assert_allclose(np.sort(coord[box, 0]), np.sort(expect_x), atol=1e-6)
    assert set(map(tuple, color[box][:, :2])) == {(x, y) for y in range(8, 16) for x in range(10, 22)}


def test_box_votes_onto_reference_exactly():
    frame, ids = _box_scene()
    ref, _ = backproject(frame.depth, frame.intrinsics, frame.pose)  # reference = the lifted points themselves
    for voxel in (None, 0.005):
        acc = VoteAccumulator(ref, max_dist=0.01, voxel=voxel, association="pixel")
        acc.add(frame, ids)
        out = acc.result(min_share=0.5, min_points=1)
        assert out.dtype == np.int32 and out.shape == (ref.shape[0],)
        expect = np.where(np.abs(ref[:, 2] - 1.6) < 1e-4, 3, -1)
        np.testing.assert_array_equal(out, expect)


def test_conflicting_votes_resolve_by_majority():
    ref = np.array([[0, 0, 2.0], [0.5, 0, 2.0], [5, 5, 5]], np.float32)  # the third point is never seen
    depth = np.zeros((H, W))
    depth[11, 15] = 2.0  # pixel (15, 11) sees (0, 0, 2) ... (cx 15.5: x = -0.5/30*2 = -0.033)
    depth[11, 23] = 2.0  # pixel (23, 11) sees (0.5, 0, 2)
    acc = VoteAccumulator(ref, max_dist=0.05, association="pixel", voxel=None)
    votes_a = [5, 5, 7, 5, 7]  # point 0: id 5 wins 3:2
    votes_b = [7, 9, 9, 7, 0]  # point 1: 7 and 9 tie 2:2 (+1 background) -> share 0.4 < 0.5 -> -1
    for a, b in zip(votes_a, votes_b):
        ids = np.zeros((H, W), np.int32)
        ids[11, 15], ids[11, 23] = a, b
        acc.add(_frame(depth), ids)
    assert acc.num_frames == 5
    assert acc.result(min_share=0.5, min_points=1).tolist() == [5, -1, -1]
    assert acc.result(min_share=0.4, min_points=1).tolist() == [5, 7, -1]  # tie -> smaller id
    point, ident, count = acc.votes()
    assert dict(zip(zip(point.tolist(), ident.tolist()), count.tolist())) == {
        (0, 5): 3, (0, 7): 2, (1, 0): 1, (1, 7): 2, (1, 9): 2}


def test_background_counts_in_the_share_but_never_wins_a_tie():
    ref = np.array([[0, 0, 2.0]], np.float32)
    depth = np.zeros((H, W))
    depth[11, 15] = 2.0
    acc = VoteAccumulator(ref, association="pixel", voxel=None)
    for v in (0, 4):  # one frame sees no mask there, one sees object 4: share 0.5
        ids = np.zeros((H, W), np.int32)
        ids[11, 15] = v
        acc.add(_frame(depth), ids)
    assert acc.result(min_share=0.5, min_points=1).tolist() == [4]
    assert acc.result(min_share=0.51, min_points=1).tolist() == [-1]
    ids = np.zeros((H, W), np.int32)
    acc.add(_frame(depth), ids)  # background 2 : 1 -> share 1/3; a lower min_share lets the object win
    assert acc.result(min_share=0.5, min_points=1).tolist() == [-1]
    assert acc.result(min_share=0.3, min_points=1).tolist() == [4]


def test_background_votes_option():
    ref = np.array([[0, 0, 2.0]], np.float32)
    depth = np.zeros((H, W))
    depth[11, 15] = 2.0
    for bg, expect in ((True, -1), (False, 4)):
        acc = VoteAccumulator(ref, background_votes=bg, association="pixel", voxel=None)
        for v in (4, 0, 0):
            ids = np.zeros((H, W), np.int32)
            ids[11, 15] = v
            acc.add(_frame(depth), ids)
        assert acc.result(min_points=1).tolist() == [expect]


def test_min_points_drops_small_ids_and_far_points_do_not_vote():
    frame, ids = _box_scene()
    ids[8:10, 10:12] = 8  # a 4-pixel id inside the box
    ref, _ = backproject(frame.depth, frame.intrinsics, frame.pose)
    far = ref + np.array([0, 0, 1.0], np.float32)  # a copy 1 m away: beyond max_dist
    acc = VoteAccumulator(np.concatenate([ref, far]), max_dist=0.05, association="pixel", voxel=None)
    acc.add(frame, ids)
    out = acc.result(min_share=0.5, min_points=5)
    n = ref.shape[0]
    assert (out[:n] == 3).sum() == 8 * 12 - 4 and (out[:n] == 8).sum() == 0  # id 8 had 4 points < 5
    assert np.all(out[n:] == -1)
    assert (acc.result(min_share=0.5, min_points=4)[:n] == 8).sum() == 4


def test_compression_keeps_counts_and_memory_bounded():
    frame, ids = _box_scene()
    ref, _ = backproject(frame.depth, frame.intrinsics, frame.pose)
    a = VoteAccumulator(ref, max_dist=0.01, compress_at=50, association="pixel", voxel=None)
    b = VoteAccumulator(ref, max_dist=0.01, association="pixel", voxel=None)
    for _ in range(6):
        a.add(frame, ids)
        b.add(frame, ids)
    assert a._pending < 50 + 200 and a._table_keys.size > 0  # merged as it goes
    for x, y in zip(a.votes(), b.votes()):
        np.testing.assert_array_equal(x, y)
    assert a.votes()[2].max() == 6


def test_shape_mismatch_is_an_error():
    frame, _ = _box_scene()
    with pytest.raises(ValueError, match="id_map shape"):
        lift_frame(frame, np.zeros((H + 1, W), np.int32))


def test_frames_that_see_nothing_near_the_reference():
    frame, ids = _box_scene()
    ref = np.array([[50.0, 50.0, 50.0], [51.0, 50.0, 50.0]], np.float32)
    for voxel in (None, 0.01):
        acc = VoteAccumulator(ref, voxel=voxel, association="pixel")
        acc.add(frame, ids)
        acc.add(_frame(np.zeros((H, W))), ids)  # no valid depth at all
        assert acc.num_frames == 2 and acc.result(min_points=1).tolist() == [-1, -1]
    empty = VoteAccumulator(np.zeros((0, 3), np.float32))
    empty.add(frame, ids)
    assert empty.result().shape == (0,)


def test_point_association_votes_every_visible_point_and_skips_occluded_ones():
    """Reference points denser than the pixels: "point" association gives every visible point of the box face a
    vote (the pixel association reaches only the points nearest some lifted pixel); a point behind the box and a
    point off the image get none."""
    frame, ids = _box_scene()
    pose = frame.pose
    # box face (camera z = 1.5) sampled 4x denser than its pixels, inside pixels [9:15, 11:21]
    v, u = np.mgrid[9:15:0.25, 11:21:0.25]
    cam = np.stack([(u.ravel() - 15.5) * 1.5 / F, (v.ravel() - 11.5) * 1.5 / F, np.full(u.size, 1.5)], 1)
    hidden = np.array([[0.0, 0.0, 1.9]])  # behind the box face on the optical axis (the pixel sees 1.5 m)
    outside = np.array([[5.0, 0.0, 2.0]])  # projects far off the image
    ref = (np.concatenate([cam, hidden, outside]) + pose[:3, 3]).astype(np.float32)
    face = np.arange(cam.shape[0])
    point = VoteAccumulator(ref, max_dist=0.05, association="point")
    pixel = VoteAccumulator(ref, max_dist=0.05, voxel=None, association="pixel")
    for acc in (point, pixel):
        acc.add(frame, ids)
    out = point.result(min_share=0.5, min_points=1)
    assert (out[face] == 3).all()
    assert out[-2] == -1 and out[-1] == -1
    voted, _, _ = point.votes()
    assert set(voted.tolist()) == set(face.tolist())  # occluded and off-image points never voted
    covered = (pixel.result(min_share=0.5, min_points=1)[face] == 3).mean()
    assert covered < 0.5  # one pixel per 16 reference points: most are nobody's nearest point


def test_fine_share_gives_a_point_the_finer_of_nested_ids():
    """fine_share: a cup (id 7) voted on one point inside its shelf's mask (id 5, voted on all three) keeps that
    point where it holds >= the share of its votes; an id under the share (9) does not; the default stays majority."""
    ref = np.array([[0, 0, 2.0], [0.5, 0, 2.0], [-0.5, 0, 2.0]], np.float32)
    depth = np.zeros((H, W))
    depth[11, 15] = depth[11, 23] = depth[11, 8] = 2.0  # pixels (15 | 23 | 8, 11) see points 0 | 1 | 2
    acc = VoteAccumulator(ref, max_dist=0.05, association="pixel", voxel=None)
    for a, b in zip([5, 5, 5, 7, 7], [5, 5, 5, 5, 9]):  # point 0: shelf 3, cup 2; point 1: shelf 4, other 1
        ids = np.zeros((H, W), np.int32)
        ids[11, 15], ids[11, 23], ids[11, 8] = a, b, 5
        acc.add(_frame(depth), ids)
    assert acc.result(min_points=1).tolist() == [5, 5, 5]  # majority (the default, LiftConfig.fine_share None)
    assert acc.result(min_points=1, fine_share=0.25).tolist() == [7, 5, 5]  # 9 holds 0.2 < 0.25 of point 1
    assert acc.result(min_points=1, fine_share=0.5).tolist() == [5, 5, 5]  # the cup's 0.4 is under 0.5
    assert acc.result(min_points=2, fine_share=0.25).tolist() == [-1, 5, 5]  # min_points still applies


def test_defaults_follow_lift_config():
    """One set of lifting defaults: VoteAccumulator and its result() follow LiftConfig (= sam2_track.lift)."""
    acc = VoteAccumulator(np.zeros((1, 3), np.float32))
    cfg = LiftConfig()
    assert (acc.association, acc.max_dist) == (cfg.association, cfg.max_dist) == ("point", 0.05)
    pixel = VoteAccumulator(np.zeros((1, 3), np.float32), association="pixel")
    assert pixel.voxel == cfg.voxel


def test_association_is_checked():
    with pytest.raises(ValueError, match="association"):
        VoteAccumulator(np.zeros((1, 3), np.float32), association="nearest")


def test_wilson_lower_bound_values_and_monotonicity():
    """Known values of the Wilson score interval's lower bound (z 1.96), 0 without votes, and more votes of the
    same share give a higher bound."""
    low = wilson_lower(np.array([1.0, 0.5, 0.0, 1.0]), np.array([1, 100, 5, 0]))
    assert low[0] == pytest.approx(1 / (1 + 1.96**2), abs=1e-9)  # n=1, p=1: 1 / (1 + z^2)
    assert low[1] == pytest.approx(0.4038, abs=1e-3) and low[2] == 0.0 and low[3] == 0.0
    n = np.arange(1, 50)
    assert np.all(np.diff(wilson_lower(np.full(n.size, 0.7), n)) > 0)
    with pytest.raises(ValueError, match="one shape"):
        wilson_lower(np.ones(3), np.ones(2))


def test_label_confidence_is_the_mean_wilson_bound_per_label():
    """Per id, the mean over its points (0 for an id without points), and the confidence is that mean of the
    points' Wilson bounds, or of the shares themselves without vote counts."""
    labels = np.array([3, 3, -1, 7, 7, 7])
    share = np.array([1.0, 0.5, 0.9, 0.2, 0.4, 0.6])
    votes = np.array([1, 10, 4, 5, 5, 0])
    ids = np.array([3, 7, 9])
    np.testing.assert_allclose(label_means(share, labels, ids), [0.75, 0.4, 0.0])
    w = wilson_lower(share, votes)
    np.testing.assert_allclose(label_confidence(labels, share, votes, ids), [w[:2].mean(), w[3:].mean(), 0.0])
    np.testing.assert_allclose(label_confidence(labels, share, None, ids), [0.75, 0.4, 0.0])
    assert label_means(share, labels, np.zeros(0, int)).shape == (0,)


def test_point_votes_count_every_view_that_saw_a_point():
    depth = np.full((H, W), 2.0)
    ref, _ = backproject(depth, K, np.eye(4))
    acc = VoteAccumulator(ref, max_dist=0.05)
    ids = np.zeros((H, W), np.int32)
    ids[:, : W // 2] = 4
    for i in range(3):
        acc.add(_frame(depth, index=i), ids)
    votes = acc.point_votes()
    assert votes.dtype == np.int32 and votes.shape == (len(ref),) and (votes == 3).all()
