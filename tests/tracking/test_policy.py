"""Algorithm 1 state machine: scripted sequences for every transition and the granularity-gate properties."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import ConfigError
from gcseg.proposals.base import Proposals
from gcseg.masks import mask_iou
from gcseg.tracking.policy import ObjectState, TrackingPolicy, mask_evidence

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


EMPTY = np.zeros((H, W), bool)


def test_birth_match_dormant_reactivate_terminate():
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=2)
    s = pol.step(0, {}, props(LEFT, RIGHT))
    assert s.new == {1: 0, 2: 1} and set(s.condition) == {1, 2} and set(s.masks) == {1, 2}
    # both matched (slightly shifted) -> stay ACTIVE, miss 0, re-conditioned with the proposal
    s = pol.step(5, {1: LEFT, 2: RIGHT}, props(box(2, 10, 3, 11), RIGHT))
    assert s.matches == {1: 0, 2: 1} and s.transitions == [] and s.new == {}
    assert np.array_equal(s.condition[1], box(2, 10, 3, 11))
    # object 2 not visible (empty propagated mask) -> DORMANT on the first miss; its mask is not emitted
    s = pol.step(10, {1: LEFT, 2: EMPTY}, props(LEFT))
    assert s.transitions == [(2, A, D)] and pol.tracks[2].miss == 1 and set(s.masks) == {1}
    # second miss (absent from the propagated masks altogether): still DORMANT (miss 2 <= tau_dorm)
    s = pol.step(15, {1: LEFT}, props(LEFT))
    assert s.transitions == [] and pol.tracks[2].state is D and pol.tracks[2].miss == 2
    # matched again -> DORMANT -> ACTIVE, miss reset
    s = pol.step(20, {1: LEFT, 2: RIGHT}, props(LEFT, RIGHT))
    assert s.transitions == [(2, D, A)] and pol.tracks[2].miss == 0 and set(s.masks) == {1, 2}
    # three keyframes not visible -> TERMINATED at miss 3 > tau_dorm 2, removed from the propagator
    for t, expect in [(25, (2, A, D)), (30, None), (35, (2, D, T))]:
        s = pol.step(t, {1: LEFT, 2: EMPTY}, props(LEFT))
        assert s.transitions == ([] if expect is None else [expect])
    assert s.remove == [2] and pol.tracks[2].state is T and pol.tracks[2].ended_at == 35
    assert pol.live_ids() == [1]


def test_visible_object_seen_at_another_granularity_stays_active():
    """A visible object that no proposal matches at IoU > tau_iou but that the proposals show as parts, inside a
    union, or as a noisy near-match keeps its id, state and granularity (it is held), however long that lasts."""
    pol = TrackingPolicy(tau_iou=0.7, tau_dorm=1)
    pol.step(0, {}, props(LEFT, RIGHT))
    halves = props(box(2, 6, 2, 10), box(6, 10, 2, 10), RIGHT)  # LEFT as two parts, IoU 0.5 each
    union = props(box(2, 10, 2, 23))  # LEFT + RIGHT + the gap: a union (5 of 21 columns uncovered)
    shifted = props(box(2, 10, 4, 12), box(2, 10, 17, 25))  # both shifted by 2 px: IoU 0.6 < 0.7
    for t, p in enumerate([halves, union, shifted, halves, union, props()], start=1):
        s = pol.step(t, {1: LEFT, 2: RIGHT}, p)
        assert s.new == {} and s.transitions == [] and s.remove == []
        assert set(s.masks) == {1, 2} and np.array_equal(s.masks[1], LEFT)  # the propagated mask, as is
        assert 1 in s.held and 1 not in s.condition  # not re-conditioned with another granularity
        assert set(s.rejected.values()) <= {"part_or_union"}
    assert s.held == {1: 0.0, 2: 0.0}  # no proposals: held on the propagator's evidence alone (support 0)
    assert all(t.state is A and t.miss == 0 for t in pol.tracks.values())


def test_contradicted_object_ages_and_its_crossing_proposal_is_born():
    """Proposals that cut a visible object through its middle (each takes a minority of it and lies mostly
    elsewhere) are evidence of absence: it takes a miss."""
    pol = TrackingPolicy(tau_iou=0.7, tau_dorm=0, min_new_area=10)
    pol.step(0, {}, props(LEFT))
    cross_a, cross_b = box(2, 20, 0, 6), box(2, 20, 6, 14)  # each holds half of LEFT, lies 70-80 % outside it
    s = pol.step(1, {1: LEFT}, props(cross_a, cross_b))
    assert s.contradicted == [1] and s.transitions == [(1, A, T)] and s.remove == [1] and s.held == {}
    assert sorted(s.new.values()) == [0, 1]  # both are > 50 % uncovered: new objects
    # one crossing proposal claims only half of it (not more than contradict_min): still held
    pol = TrackingPolicy(tau_iou=0.7, tau_dorm=0, min_new_area=10)
    pol.step(0, {}, props(LEFT))
    s = pol.step(1, {1: LEFT}, props(cross_a))
    assert s.contradicted == [] and 1 in s.held


def test_dormant_object_visible_again_is_reactivated_without_a_match():
    pol = TrackingPolicy(tau_iou=0.7, tau_dorm=3)
    pol.step(0, {}, props(LEFT))
    s = pol.step(1, {1: EMPTY}, props())  # occluded
    assert s.transitions == [(1, A, D)]
    s = pol.step(2, {1: LEFT}, props(box(2, 6, 2, 10)))  # revealed, proposed as a part only
    assert s.transitions == [(1, D, A)] and 1 in s.held and np.array_equal(s.masks[1], LEFT)


def test_reidentification_by_iou_revives_a_terminated_object():
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=0)
    pol.step(0, {}, props(LEFT, RIGHT))
    s = pol.step(1, {1: EMPTY, 2: RIGHT}, props(RIGHT))  # object 1 leaves the view: TERMINATED at once
    assert s.remove == [1] and pol.reid_ids({2: RIGHT}) == [1]
    back = box(2, 10, 3, 11)  # it comes back, proposed slightly shifted (IoU 7/9 with its re-ID mask)
    s = pol.step(2, {2: RIGHT}, props(back, RIGHT), candidates={1: LEFT})
    assert s.revived == {1: 0} and s.new == {} and (1, T, A) in s.transitions
    assert np.array_equal(s.condition[1], back) and set(s.masks) == {1, 2}
    assert pol.tracks[1].revivals == 1 and pol.tracks[1].ended_at is None and pol.tracks[1].state is A
    # without a re-identification mask it would have been a new object with a new id
    pol2 = TrackingPolicy(tau_iou=0.5, tau_dorm=0)
    pol2.step(0, {}, props(LEFT, RIGHT))
    pol2.step(1, {1: EMPTY, 2: RIGHT}, props(RIGHT))
    s = pol2.step(2, {2: RIGHT}, props(back, RIGHT))
    assert s.new == {3: 0} and pol2.tracks[1].state is T


def test_reidentification_by_support_keeps_the_old_granularity():
    """A returning object proposed only as parts is recognised from its re-ID mask (supported, not contradicted):
    same id, its own granularity (the parts spawn nothing)."""
    pol = TrackingPolicy(tau_iou=0.7, tau_dorm=0, min_new_area=10)
    pol.step(0, {}, props(LEFT))
    pol.step(1, {1: EMPTY}, props())
    s = pol.step(2, {}, props(box(2, 6, 2, 10), box(6, 10, 2, 10)), candidates={1: LEFT})
    assert s.revived == {1: None} and s.new == {} and s.rejected == {0: "part_or_union", 1: "part_or_union"}
    assert np.array_equal(s.masks[1], LEFT) and np.array_equal(s.condition[1], LEFT)
    # an unsupported re-ID mask (nothing proposed there) does not revive it
    pol = TrackingPolicy(tau_iou=0.7, tau_dorm=0, min_new_area=10)
    pol.step(0, {}, props(LEFT))
    pol.step(1, {1: EMPTY}, props())
    s = pol.step(2, {}, props(RIGHT), candidates={1: LEFT})
    assert s.revived == {} and s.new == {2: 0} and pol.tracks[1].state is T


def test_reidentification_never_puts_two_ids_on_one_surface():
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=0, min_new_area=10)
    pol.step(0, {}, props(LEFT))
    pol.step(1, {1: EMPTY}, props())  # 1 TERMINATED
    pol.step(2, {}, props(RIGHT))  # 2 born elsewhere
    # 1's re-ID mask falls on 2's surface (as after a wrong reprojection): 2 keeps it, 1 stays TERMINATED
    s = pol.step(3, {2: RIGHT}, props(RIGHT), candidates={1: RIGHT})
    assert s.matches == {2: 0} and s.revived == {} and pol.tracks[1].state is T


def test_reid_off_and_reid_ids():
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=0, reid=False)
    pol.step(0, {}, props(LEFT))
    pol.step(1, {1: EMPTY}, props())
    assert pol.reid_ids({}) == []
    s = pol.step(2, {}, props(LEFT), candidates={1: LEFT})
    assert s.revived == {} and s.new == {2: 0}
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=3)
    pol.step(0, {}, props(LEFT, RIGHT))
    assert pol.reid_ids({1: LEFT, 2: EMPTY}) == [2]  # invisible live objects can be re-identified too
    with pytest.raises(ValueError, match="unknown object"):
        pol.step(1, {1: LEFT}, props(), candidates={9: LEFT})


def test_terminated_stays_terminated_without_reid_masks_and_ids_never_reused():
    pol = TrackingPolicy(tau_iou=0.5, tau_dorm=0)
    pol.step(0, {}, props(LEFT))
    s = pol.step(1, {1: EMPTY}, props())  # tau_dorm 0: straight to TERMINATED on the first miss
    assert s.transitions == [(1, A, T)] and s.remove == [1]
    # the same object shows up again with no re-ID mask: a NEW object with a new id, never id 1
    s = pol.step(2, {}, props(LEFT))
    assert s.new == {2: 0} and pol.tracks[1].state is T
    with pytest.raises(ValueError, match="terminated"):
        pol.step(3, {1: LEFT}, props(LEFT))


def test_mask_evidence_support_and_conflict():
    m = np.stack([LEFT])
    part = box(2, 6, 2, 10)  # top half: lies on LEFT -> compatible
    union = box(0, 12, 0, 25)  # holds all of LEFT -> compatible
    bleed = box(0, 20, 9, 14)  # a neighbour's proposal: 8 px of LEFT, mostly elsewhere -> crossing
    sup, con = mask_evidence(m, np.stack([part, bleed]), 0.5)
    assert sup[0] == 0.5 and con[0] == pytest.approx(4 / 64)  # bleed pixels also in `part` count as support
    sup, con = mask_evidence(m, np.stack([union]), 0.5)
    assert sup[0] == 1.0 and con[0] == 0.0
    sup, con = mask_evidence(m, np.zeros((0, H, W), bool), 0.5)
    assert sup[0] == 0.0 and con[0] == 0.0


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
    assert s.transitions == [] and set(s.held) == {1, 2}  # matched by neither, but both seen inside it


def test_dormant_masks_also_cover_and_new_mask_is_uncovered_part():
    pol = TrackingPolicy(tau_iou=0.7, min_new_area=4)
    pol.step(0, {}, props(LEFT))
    pol.step(1, {1: EMPTY}, props())  # DORMANT
    bigger = box(2, 10, 2, 24)  # LEFT + 14 new columns: 64 % uncovered -> a new object
    s = pol.step(2, {1: LEFT}, props(bigger))  # visible again: it covers, and is seen inside `bigger`
    assert s.new == {2: 0} and s.transitions == [(1, D, A)]
    assert np.array_equal(s.condition[2], bigger & ~LEFT)  # only the uncovered part
    assert s.masks.keys() == {1, 2}


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
    with pytest.raises(ConfigError, match="contradict_min"):
        TrackingPolicy(contradict_min=1.0)
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
@pytest.mark.parametrize("reid", [False, True])
def test_random_sequences_invariants(seed, reid):
    """Properties over random scripts: ids never reused, a TERMINATED object comes back only by
    re-identification (never without re-ID masks), only ACTIVE masks emitted, parts and unions of tracked masks
    never spawn, a visible object without proposals is never aged."""
    rng = np.random.default_rng(seed)
    pol = TrackingPolicy(tau_iou=0.6, tau_dorm=int(rng.integers(0, 3)), min_new_area=3, reid=reid)
    ever, terminated = set(), set()
    last: dict[int, np.ndarray] = {}  # last evidence mask of every object: the re-ID masks of this script
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
        cands = {i: last[i] for i in pol.reid_ids(propagated) if i in last and rng.random() < 0.5}
        s = pol.step(t, propagated, props(*(masks + traps)), candidates=cands)
        trap_idx = set(range(len(masks), len(masks) + len(traps)))
        assert not trap_idx & set(s.new.values()), "a part/union of tracked objects spawned an object"
        assert not set(s.new) & ever, "an id was reused"
        ever |= set(s.new)
        back = terminated & set(pol.live_ids())
        assert back <= set(s.revived), "a TERMINATED object came back without re-identification"
        assert reid or not back
        assert set(s.revived) <= set(cands)
        terminated = (terminated - back) | {i for i, tr in pol.tracks.items() if tr.state is T}
        assert set(s.masks) == set(pol.active_ids())
        assert all(pol.tracks[i].state is A for i in s.masks)
        assert set(s.remove) <= terminated
        if not masks and not traps:  # nothing proposed: visible objects are held, never aged
            assert all(pol.tracks[i].state is A for i, m in propagated.items() if m.any())
        last.update({i: m for i, m in s.masks.items()})


def test_known_mask_lets_an_object_grow_onto_new_surface():
    """Reprojection only knows surface seen before: a proposal that extends a tracked object onto newly
    visible pixels matches on the known part and re-conditions the object with the larger mask."""
    grown = box(2, 10, 2, 18)  # LEFT plus 8 newly visible columns: plain IoU 0.5
    known = np.zeros((H, W), bool)
    known[:, :10] = True
    plain = TrackingPolicy(tau_iou=0.7)
    plain.step(0, {}, props(LEFT))
    s = plain.step(1, {1: LEFT}, props(grown))
    assert s.matches == {} and s.rejected == {0: "part_or_union"} and 1 in s.held
    pol = TrackingPolicy(tau_iou=0.7)
    pol.step(0, {}, props(LEFT))
    s = pol.step(1, {1: LEFT}, props(grown), known)
    assert s.matches == {1: 0} and np.array_equal(s.condition[1], grown) and np.array_equal(s.masks[1], grown)


def test_matched_proposal_never_takes_a_neighbours_pixels():
    """A proposal that merges a tracked object with part of a tracked neighbour still matches the object (IoU
    > tau_iou); its re-conditioning mask leaves out what the neighbour holds."""
    pol = TrackingPolicy(tau_iou=0.6)
    pol.step(0, {}, props(LEFT, RIGHT))
    merged = LEFT | box(2, 10, 15, 17)  # LEFT + RIGHT's first two columns: IoU 64 / 80 with LEFT
    s = pol.step(1, {1: LEFT, 2: RIGHT}, props(merged))
    assert s.matches == {1: 0} and np.array_equal(s.condition[1], LEFT) and 2 in s.held
    assert not (s.masks[1] & s.masks[2]).any()


def test_held_object_grows_but_never_absorbs_an_entering_object():
    known = np.zeros((H, W), bool)
    known[:, :10] = True
    pol = TrackingPolicy(tau_iou=0.7, min_new_area=10)
    pol.step(0, {}, props(LEFT))
    top = box(2, 6, 2, 14)  # LEFT's top half continuing onto 4 unseen columns: a part of it, IoU 0.4
    s = pol.step(1, {1: LEFT}, props(top), known)
    assert s.matches == {} and 1 in s.held and np.array_equal(s.grow[1], box(2, 6, 10, 14))
    assert s.new == {} and np.array_equal(s.masks[1], LEFT | box(2, 6, 10, 14))
    # an object entering the view that touches LEFT with one seen column is not LEFT's new surface
    pol = TrackingPolicy(tau_iou=0.7, min_new_area=10)
    pol.step(0, {}, props(LEFT))
    entering = box(2, 10, 9, 25)
    s = pol.step(1, {1: LEFT}, props(entering), known)
    assert s.grow == {} and s.new == {2: 0} and np.array_equal(s.masks[1], LEFT)


def test_recondition_iou_keeps_the_propagated_mask_for_weak_matches():
    pol = TrackingPolicy(tau_iou=0.5, recondition_iou=0.9)
    pol.step(0, {}, props(LEFT))
    shifted = box(2, 10, 3, 11)  # IoU 7/9 = 0.78: matched, not re-conditioned
    s = pol.step(1, {1: LEFT}, props(shifted))
    assert s.matches == {1: 0} and s.condition == {} and np.array_equal(s.masks[1], LEFT)
    s = pol.step(2, {1: LEFT}, props(LEFT))
    assert s.condition.keys() == {1}


def test_matching_keeps_a_strong_pair_that_two_weak_pairs_outweigh():
    """Hungarian assignment over the pairs above tau_iou only: IoU 0.75 beats 0.30 + 0.50 (neither above 0.7)."""
    from gcseg.tracking.policy import _hungarian

    iou = np.array([[0.75, 0.30], [0.50, 0.0]])
    assert _hungarian(iou, 0.7) == [(0, 0, 0.75)]
    rng = np.random.default_rng(0)
    for _ in range(200):  # the total IoU of the kept pairs is the best over assignments of eligible pairs
        m = rng.random((3, 4))
        got = _hungarian(m, 0.5)
        assert all(v > 0.5 for _, _, v in got)
        import itertools

        best = max(sum(m[r, c] for r, c in zip(rows, cols) if m[r, c] > 0.5)
                   for rows in [range(3)] for cols in itertools.permutations(range(4), 3))
        assert sum(v for _, _, v in got) == pytest.approx(best)
