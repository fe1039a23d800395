"""Label-quality diagnostics: GT ceiling, proposals with perfect identity, coverage (gcseg.eval.diagnostics)."""

import numpy as np
import pytest

from gcseg.eval.ablation import evaluate_rows, val_scene_from_cloud
from gcseg.eval.diagnostics import (FRESH_ID_BASE, LiftSettings, ViewCounts, ceiling_id_map,
                                    perfect_identity_id_map, scene_diagnostics)
from gcseg.proposals.base import Proposals
from gcseg.synth.generate import generate_scene


def test_ceiling_drops_small_instances_per_frame():
    inst = np.zeros((6, 6), np.int32)
    inst[:3, :3] = 4  # 9 px
    inst[5, 5] = 7  # 1 px
    out = ceiling_id_map(inst, min_area=2)
    assert (out[:3, :3] == 4).all() and out[5, 5] == 0 and out.sum() == 36


def test_perfect_identity_gives_gt_ids_and_fresh_ids():
    inst = np.zeros((4, 8), np.int32)
    inst[:, :4] = 3
    inst[:, 4:] = 9
    masks = np.zeros((3, 4, 8), bool)
    masks[0, :, :4] = True  # exactly instance 3
    masks[1, :, 3:] = True  # IoU with 9 = 16/20 = 0.8
    masks[2, :2, :] = True  # half of both: IoU 0.333 with each -> fresh id
    out, nxt = perfect_identity_id_map(inst, masks, match_iou=0.5, fresh_start=FRESH_ID_BASE)
    assert nxt == FRESH_ID_BASE + 1
    # largest first: mask 1 (20 px), then mask 0 and mask 2 (16 px each, by index) on top of it
    assert out[3, 0] == 3 and out[3, 7] == 9 and out[0, 0] == FRESH_ID_BASE and out[3, 3] == 3


def test_perfect_identity_without_masks():
    out, nxt = perfect_identity_id_map(np.ones((3, 3), np.int32), np.zeros((0, 3, 3), bool), fresh_start=5)
    assert nxt == 5 and not out.any()


class _GtProposer:
    """Proposals = the frame's GT instance masks (the proposer a perfect segmenter would be)."""

    name = "gt"

    def __call__(self, frame):
        ids = np.unique(frame.instance[frame.instance > 0])
        masks = np.stack([frame.instance == i for i in ids]) if ids.size else np.zeros((0, *frame.hw), bool)
        return Proposals(masks, np.ones(len(ids), np.float32))


@pytest.fixture(scope="module")
def small_scene():
    return generate_scene(3, num_frames=12, height=60, width=80, point_spacing=0.04, max_furniture=3)


def test_gt_proposals_reach_the_ceiling_and_full_coverage(small_scene):
    scene = small_scene.to_scene()
    lift = LiftSettings(min_points=20)
    d = scene_diagnostics(scene, _GtProposer(), range(0, 12, 3), tau_contain=1.0, min_area=1, lift=lift,
                          coverage_min_area=1)
    assert set(d.rows) == {"ceiling", "perfect_identity"}
    cov = d.coverage.to_json()
    assert cov["gt_instances"] > 0 and cov["before_containment"] == 1.0 and cov["after_containment"] == 1.0
    np.testing.assert_array_equal(d.rows["ceiling"].masks, d.rows["perfect_identity"].masks)
    val = val_scene_from_cloud("s", small_scene.reference)
    res = evaluate_rows([val], {k: {"s": v} for k, v in d.rows.items()}, min_region_size=20)
    assert res["ceiling"].result.ap50 > 0.8
    # confidences are vote shares, not a constant
    assert 0 < d.rows["ceiling"].scores.min() <= d.rows["ceiling"].scores.max() <= 1
    # per view: every object shown on a keyframe is matched there, and carries its size on the cloud
    v = d.views
    ids, counts = np.unique(small_scene.reference.instance, return_counts=True)
    np.testing.assert_array_equal(v.instance, ids[ids > 0])
    np.testing.assert_array_equal(v.points, counts[ids > 0])
    assert v.views.sum() >= cov["gt_instances"] > 0  # min_area 1 for both here
    np.testing.assert_array_equal(v.hits_kept, v.views)
    np.testing.assert_array_equal(v.hits_proposals, v.views)


