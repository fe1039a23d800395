"""Algorithm 1 (reconstruction): the object life cycle of granularity-consistent tracking.

Independent of how masks are propagated between keyframes (depth reprojection or SAM2): at each keyframe the
policy receives the propagated masks of the tracked objects and the (containment-filtered) mask proposals of the
keyframe, and decides

* matches: Hungarian assignment (scipy ``linear_sum_assignment``) on proposal x track IoU, keeping pairs with
  IoU > ``tau_iou``; a matched object becomes ACTIVE with ``miss = 0`` (DORMANT -> ACTIVE);
* ageing: an unmatched ACTIVE/DORMANT object gets ``miss += 1``; ACTIVE -> DORMANT on the first miss,
  DORMANT -> TERMINATED once ``miss > tau_dorm``; TERMINATED objects never come back and ids are never reused;
* births through the granularity gate: an unmatched proposal becomes a new ACTIVE object only if the fraction
  of it not covered by any tracked mask (propagated ACTIVE/DORMANT masks, matched proposals and objects born
  earlier in this step, largest proposal first) exceeds ``gate_uncovered`` and the uncovered area is at least
  ``min_new_area``; the new object's mask is the uncovered part. A part of a tracked object or a union of tracked
  objects is (almost) fully covered, so it never spawns an object: that is what keeps granularity consistent.

method.md section 2 gives the provenance of each rule (SAM 3 ageing, AutoSeg-SAM2 gate: > 50 % uncovered).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from gcseg.errors import ConfigError
from gcseg.proposals.base import Proposals


class ObjectState(enum.Enum):
    ACTIVE = "active"  # matched at the last keyframe: its masks are emitted
    DORMANT = "dormant"  # missed 1..tau_dorm keyframes: still propagated, output suppressed
    TERMINATED = "terminated"  # missed more than tau_dorm keyframes: removed for good


@dataclass
class Track:
    """One tracked object. ``mask`` is the last mask the object was (re)conditioned with (its evidence)."""

    id: int
    born_at: int  # keyframe index (frame number) of its birth
    mask: np.ndarray | None  # bool (H, W): last conditioning mask; None once TERMINATED (memory stays bounded)
    state: ObjectState = ObjectState.ACTIVE
    miss: int = 0  # consecutive keyframes without a matching proposal
    last_seen: int = 0  # frame number of the last match (or birth)
    ended_at: int | None = None  # frame number at which it was TERMINATED

    last_area: int = 0  # pixels of the last conditioning mask

    @property
    def area(self) -> int:
        return self.last_area if self.mask is None else int(self.mask.sum())

    @property
    def alive(self) -> bool:
        return self.state is not ObjectState.TERMINATED


@dataclass(frozen=True)
class StepResult:
    """What one keyframe changed. Masks are bool (H, W) at that keyframe."""

    frame_idx: int
    matches: dict[int, int]  # object id -> proposal index
    match_iou: dict[int, float]  # object id -> IoU of its match
    new: dict[int, int]  # new object id -> proposal index it was born from
    rejected: dict[int, str]  # proposal index -> why it spawned nothing ("part_or_union", "small")
    transitions: list[tuple[int, ObjectState, ObjectState]]  # (id, from, to), sorted by id
    condition: dict[int, np.ndarray]  # id -> mask to (re)condition the propagator with at this keyframe
    remove: list[int]  # ids TERMINATED now: remove them from the propagator
    masks: dict[int, np.ndarray]  # ACTIVE objects' masks at this keyframe (the only masks emitted)


@dataclass
class TrackingPolicy:
    """The tracking state machine. Call :meth:`step` once per keyframe, in frame order.

    Args:
        tau_iou: a proposal continues an object if their IoU > tau_iou (method.md: 0.7-0.8).
        tau_dorm: a DORMANT object is TERMINATED once it missed more than tau_dorm keyframes (SAM 3: 3).
        gate_uncovered: an unmatched proposal spawns an object only if more than this fraction of it is not
            covered by tracked masks (AutoSeg-SAM2: 0.5).
        min_new_area: ... and if the uncovered part has at least this many pixels (AutoSeg-SAM2: 5000 px at
            full resolution; scale with the image).
        min_visible_area: a propagated mask with fewer pixels counts as absent (SAM2: empty = not visible).
        recondition: re-condition a matched object with the matched proposal (True) or keep its propagated
            mask (False).
        recondition_iou: ... only when the match's IoU is at least this (0 = every match; SAM 3's shipped
            configs reportedly re-condition only if IoU >= 0.8, method.md). A high value keeps a noisy proposal
            that barely passes tau_iou from overwriting the evidence, but also keeps the reprojection backend's
            masks from growing onto newly visible surface; on the synthetic scans 0 tracked better.
    """

    tau_iou: float = 0.7
    tau_dorm: int = 3
    gate_uncovered: float = 0.5
    min_new_area: int = 1
    min_visible_area: int = 1
    recondition: bool = True
    recondition_iou: float = 0.0
    tracks: dict[int, Track] = field(default_factory=dict)
    _next_id: int = 1  # ids start at 1 so that 0 means "no object" in id maps
    _last_frame: int = -1

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau_iou < 1.0:
            raise ConfigError(f"tau_iou must be in [0, 1), got {self.tau_iou}", fix="e.g. tau_iou: 0.7")
        if self.tau_dorm < 0:
            raise ConfigError(f"tau_dorm must be >= 0, got {self.tau_dorm}", fix="e.g. tau_dorm: 3")
        if not 0.0 <= self.gate_uncovered < 1.0:
            raise ConfigError(f"gate_uncovered must be in [0, 1), got {self.gate_uncovered}",
                              fix="e.g. sam2_track.gate_uncovered: 0.5")
        if self.min_new_area < 1 or self.min_visible_area < 1:
            raise ConfigError("min_new_area and min_visible_area must be >= 1 pixel", fix="e.g. min_new_area: 50")

    # ------------------------------------------------------------------ queries
    def live_ids(self) -> list[int]:
        """ACTIVE and DORMANT ids (the ones the propagator must hold), ascending."""
        return sorted(i for i, t in self.tracks.items() if t.alive)

    def active_ids(self) -> list[int]:
        return sorted(i for i, t in self.tracks.items() if t.state is ObjectState.ACTIVE)

    # ------------------------------------------------------------------ the step
    def step(self, frame_idx: int, propagated: Mapping[int, np.ndarray], proposals: Proposals,
             known: np.ndarray | None = None) -> StepResult:
        """Advance the state machine by one keyframe.

        Args:
            frame_idx: frame number of the keyframe (strictly increasing across calls).
            propagated: id -> bool (H, W) mask propagated to this keyframe, for ACTIVE/DORMANT ids (a missing id
                or an empty mask = not visible).
            proposals: the keyframe's mask proposals (already containment-filtered).
            known: optional bool (H, W): pixels the propagator has evidence about (reprojection: surface seen at
                an earlier keyframe). Matching IoU is then computed on the known pixels only, so a proposal that
                extends an object onto newly visible surface still matches it (and re-conditions it with the
                larger mask). None (SAM2, which segments in image space) = every pixel is known.
        """
        if frame_idx <= self._last_frame:
            raise ValueError(f"keyframes must increase: {frame_idx} after {self._last_frame}")
        self._last_frame = frame_idx
        h, w = proposals.masks.shape[1:]
        for oid, m in propagated.items():
            if oid not in self.tracks or not self.tracks[oid].alive:
                raise ValueError(f"propagated mask for unknown or terminated object {oid}")
            if m.shape != (h, w):
                raise ValueError(f"propagated mask of object {oid} is {m.shape}, proposals are {(h, w)}")

        live = self.live_ids()
        vis_ids = [i for i in live if i in propagated and int(propagated[i].sum()) >= self.min_visible_area]
        vis = {i: np.asarray(propagated[i], bool) for i in vis_ids}

        # --- match (Hungarian on IoU, pairs above tau_iou only)
        matches: dict[int, int] = {}
        match_iou: dict[int, float] = {}
        if len(proposals) and vis_ids:
            seen = proposals.masks if known is None else proposals.masks & np.asarray(known, bool)[None]
            iou = mask_iou(seen, np.stack([vis[i] for i in vis_ids]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows.tolist(), cols.tolist()):
                if iou[r, c] > self.tau_iou:
                    matches[vis_ids[c]] = r
                    match_iou[vis_ids[c]] = float(iou[r, c])

        transitions: list[tuple[int, ObjectState, ObjectState]] = []
        condition: dict[int, np.ndarray] = {}
        remove: list[int] = []
        for oid in live:
            t = self.tracks[oid]
            before = t.state
            if oid in matches:
                t.state, t.miss, t.last_seen = ObjectState.ACTIVE, 0, frame_idx
                if self.recondition and match_iou[oid] >= self.recondition_iou:
                    t.mask = proposals.masks[matches[oid]].copy()
                    condition[oid] = t.mask
                else:
                    t.mask = vis[oid].copy()  # the propagated mask stays the evidence
                t.last_area = int(t.mask.sum())
            else:
                t.miss += 1
                if t.state is ObjectState.ACTIVE:
                    t.state = ObjectState.DORMANT
                if t.state is ObjectState.DORMANT and t.miss > self.tau_dorm:
                    t.state, t.ended_at = ObjectState.TERMINATED, frame_idx
                    t.last_area, t.mask = t.area, None
                    remove.append(oid)
            if t.state is not before:
                transitions.append((oid, before, t.state))

        # --- births through the granularity gate, largest unmatched proposal first (Segment3D keeps large masks)
        covered = np.zeros((h, w), bool)
        for oid in vis_ids:
            covered |= vis[oid]
        for oid in matches:
            covered |= self.tracks[oid].mask  # type: ignore[operator]  # matched tracks are alive
        new: dict[int, int] = {}
        rejected: dict[int, str] = {}
        matched_props = set(matches.values())
        areas = proposals.masks.reshape(len(proposals), -1).sum(1) if len(proposals) else np.zeros(0, int)
        order = sorted((k for k in range(len(proposals)) if k not in matched_props), key=lambda k: (-areas[k], k))
        for k in order:
            m = proposals.masks[k]
            if areas[k] == 0:
                rejected[k] = "small"
                continue
            uncovered = m & ~covered
            n_unc = int(uncovered.sum())
            if n_unc / float(areas[k]) <= self.gate_uncovered:
                rejected[k] = "part_or_union"
                continue
            if n_unc < self.min_new_area:
                rejected[k] = "small"
                continue
            oid = self._next_id
            self._next_id += 1
            self.tracks[oid] = Track(id=oid, born_at=frame_idx, mask=uncovered, last_seen=frame_idx, last_area=n_unc)
            new[oid] = k
            condition[oid] = uncovered
            covered |= uncovered

        masks = {oid: (self.tracks[oid].mask if oid in condition else vis[oid])
                 for oid in self.active_ids()}
        return StepResult(frame_idx=frame_idx, matches=matches, match_iou=match_iou, new=new, rejected=rejected,
                          transitions=transitions, condition=dict(sorted(condition.items())), remove=remove,
                          masks=masks)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between bool masks a (K, H, W) and b (T, H, W) -> float64 (K, T); 0 where both are empty."""
    fa = a.reshape(a.shape[0], -1).astype(np.float32)
    fb = b.reshape(b.shape[0], -1).astype(np.float32)
    inter = fa @ fb.T  # exact: counts < 2**24 for any image up to 16 Mpx
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float64)
