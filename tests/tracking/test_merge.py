"""Merging tracks the keyframe proposals join more often than they separate (gcseg.tracking.merge): the evidence
counts, the alias map, exact relabelling of votes / id maps / consistency, and the whole loop on a scripted scan
whose proposer first shows an object in two halves."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.lifting import LiftConfig, VoteAccumulator
from gcseg.proposals.base import Proposals
from gcseg.scene import Frame
from gcseg.tracking.consistency import ConsistencyMeter
from gcseg.tracking.merge import UnionEvidence, relabel_id_map
from gcseg.tracking.policy import StepResult, TrackingPolicy
from gcseg.tracking.reprojection import ReprojectionPropagator
from gcseg.tracking.run import IdMapStack, track_and_lift

from .conftest import make_scene
from .test_run import gt_proposer
from .test_scripted import BOX_IDS, objects_of_ids, random_granularity

H, W = 20, 30


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


LEFT, RIGHT, FAR = box(2, 10, 2, 8), box(2, 10, 8, 14), box(12, 18, 20, 28)


def step(masks: dict[int, np.ndarray]) -> StepResult:
    return StepResult(frame_idx=0, matches={}, match_iou={}, new={}, rejected={}, transitions=[], condition={},
                      remove=[], masks=masks)


def props(*masks: np.ndarray) -> Proposals:
    return Proposals(np.stack(masks), np.ones(len(masks), np.float32))


FRAME = Frame(index=0, color=np.zeros((H, W, 3), np.uint8), depth=np.ones((H, W), np.float32),
              intrinsics=np.eye(3), pose=np.eye(4))


def test_joined_and_separated_counts():
    ev = UnionEvidence()
    tracked = {1: LEFT, 2: RIGHT, 3: FAR}
    ev.observe(FRAME, props(LEFT | RIGHT, FAR), step(tracked))  # the union of 1 and 2: joined
    ev.observe(FRAME, props(LEFT, RIGHT, FAR), step(tracked))  # shown apart: separated (and 1-3, 2-3)
    # a region much larger than the union holds both, but it is not their union: it joins nothing (it still
    # separates them from 3)
    ev.observe(FRAME, props(LEFT | RIGHT | box(10, 20, 0, 20)), step(tracked))
    assert ev.joined == {(1, 2): 1}
    assert ev.separated[(1, 2)] == 1 and ev.separated[(1, 3)] == 3 and ev.separated[(2, 3)] == 3
    # a proposal with a boundary pixel of the other object still separates them (separate_share 0.1)
    ev2 = UnionEvidence()
    ev2.observe(FRAME, props(LEFT | box(2, 3, 8, 9), RIGHT), step({1: LEFT, 2: RIGHT}))
    assert ev2.separated[(1, 2)] == 1 and not ev2.joined


def test_aliases_follow_the_majority_and_min_joined():
    ev = UnionEvidence()
    tracked = {1: LEFT, 2: RIGHT, 3: FAR}
    for _ in range(2):
        ev.observe(FRAME, props(LEFT | RIGHT, FAR), step(tracked))
    assert ev.aliases(min_joined=2) == {2: 1}
    assert ev.aliases(min_joined=3) == {}
    for _ in range(3):
        ev.observe(FRAME, props(LEFT, RIGHT, FAR), step(tracked))
    assert ev.aliases(min_joined=2, ratio=1.0) == {}  # separated 3 times > joined 2 times
    assert ev.aliases(min_joined=2, ratio=0.5) == {2: 1}


def test_groups_map_to_their_smallest_id():
    ev = UnionEvidence()
    a, b, c = box(0, 10, 0, 5), box(0, 10, 5, 10), box(0, 10, 10, 15)
    for _ in range(2):
        ev.observe(FRAME, props(a | b), step({4: a, 7: b, 9: c}))
        ev.observe(FRAME, props(b | c), step({4: a, 7: b, 9: c}))
    assert ev.aliases() == {7: 4, 9: 4}


def test_relabel_id_map_and_stack():
    m = np.array([[0, 1, 2], [3, 2, 0]], np.uint16)
    out = relabel_id_map(m, {2: 1, 3: 1})
    assert out.dtype == np.uint16 and out.tolist() == [[0, 1, 1], [1, 1, 0]]
    assert relabel_id_map(m, {}) is m
    stack = IdMapStack((2, 3))
    stack.append(0, m)
    stack.append(5, m[::-1].copy())
    stack.relabel({3: 2})
    assert stack.frames == [0, 5] and stack[0].tolist() == [[0, 1, 2], [2, 2, 0]]
    assert stack[1].tolist() == [[2, 2, 0], [0, 1, 2]]


@pytest.mark.parametrize("association", ["point", "pixel"])
def test_relabelled_votes_equal_votes_of_relabelled_maps(association):
    """Merging after voting is exact: the same table as voting the merged id maps."""
    rng = np.random.default_rng(0)
    ref = rng.uniform([-1, -1, 2], [1, 1, 2.5], (400, 3)).astype(np.float32)
    k = np.array([[20.0, 0, 15], [0, 20.0, 10], [0, 0, 1]])
    alias = {2: 1, 5: 3}
    a = VoteAccumulator(ref, association=association, max_dist=0.6, voxel=None)
    b = VoteAccumulator(ref, association=association, max_dist=0.6, voxel=None)
    for i in range(4):
        frame = Frame(index=i, color=np.zeros((H, W, 3), np.uint8),
                      depth=rng.uniform(2.0, 2.5, (H, W)).astype(np.float32), intrinsics=k, pose=np.eye(4))
        ids = rng.integers(0, 6, (H, W)).astype(np.int32)
        a.add(frame, ids)
        b.add(frame, relabel_id_map(ids, alias))
    a.relabel(alias)
    for x, y in zip(a.votes(), b.votes()):
        np.testing.assert_array_equal(x, y)
    assert a.votes()[0].size and not np.isin(a.votes()[1], list(alias)).any()


def test_consistency_meter_relabel():
    meter = ConsistencyMeter()
    inst = np.zeros((H, W), np.int32)
    inst[LEFT | RIGHT] = 7
    frame = Frame(index=0, color=np.zeros((H, W, 3), np.uint8), depth=np.ones((H, W), np.float32),
                  intrinsics=np.eye(3), pose=np.eye(4), instance=inst)
    meter.add(frame, np.where(LEFT | RIGHT, 1, 0))
    meter.add(frame, np.where(LEFT | RIGHT, 2, 0))
    assert meter.summary()["ids_per_instance"] == 2
    meter.relabel({2: 1})
    assert meter.summary()["ids_per_instance"] == 1 and meter.summary()["consistency"] == 1.0



def gt_frame(inst: np.ndarray, index: int = 0) -> Frame:
    return Frame(index=index, color=np.zeros((*inst.shape, 3), np.uint8), depth=np.ones(inst.shape, np.float32),
                 intrinsics=np.eye(3), pose=np.eye(4), instance=inst)


@pytest.mark.parametrize("alias", [{2: 3}, {3: 2}])
def test_consistency_meter_relabel_covers_an_object_split_over_merged_tracks(alias):
    """A 10 px object, 4 px under track 2 and 4 px under track 3: neither covers it (40 %, IoU 0.4); once the
    tracks are merged the merged id holds 8 px of it and covers it, as in a meter fed the merged maps."""
    inst = np.zeros((H, W), np.int32)
    inst[0, :10] = 5
    ids = np.zeros((H, W), np.int32)
    ids[0, :4], ids[0, 4:8] = 2, 3
    ids[5:9, 5:9] = 3  # track 3 also elsewhere: its area counts in the IoU
    meter, merged = ConsistencyMeter(), ConsistencyMeter()
    for i in range(3):
        meter.add(gt_frame(inst, i), ids)
        merged.add(gt_frame(inst, i), relabel_id_map(ids, alias))
    before = meter.summary()
    assert before["coverage"] == 0.0 and before["consistency"] == 0.0
    meter.relabel(alias)
    assert meter.summary() == merged.summary()
    assert meter.summary()["coverage"] == 1.0 and meter.summary()["consistency"] == 1.0
    assert meter.covers() == merged.covers() == {5: [alias.get(2, 2)] * 3}


@pytest.mark.parametrize("seed", range(6))
def test_relabelled_meter_equals_meter_of_relabelled_maps(seed):
    """Random small frames, labels and merge groups (and namespaced frames, never relabelled): relabelling the
    meter gives the figures and covering ids of a meter fed the relabelled id maps."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        h, w = (int(x) for x in rng.integers(2, 8, 2))
        n_gt, n_lab = int(rng.integers(1, 5)), int(rng.integers(2, 8))
        iou = float(rng.choice([0.3, 0.5, 0.7]))
        groups = rng.integers(1, n_lab + 1, n_lab)  # label l joins the group of label groups[l - 1]
        alias = {}
        for lab in range(1, n_lab + 1):
            members = [m for m in range(1, n_lab + 1) if groups[m - 1] == groups[lab - 1]]
            if lab != min(members):
                alias[lab] = min(members)
        meter, merged = (ConsistencyMeter(iou_thresh=iou, min_visible_frac=0.05) for _ in range(2))
        for i in range(int(rng.integers(1, 6))):
            frame = gt_frame(rng.integers(0, n_gt + 1, (h, w)).astype(np.int32), i)
            ids = rng.integers(0, n_lab + 1, (h, w)).astype(np.int32)
            namespace = i if rng.random() < 0.2 else None
            meter.add(frame, ids, namespace=namespace)
            merged.add(frame, ids if namespace is not None else relabel_id_map(ids, alias), namespace=namespace)
        meter.relabel(alias)
        assert meter.summary() == merged.summary() and meter.covers() == merged.covers()
        assert meter.per_instance() == merged.per_instance()