def test_view_counts_per_object():
    v = ViewCounts.of_cloud(np.array([0, 3, 3, 5, 5, 5, 9]))
    np.testing.assert_array_equal(v.instance, [3, 5, 9])
    np.testing.assert_array_equal(v.points, [2, 3, 1])
    v.add(np.array([3, 5, 12]), np.array([0.9, 0.6, 1.0]), np.array([0.9, 0.2, 1.0]), 0.5)  # 12: not on the cloud
    v.add(np.array([5]), np.array([0.5]), np.array([0.5]), 0.5)  # IoU >= 0.5 counts
    np.testing.assert_array_equal(v.views, [1, 2, 0])
    np.testing.assert_array_equal(v.hits_proposals, [1, 2, 0])
    np.testing.assert_array_equal(v.hits_kept, [1, 1, 0])
    empty = ViewCounts.of_cloud(np.zeros(4, np.int64))
    empty.add(np.array([1]), np.array([1.0]), np.array([1.0]), 0.5)
    assert empty.views.shape == (0,)
    with pytest.raises(ValueError, match="one entry per object"):
        ViewCounts(np.array([1, 2]), np.array([5]))


def test_ceiling_only_without_proposer(small_scene):
    d = scene_diagnostics(small_scene.to_scene(), None, [0, 6], tau_contain=0.8, min_area=1,
                          lift=LiftSettings(min_points=20), coverage_min_area=1)
    assert set(d.rows) == {"ceiling"} and d.coverage.instances == 0


def test_accumulated_inside_a_tracking_pass_equals_the_standalone_diagnostics(small_scene):
    """sam2_track's way: the accumulator observes the tracker's proposer and receives the filtered proposals of
    each keyframe; the proposer runs once per keyframe and the rows equal scene_diagnostics' on those keyframes."""
    from gcseg.eval.diagnostics import DiagnosticsAccumulator
    from gcseg.proposals.factory import build_proposer
    from gcseg.tracking.policy import TrackingPolicy
    from gcseg.tracking.reprojection import ReprojectionPropagator
    from gcseg.tracking.run import track_scene

    scene = small_scene.to_scene()
    lift = LiftSettings(min_points=20)
    kw = dict(min_area=5, lift=lift, coverage_min_area=30)
    calls: list[int] = []
    gt_sim = build_proposer("gt_sim", {"boundary_noise": 0.05, "min_area_frac": 0.001}, seed=4)

    def proposer(frame):
        calls.append(frame.index)
        return gt_sim(frame)

    acc = DiagnosticsAccumulator(scene.reference().coord, **kw)
    res = track_scene(scene, acc.observe(proposer), ReprojectionPropagator(), TrackingPolicy(min_new_area=5),
                      keyframe_stride=3, tau_contain=0.8, min_area=5, on_keyframe=[acc.on_keyframe])
    assert calls == res.keyframes == [0, 3, 6, 9]
    inside = acc.result(scene.scene_id)
    alone = scene_diagnostics(scene, gt_sim, res.keyframes, tau_contain=0.8, **kw)
    assert set(inside.rows) == set(alone.rows) == {"ceiling", "perfect_identity"}
    for k in inside.rows:
        np.testing.assert_array_equal(inside.rows[k].masks, alone.rows[k].masks)
        np.testing.assert_array_equal(inside.rows[k].scores, alone.rows[k].scores)
    assert inside.coverage == alone.coverage and inside.coverage.instances > 0
    labels, shares, votes = acc.lifted()["ceiling"]
    assert labels.dtype == np.int32 and shares.dtype == np.float32 and (shares[labels < 0] == 0).all()
    assert votes.dtype == np.int32 and (votes[labels >= 0] >= 1).all()


def test_frames_without_gt_are_skipped(small_scene):
    from dataclasses import replace

    from gcseg.eval.diagnostics import DiagnosticsAccumulator

    scene = small_scene.to_scene()
    acc = DiagnosticsAccumulator(scene.reference().coord, min_area=1, lift=LiftSettings(min_points=20),
                                 coverage_min_area=1)
    frame = scene.frame(0)
    acc.add(replace(frame, instance=None), _GtProposer()(frame), np.zeros((0, *frame.hw), bool))
    assert acc.keyframes == 0 and acc.lifted() == {} and acc.coverage.instances == 0
    acc.add(frame)  # GT, no proposals: the ceiling only
    assert acc.keyframes == 1 and set(acc.lifted()) == {"ceiling"}
