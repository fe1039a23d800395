"""Algorithm 1 state machine: scripted sequences for every transition and the granularity-gate properties."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import ConfigError
from gcseg.proposals.base import Proposals
from gcseg.tracking.policy import ObjectState, TrackingPolicy, mask_iou

H, W = 20, 30
A, D, T = ObjectState.ACTIVE, ObjectState.DORMANT, ObjectState.TERMINATED


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def props(*masks: np.ndarray) -> Proposals:
    if not masks:
        return Proposals.empty(H, W)
    return Proposals(np.stack(masks), np.ones(len(masks), np.float32))


LEFT, RIGHT = box(2, 10, 2, 10), box(2, 10, 15, 23)


def test_birth_match_dormant_reactivate_terminate():
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=2)
    s = pol.step(0, {}, props(LEFT, RIGHT))
    assert s.new == {1: 0, 2: 1} and set(s.condition) == {1, 2} and set(s.masks) == {1, 2}
    # both matched (slightly shifted) -> stay ACTIVE, miss 0, re-conditioned with the proposal
    s = pol.step(5, {1: LEFT, 2: RIGHT}, props(box(2, 10, 3, 11), RIGHT))
    assert s.matches == {1: 0, 2: 1} and s.transitions == [] and s.new == {}
    assert np.array_equal(s.condition[1], box(2, 10, 3, 11))
    # object 2 unmatched -> DORMANT on the first miss; its mask is not emitted
    s = pol.step(10, {1: LEFT, 2: RIGHT}, props(LEFT))
    assert s.transitions == [(2, A, D)] and pol.tracks[2].miss == 1 and set(s.masks) == {1}
    # second miss: still DORMANT (miss 2 <= tau_dorm)
    s = pol.step(15, {1: LEFT, 2: np.zeros((H, W), bool)}, props(LEFT))
    assert s.transitions == [] and pol.tracks[2].state is D and pol.tracks[2].miss == 2
    # matched again -> DORMANT -> ACTIVE, miss reset
    s = pol.step(20, {1: LEFT, 2: RIGHT}, props(LEFT, RIGHT))
    assert s.transitions == [(2, D, A)] and pol.tracks[2].miss == 0 and set(s.masks) == {1, 2}
    # three misses in a row -> TERMINATED at miss 3 > tau_dorm 2, removed from the propagator
    for t, expect in [(25, (2, A, D)), (30, None), (35, (2, D, T))]:
        s = pol.step(t, {1: LEFT, 2: RIGHT}, props(LEFT))
        assert s.transitions == ([] if expect is None else [expect])
    assert s.remove == [2] and pol.tracks[2].state is T and pol.tracks[2].ended_at == 35
    assert pol.live_ids() == [1]


def test_terminated_never_returns_and_ids_never_reused():
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=0)
    pol.step(0, {}, props(LEFT))
    s = pol.step(1, {1: LEFT}, props())  # tau_dorm 0: straight to TERMINATED on the first miss
    assert s.transitions == [(1, A, T)] and s.remove == [1]
    # the same object shows up again: it is a NEW object with a new id, never id 1
    s = pol.step(2, {}, props(LEFT))
    assert s.new == {2: 0} and pol.tracks[1].state is T
    with pytest.raises(ValueError, match="terminated"):
        pol.step(3, {1: LEFT}, props(LEFT))


def test_hungarian_assignment_and_threshold():
    x, y, z = box(0, 10, 0, 10), box(0, 10, 2, 12), box(12, 20, 20, 30)  # x and y overlap a lot
    pol = TrackingPolicy(tau_iou=0.7)
    pol.step(0, {}, props(x))
    pol.step(1, {1: x}, props(x, z))
    assert pol.live_ids() == [1, 2]
    # proposals p0 (best for 2 = z region shifted: IoU 8/12 < 0.7) and p1 = x: only x matches
    s = pol.step(2, {1: x, 2: z}, props(box(12, 20, 22, 30) | box(12, 20, 16, 18), x))
    assert s.matches == {1: 1} and 2 not in s.matches
    # one-to-one: two proposals equal to x cannot both match object 1
    s = pol.step(3, {1: x}, props(x, x.copy()))
    assert s.matches == {1: 0} and s.rejected == {1: "part_or_union"}
    # global assignment: with y tracked too, p0 = cols 0-9 goes to x (IoU .9) and p1 = cols 3-12 to y (.9)
    pol4 = TrackingPolicy(tau_iou=0.7, gate_uncovered=0.0)
    pol4.step(0, {}, props(x))
    pol4.step(1, {1: x}, props(x, box(0, 10, 10, 12)))  # object 2 = the columns 10-11 (uncovered part)
    s = pol4.step(2, {1: x, 2: y}, props(box(0, 10, 0, 9), box(0, 10, 3, 12)))
    assert s.matches == {1: 0, 2: 1}


def test_part_of_tracked_object_never_spawns():
    pol = TrackingPolicy(tau_iou=0.7)
    pol.step(0, {}, props(LEFT))
    part = box(2, 6, 2, 10)  # the top half of LEFT: IoU 0.5 -> unmatched, 0 % uncovered
    s = pol.step(1, {1: LEFT}, props(part))
    assert s.new == {} and s.rejected == {0: "part_or_union"}


def test_union_of_two_tracked_objects_never_spawns():
    pol = TrackingPolicy(tau_iou=0.7)
    pol.step(0, {}, props(LEFT, RIGHT))
    union = box(2, 10, 2, 23)  # both objects + the gap between them (5 of 21 columns uncovered)
    s = pol.step(1, {1: LEFT, 2: RIGHT}, props(union))
    assert s.new == {} and s.rejected == {0: "part_or_union"}
    assert {t for t, a, b in s.transitions} == {1, 2}  # both missed (the union matches neither)


def test_dormant_masks_also_cover_and_new_mask_is_uncovered_part():
    pol = TrackingPolicy(tau_iou=0.7, min_new_area=4)
    pol.step(0, {}, props(LEFT))
    pol.step(1, {1: LEFT}, props())  # DORMANT, but SAM2 still sees it
    bigger = box(2, 10, 2, 24)  # LEFT + 14 new columns: 64 % uncovered -> a new object
    s = pol.step(2, {1: LEFT}, props(bigger))
    assert s.new == {2: 0}
    assert np.array_equal(s.condition[2], bigger & ~LEFT)  # only the uncovered part
    assert s.masks.keys() == {2}


def test_gate_thresholds_and_min_area():
    pol = TrackingPolicy(tau_iou=0.7, gate_uncovered=0.5, min_new_area=50)
    s = pol.step(0, {}, props(box(0, 5, 0, 5)))  # 25 px < 50
    assert s.new == {} and s.rejected == {0: "small"}


def test_births_in_one_step_cover_each_other_largest_first():
    pol = TrackingPolicy()
    big, inner = box(0, 10, 0, 20), box(0, 5, 0, 10)
    s = pol.step(0, {}, props(inner, big))  # order in the list does not matter: largest first
    assert s.new == {1: 1} and s.rejected == {0: "part_or_union"}


def test_empty_proposals_everywhere_is_well_defined():
    pol = TrackingPolicy()
    for t in range(4):
        s = pol.step(t, {}, props())
        assert s.new == {} and s.masks == {} and s.transitions == []
    assert pol.tracks == {}


def test_bad_inputs():
    with pytest.raises(ConfigError):
        TrackingPolicy(tau_iou=1.5)
    with pytest.raises(ConfigError):
        TrackingPolicy(tau_dorm=-1)
    pol = TrackingPolicy()
    pol.step(3, {}, props(LEFT))
    with pytest.raises(ValueError, match="increase"):
        pol.step(3, {}, props())
    with pytest.raises(ValueError, match="unknown"):
        pol.step(4, {9: LEFT}, props())
    with pytest.raises(ValueError, match="proposals are"):
        pol.step(5, {1: np.zeros((4, 4), bool)}, props())


def test_mask_iou():
    iou = mask_iou(np.stack([LEFT, RIGHT]), np.stack([LEFT, np.zeros((H, W), bool)]))
    assert iou[0, 0] == 1.0 and iou[1, 0] == 0.0 and iou[0, 1] == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_random_sequences_invariants(seed):
    """Properties over random scripts: ids never reused, TERMINATED never returns, only ACTIVE masks emitted,
    parts and unions of tracked masks never spawn."""
    rng = np.random.default_rng(seed)
    pol = TrackingPolicy(tau_iou=0.6, tau_dorm=int(rng.integers(0, 3)), min_new_area=3)
    ever, terminated = set(), set()
    for t in range(25):
        live = pol.live_ids()
        propagated = {i: pol.tracks[i].mask if rng.random() < 0.7 else np.zeros((H, W), bool) for i in live}
        masks = []
        for _ in range(int(rng.integers(0, 4))):
            y, x = rng.integers(0, H - 4), rng.integers(0, W - 4)
            masks.append(box(y, y + int(rng.integers(3, 9)), x, x + int(rng.integers(3, 12))))
        visible = [m for m in propagated.values() if m.any()]
        traps = []
        if visible:
            m = visible[int(rng.integers(len(visible)))]
            ys, xs = np.nonzero(m)
            part = np.zeros((H, W), bool)
            part[ys[: len(ys) // 2], xs[: len(xs) // 2]] = True
            traps.append(part)
        if len(visible) >= 2:
            traps.append(visible[0] | visible[1])
        s = pol.step(t, propagated, props(*(masks + traps)))
        trap_idx = set(range(len(masks), len(masks) + len(traps)))
        assert not trap_idx & set(s.new.values()), "a part/union of tracked objects spawned an object"
        assert not set(s.new) & ever, "an id was reused"
        ever |= set(s.new)
        assert not terminated & set(pol.live_ids()), "a TERMINATED object came back"
        terminated |= {i for i, tr in pol.tracks.items() if tr.state is T}
        assert set(s.masks) == set(pol.active_ids())
        assert all(pol.tracks[i].state is A for i in s.masks)
        assert set(s.remove) <= terminated


def test_known_mask_lets_an_object_grow_onto_new_surface():
    """Reprojection only knows surface seen before: a proposal that extends a tracked object onto newly
    visible pixels matches on the known part and re-conditions the object with the larger mask."""
    grown = box(2, 10, 2, 18)  # LEFT plus 8 newly visible columns: plain IoU 0.5
    known = np.zeros((H, W), bool)
    known[:, :10] = True
    plain = TrackingPolicy(tau_iou=0.7)
    plain.step(0, {}, props(LEFT))
    s = plain.step(1, {1: LEFT}, props(grown))
    assert s.matches == {} and s.rejected == {0: "part_or_union"}
    pol = TrackingPolicy(tau_iou=0.7)
    pol.step(0, {}, props(LEFT))
    s = pol.step(1, {1: LEFT}, props(grown), known)
    assert s.matches == {1: 0} and np.array_equal(s.condition[1], grown)


def test_recondition_iou_keeps_the_propagated_mask_for_weak_matches():
    pol = TrackingPolicy(tau_iou=0.5, recondition_iou=0.9)
    pol.step(0, {}, props(LEFT))
    shifted = box(2, 10, 3, 11)  # IoU 7/9 = 0.78: matched, not re-conditioned
    s = pol.step(1, {1: LEFT}, props(shifted))
    assert s.matches == {1: 0} and s.condition == {} and np.array_equal(s.masks[1], LEFT)
    s = pol.step(2, {1: LEFT}, props(LEFT))
    assert s.condition.keys() == {1}
