"""Tracking without the policy (gcseg.tracking.no_policy): the ablation of Algorithm 1, and the replay of the
first pass's proposals."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import GcsegError
from gcseg.proposals.base import Proposals
from gcseg.tracking.no_policy import KeyframeProposals, NoPolicy, track_without_policy
from gcseg.tracking.policy import ObjectState, TrackingPolicy
from gcseg.tracking.reprojection import ReprojectionPropagator
from gcseg.tracking.run import LiftConfig, track_and_lift, track_scene

from .conftest import make_scene
from .test_run import gt_proposer, switching_proposer


def _props(*masks: np.ndarray) -> Proposals:
    return Proposals(np.stack(masks), np.ones(len(masks), np.float32))


def test_every_proposal_is_new_and_every_object_lives_one_window():
    a = np.zeros((4, 6), bool)
    a[:2] = True
    b = np.zeros((4, 6), bool)
    b[2:, :3] = True
    pol = NoPolicy()
    s0 = pol.step(0, {}, _props(a, b))
    assert s0.new == {1: 0, 2: 1} and s0.remove == [] and s0.matches == {} and sorted(s0.masks) == [1, 2]
    assert set(s0.condition) == {1, 2} and np.array_equal(s0.condition[1], a)
    # the same masks again, with the objects plainly visible: still new objects, the old ones end here
    s1 = pol.step(5, {1: a, 2: b}, _props(a, b, a | b))
    assert s1.new == {3: 0, 4: 1, 5: 2} and s1.remove == [1, 2] and s1.matches == {}
    assert s1.transitions == [(1, ObjectState.ACTIVE, ObjectState.TERMINATED),
                              (2, ObjectState.ACTIVE, ObjectState.TERMINATED)]
    assert pol.active_ids() == [3, 4, 5] == pol.live_ids()
    assert pol.tracks[1].ended_at == 5 and pol.tracks[1].mask is None and pol.tracks[1].last_area == 12
    s2 = pol.step(9, {}, Proposals.empty(4, 6))  # nothing proposed: nothing tracked until the next keyframe
    assert s2.masks == {} and s2.remove == [3, 4, 5] and pol.live_ids() == []
    with pytest.raises(ValueError, match="increase"):
        pol.step(9, {}, _props(a))


def test_ids_never_repeat_across_keyframes():
    scene = make_scene(9)
    res = track_scene(scene, gt_proposer, ReprojectionPropagator(), NoPolicy(), keyframe_stride=2, tau_contain=0.8)
    # 4 boxes on each of 5 keyframes: 20 objects, each alive for one window (the last one to the end)
    assert res.stats["objects_created"] == 20 and res.stats["objects_terminated"] == 16
    assert res.stats["matched"] == 0 and res.stats["active_at_end"] == 4
    for k, t in enumerate(res.keyframes):
        window = [f for f in range(t, min(t + 2, 9))]
        ids = {int(i) for f in window for i in np.unique(res.id_maps[f]) if i}
        assert ids == set(range(4 * k + 1, 4 * k + 5))  # the window's own ids, carried by propagation


def test_replay_returns_the_recorded_proposals():
    scene = make_scene(5)
    rec = KeyframeProposals()
    track_scene(scene, switching_proposer, ReprojectionPropagator(), TrackingPolicy(tau_iou=0.7, min_new_area=5),
                keyframe_stride=2, tau_contain=0.8, on_keyframe=[rec.record])
    assert len(rec) == 3 and rec.total_masks() == 4 + 4 + 4
    for t in (0, 2, 4):
        got, want = rec(scene.frame(t)), switching_proposer(scene.frame(t))
        assert got.masks.dtype == bool and np.array_equal(got.masks, want.masks)
        assert np.array_equal(got.scores, want.scores)
    with pytest.raises(GcsegError, match="frame 1"):
        rec(scene.frame(1))


def test_without_the_policy_identity_is_lost_and_lifting_shows_it():
    """Exact proposals: the policy keeps one id per box and lifts nearly every point; without it each box gets a
    new id every window, the views disagree and the majority vote leaves most points unlabelled."""
    scene = make_scene(9)
    lift = LiftConfig(min_points=5)
    rec = KeyframeProposals()
    prop = ReprojectionPropagator()
    _, cloud, labels, shares, _, _ = track_and_lift(scene, gt_proposer, prop, TrackingPolicy(tau_iou=0.5, min_new_area=5),
                                                 keyframe_stride=2, tau_contain=0.8, lift=lift,
                                                 keyframe_hooks=[rec.record])
    np_labels, np_shares, np_votes, stats = track_without_policy(scene, rec, prop, keyframe_stride=2, tau_contain=0.8,
                                                       min_area=0, lift=lift, cloud=cloud)
    assert stats["objects_created"] == 20
    assert np_labels.shape == labels.shape and np_shares.dtype == np.float32
    assert np_votes.shape == labels.shape and np_votes.dtype == np.int32 and (np_votes[np_labels >= 0] >= 1).all()
    assert (labels >= 0).mean() > 0.8 and (np_labels >= 0).mean() < 0.5 * (labels >= 0).mean()
    assert np.all((np_shares >= 0) & (np_shares <= 1)) and np.all(np_shares[np_labels < 0] == 0)
    # deterministic, and the proposals were not run again (the replay serves them)
    again = track_without_policy(scene, rec, prop, keyframe_stride=2, tau_contain=0.8, min_area=0, lift=lift,
                                 cloud=cloud)
    assert np.array_equal(again[0], np_labels) and np.array_equal(again[1], np_shares)


def test_too_many_ids_for_an_id_map_is_an_error(monkeypatch):
    import gcseg.tracking.run as run

    scene = make_scene(3)
    rec = KeyframeProposals()
    track_scene(scene, gt_proposer, ReprojectionPropagator(), NoPolicy(), keyframe_stride=2, tau_contain=0.8,
                on_keyframe=[rec.record])
    monkeypatch.setattr(run, "MAX_ID", 5)  # 8 proposals recorded
    with pytest.raises(GcsegError, match="more than an id map holds"):
        track_without_policy(scene, rec, ReprojectionPropagator(), keyframe_stride=2, tau_contain=0.8, min_area=0,
                             lift=LiftConfig(min_points=5), cloud=scene.reference())