class Merge:  # the fields track_and_lift reads (sam2_track.merge)
    min_joined, ratio, union_cover, separate_share = 2, 1.0, 0.8, 0.1


def halves_first(frame: Frame) -> Proposals:
    """Keyframe 0 shows box 2 as two halves (two tracks are born), every later keyframe shows it whole, which
    the gate rejects as the union of the two tracks."""
    if frame.index > 0:
        return gt_proposer(frame)
    inst = frame.instance
    b2 = inst == 2
    left = b2 & (np.arange(inst.shape[1])[None, :] < np.median(np.nonzero(b2)[1]))
    masks = [inst == g for g in (1, 3, 4)] + [left, b2 & ~left]
    return Proposals(np.stack(masks), np.ones(len(masks), np.float32))


def big_ids(ids: np.ndarray) -> set[int]:
    """Ids on at least 10 % of the pixels (a neighbour's boundary pixels aside)."""
    u, n = np.unique(ids[ids > 0], return_counts=True)
    return set(u[n >= 0.1 * ids.size].tolist())


def test_object_first_seen_in_halves_ends_under_one_id():
    scene = make_scene(9)
    lift = LiftConfig(min_points=5, max_dist=0.05)
    out = {}
    for merge in (None, Merge()):
        policy = TrackingPolicy(tau_iou=0.7, min_new_area=5)
        out[merge is not None] = track_and_lift(scene, halves_first, ReprojectionPropagator(), policy,
                                                keyframe_stride=2, tau_contain=0.8, lift=lift, merge=merge)
    (res0, cloud, lab0, *_), (res1, _, lab1, *_) = out[False], out[True]
    assert res0.stats["objects_created"] == res1.stats["objects_created"] == 5
    # merged: box 2 carries one id in every frame's map and in the 3D labels
    assert res1.stats["merged_tracks"] == 1 and "merged_tracks" not in res0.stats
    for i in range(scene.num_frames):
        b2 = scene.frame(i).instance == 2
        ids0, ids1 = (big_ids(r.id_maps[i][b2]) for r in (res0, res1))
        assert len(ids0) == 2 and len(ids1) == 1
    on_box = cloud.instance == 2
    assert len(np.unique(lab0[on_box & (lab0 > 0)])) == 2 and len(np.unique(lab1[on_box & (lab1 > 0)])) == 1
    for oid in np.unique(lab1[lab1 > 0]):  # and no merged id spans two objects
        assert np.bincount(cloud.instance[lab1 == oid]).max() / (lab1 == oid).sum() > 0.95


@pytest.mark.parametrize("seed", range(4))
def test_merge_never_joins_objects_that_never_touch(seed):
    """Random granularity merges each box with the floor on ~15 % of keyframes and halves it on ~25 %: the
    halves may merge back, two boxes never merge."""
    scene = make_scene(9)
    policy = TrackingPolicy(tau_iou=0.7, tau_dorm=1, min_new_area=5)
    res, *_ = track_and_lift(scene, random_granularity(seed), ReprojectionPropagator(), policy, keyframe_stride=2,
                             tau_contain=0.8, lift=LiftConfig(min_points=5), merge=Merge())
    for oid, gts in objects_of_ids(scene, res).items():
        assert len(gts & set(BOX_IDS)) <= 1, (oid, gts)
