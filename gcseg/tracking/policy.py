"""Algorithm 1 (reconstruction): the object life cycle of granularity-consistent tracking.

Independent of how masks are propagated between keyframes (depth reprojection or SAM2): at each keyframe the
policy receives the propagated masks of the tracked objects, the (containment-filtered) mask proposals of the
keyframe and, for objects that are not visible in propagation, their re-identification masks (``candidates``:
the reprojection backend renders the 3D model of a TERMINATED object, SAM2 carries an object's last mask to the
keyframe by depth and pose). It decides, in this order:

1. **Matches**: Hungarian assignment (scipy ``linear_sum_assignment``) on proposal x visible-track IoU, keeping
   pairs with IoU > ``tau_iou``. A matched object is ACTIVE with ``miss = 0`` and is re-conditioned with the
   proposal (``recondition``, ``recondition_iou``), less the pixels other tracked objects hold (their
   propagated masks, their matched proposals): a proposal that merges the object with a piece of a tracked
   neighbour still continues the object, but never hands it the neighbour's pixels.
2. **Re-identification** (``reid``), before any object is born: a proposal that the gate would let through
   (more than ``gate_uncovered`` of it and at least ``min_new_area`` pixels outside the tracked masks) is
   matched (Hungarian, IoU > ``tau_iou``) against the re-identification masks of DORMANT, invisible and
   TERMINATED objects; a match revives the old id (re-conditioned with the proposal). A re-identification mask
   that no proposal matches still revives its object when it is *supported* and not *contradicted* (below)
   and, like a birth, more than ``gate_uncovered`` of it and at least ``min_new_area`` pixels lie outside the
   tracked masks: the object is back, seen by the proposals at another granularity. A revived object keeps its
   id and granularity; ids are never reused. TERMINATED bounds the propagator's cost (the object leaves it),
   not identity.
3. **Ageing by evidence of absence**: an unmatched live object whose propagated mask is *visible* (at least
   ``min_visible_area`` pixels) and not *contradicted* by the proposals is *held*: it stays (or becomes again)
   ACTIVE with ``miss = 0``, under its id and granularity, and its propagated mask is emitted (it is not
   re-conditioned: the proposals show it at another granularity; with ``known`` pixels, the unknown pixels of
   proposals that continue it, i.e. its newly visible surface, are added: ``grow``). Only an object that is
   not visible, or that the proposals contradict, takes a miss: ACTIVE -> DORMANT on the first, DORMANT ->
   TERMINATED once ``miss > tau_dorm``.
4. **Births through the granularity gate**: an unmatched proposal that revived nothing becomes a new ACTIVE
   object only if the fraction of it not covered by tracked masks (visible propagated masks, matched proposals,
   revived masks and objects born earlier in this step, largest proposal first) exceeds ``gate_uncovered`` and
   the uncovered area is at least ``min_new_area``; the new object's mask is the uncovered part. A part of a
   tracked object or a union of tracked objects is (almost) fully covered, so it never spawns an object: that is
   what keeps granularity consistent.

**Supported and contradicted** (the paper leaves the rule open; docs/tracking.md gives the reasons). For a mask M
(a propagated or re-identification mask) and a proposal n with I = |n & M| > 0 (proposals restricted to the
``known`` pixels, as for matching):

* n is *compatible* with M if I > ``part_share`` |n| (n lies mostly on M: M itself or one of its parts) or
  I > ``part_share`` |M| (n holds most of M: M itself or a union of M with neighbours);
* otherwise n *crosses* M: it takes a minority of M and lies mostly elsewhere, i.e. it draws M's boundary
  through M's middle.

``support(M)`` is the fraction of M's pixels inside compatible proposals, ``conflict(M)`` the fraction inside
crossing proposals and no compatible one. M is *supported* if support >= ``support_min`` and *contradicted* if
conflict > ``contradict_min``. Pixel fractions, not proposal counts: a neighbour's proposal that bleeds a few
boundary pixels into M adds a few pixels of conflict, not a veto. A live object needs only to be visible and not
contradicted (its propagator followed it without a break, which is evidence of presence; proposals that say
nothing about it, e.g. a missed small object, are no evidence of absence); a re-identification mask, a
prediction from old evidence, must also be supported.

After the scan, tracks the keyframe proposals show as one object more often than apart are merged
(:mod:`gcseg.tracking.merge`): Algorithm 1 keeps the first-seen granularity, the merge lets later keyframes
overrule a first sight in parts.

method.md section 2 gives the provenance of each rule (SAM 3 ageing, AutoSeg-SAM2 gate: > 50 % uncovered).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from gcseg.errors import ConfigError
from gcseg.masks import mask_intersections, mask_iou
from gcseg.proposals.base import Proposals

_EVIDENCE_CHUNK = 32  # masks per matmul in mask_evidence: bounds its (chunk, H * W) float32 temporaries


class ObjectState(enum.Enum):
    ACTIVE = "active"  # seen at the last keyframe: its masks are emitted
    DORMANT = "dormant"  # not seen at 1..tau_dorm keyframes: still propagated, output suppressed
    TERMINATED = "terminated"  # not seen at more than tau_dorm keyframes: out of the propagator, revivable by re-ID


@dataclass
class Track:
    """One tracked object. ``mask`` is the last mask the object was (re)conditioned with or held at (its evidence)."""

    id: int
    born_at: int  # keyframe index (frame number) of its birth
    mask: np.ndarray | None  # bool (H, W): last evidence mask; None once TERMINATED (memory stays bounded)
    state: ObjectState = ObjectState.ACTIVE
    miss: int = 0  # consecutive keyframes without evidence of presence
    last_seen: int = 0  # frame number of the last keyframe it was seen (matched, held, revived or born)
    ended_at: int | None = None  # frame number at which it was last TERMINATED (None while alive)
    revivals: int = 0  # times it came back from TERMINATED by re-identification

    last_area: int = 0  # pixels of the last evidence mask

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
    held: dict[int, float] = field(default_factory=dict)  # unmatched but seen: id -> support of its mask
    revived: dict[int, int | None] = field(default_factory=dict)  # re-identified: id -> proposal (None: support)
    contradicted: list[int] = field(default_factory=list)  # visible but contradicted: took a miss
    grow: dict[int, np.ndarray] = field(default_factory=dict)  # held: id -> newly visible surface to add (known)


def mask_evidence(masks: np.ndarray, proposals: np.ndarray, part_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(support, conflict) of each mask (T, H, W) given proposals (K, H, W), float64 (T,) each: the fractions of
    the mask's pixels inside compatible and (only) inside crossing proposals (module docstring)."""
    support, conflict, _ = _evidence(masks, proposals, part_share)
    return support, conflict


def _evidence(masks: np.ndarray, proposals: np.ndarray, part_share: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`mask_evidence` plus the intersections |proposal_k & mask_t|, int64 (K, T)."""
    t, k = len(masks), len(proposals)
    support, conflict = np.zeros(t), np.zeros(t)
    if t == 0 or k == 0:
        return support, conflict, np.zeros((k, t), np.int64)
    flat_m = np.asarray(masks, bool).reshape(t, -1)
    flat_p = np.asarray(proposals, bool).reshape(k, -1)
    area = flat_m.sum(1)
    inter = mask_intersections(flat_p, flat_m)  # (K, T)
    p_area = flat_p.sum(1)
    compatible = (inter > 0) & ((inter > part_share * p_area[:, None]) | (inter > part_share * area[None, :]))
    crossing = (inter > 0) & ~compatible
    for s, m, (in_comp, in_cross) in _chunked_unions(flat_m, flat_p, compatible, crossing):
        n = np.maximum(area[s], 1)
        support[s] = (m & in_comp).sum(1) / n
        conflict[s] = (m & in_cross & ~in_comp).sum(1) / n
    return support, conflict, inter


def _chunked_unions(flat_m: np.ndarray, flat_p: np.ndarray, *selections: np.ndarray):
    """For chunks of masks: (slice, the chunk's masks, per selection (K, T) the union of the selected proposals
    of each mask as bool (chunk, H * W)); a float32 matmul per selection, chunked to bound memory."""
    pf = flat_p.astype(np.float32)
    for s in range(0, len(flat_m), _EVIDENCE_CHUNK):
        sl = slice(s, s + _EVIDENCE_CHUNK)
        yield sl, flat_m[sl], [(sel[:, sl].T.astype(np.float32) @ pf) > 0 for sel in selections]


def _hungarian(iou: np.ndarray, thresh: float) -> list[tuple[int, int, float]]:
    """(row, col, iou) of the maximum-IoU one-to-one assignment among the pairs with IoU > thresh.

    Pairs at or under `thresh` weigh 0 in the assignment: left in, two weak pairs whose IoUs add up to more than
    one strong pair would take its row and column, and the strong match would be lost when they are dropped."""
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-np.where(iou > thresh, iou, 0.0))
    return [(r, c, float(iou[r, c])) for r, c in zip(rows.tolist(), cols.tolist()) if iou[r, c] > thresh]


@dataclass
class TrackingPolicy:
    """The tracking state machine. Call :meth:`step` once per keyframe, in frame order.

    Args:
        tau_iou: a proposal continues (or re-identifies) an object if their IoU > tau_iou (method.md: 0.7-0.8).
        tau_dorm: a DORMANT object is TERMINATED once it missed more than tau_dorm keyframes (SAM 3: 3).
        gate_uncovered: an unmatched proposal spawns an object only if more than this fraction of it is not
            covered by tracked masks (AutoSeg-SAM2: 0.5).
        min_new_area: ... and if the uncovered part has at least this many pixels (AutoSeg-SAM2: 5000 px at
            full resolution; scale with the image).
        min_visible_area: a propagated mask with fewer pixels counts as absent (SAM2: empty = not visible).
        recondition: re-condition a matched object with the matched proposal, less the pixels other tracked
            objects hold (True), or keep its propagated mask (False).
        recondition_iou: ... only when the match's IoU is at least this (0 = every match; SAM 3's shipped
            configs reportedly re-condition only if IoU >= 0.8, method.md). A high value keeps a noisy proposal
            that barely passes tau_iou from overwriting the evidence, but also keeps the reprojection backend's
            masks from growing onto newly visible surface; on the synthetic scans 0 tracked better.
        part_share: a proposal is compatible with a mask if more than this share of it lies on the mask, or if it
            holds more than this share of the mask (module docstring).
        support_min: a re-identification mask is supported if compatible proposals cover at least this fraction.
        contradict_min: a mask is contradicted if crossing proposals (and no compatible one) cover more than
            this fraction of it.
        reid: re-identify DORMANT / TERMINATED objects from their re-identification masks (False: every object
            the gate lets through is new, and TERMINATED is final).
    """

    tau_iou: float = 0.7
    tau_dorm: int = 3
    gate_uncovered: float = 0.5
    min_new_area: int = 1
    min_visible_area: int = 1
    recondition: bool = True
    recondition_iou: float = 0.0
    part_share: float = 0.5
    support_min: float = 0.5
    contradict_min: float = 0.5
    reid: bool = True
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
        for key in ("part_share", "support_min", "contradict_min"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"{key} must be in [0, 1), got {getattr(self, key)}",
                                  fix=f"e.g. sam2_track.{key}: 0.5")

    # ------------------------------------------------------------------ queries
    def live_ids(self) -> list[int]:
        """ACTIVE and DORMANT ids (the ones the propagator must hold), ascending."""
        return sorted(i for i, t in self.tracks.items() if t.alive)

    def active_ids(self) -> list[int]:
        return sorted(i for i, t in self.tracks.items() if t.state is ObjectState.ACTIVE)

    def reid_ids(self, propagated: Mapping[int, np.ndarray]) -> list[int]:
        """Ids whose re-identification masks the next :meth:`step` can use: TERMINATED objects and live ones whose
        propagated mask is absent or under ``min_visible_area``; [] when ``reid`` is off."""
        if not self.reid:
            return []
        return sorted(i for i, t in self.tracks.items()
                      if not t.alive or i not in propagated or not self._visible(propagated[i]))

    def _visible(self, mask: np.ndarray) -> bool:
        return int(np.count_nonzero(mask)) >= self.min_visible_area

    # ------------------------------------------------------------------ the step
    def step(self, frame_idx: int, propagated: Mapping[int, np.ndarray], proposals: Proposals,
             known: np.ndarray | None = None, candidates: Mapping[int, np.ndarray] | None = None) -> StepResult:
        """Advance the state machine by one keyframe.

        Args:
            frame_idx: frame number of the keyframe (strictly increasing across calls).
            propagated: id -> bool (H, W) mask propagated to this keyframe, for ACTIVE/DORMANT ids (a missing id
                or an empty mask = not visible).
            proposals: the keyframe's mask proposals (already containment-filtered).
            known: optional bool (H, W): pixels the propagator has evidence about (reprojection: surface seen at
                an earlier keyframe). Matching IoU and evidence are then computed on the known pixels only, so a
                proposal that extends an object onto newly visible surface still matches it (and re-conditions it
                with the larger mask). None (SAM2, which segments in image space) = every pixel is known.
            candidates: id -> bool (H, W) re-identification mask for ids of :meth:`reid_ids` (others are
                ignored); None or {} = no re-identification at this keyframe.
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
        for oid, m in (candidates or {}).items():
            if oid not in self.tracks:
                raise ValueError(f"re-identification mask for unknown object {oid}")
            if m.shape != (h, w):
                raise ValueError(f"re-identification mask of object {oid} is {m.shape}, proposals are {(h, w)}")

        live = self.live_ids()
        vis = {i: np.asarray(propagated[i], bool) for i in live if i in propagated and self._visible(propagated[i])}
        vis_ids = sorted(vis)
        kn = None if known is None else np.asarray(known, bool)
        seen = proposals.masks if kn is None else proposals.masks & kn[None]
        n_prop = len(proposals)
        areas = proposals.masks.reshape(n_prop, -1).sum(1) if n_prop else np.zeros(0, np.int64)

        # --- 1. match (Hungarian on IoU, pairs above tau_iou only)
        matches: dict[int, int] = {}
        match_iou: dict[int, float] = {}
        if n_prop and vis_ids:
            for r, c, v in _hungarian(mask_iou(seen, np.stack([vis[i] for i in vis_ids])), self.tau_iou):
                matches[vis_ids[c]] = r
                match_iou[vis_ids[c]] = v
        matched_props = set(matches.values())
        evidence_of = self._match_evidence(matches, match_iou, vis, proposals.masks)

        # tracked pixels: unmatched visible objects' propagated masks, matched objects' new evidence
        covered = np.zeros((h, w), bool)
        for oid in vis_ids:
            covered |= evidence_of[oid] if oid in matches else vis[oid]

        # --- 2. re-identification of DORMANT / invisible / TERMINATED objects, before any birth
        revived: dict[int, int | None] = {}
        revive_mask: dict[int, np.ndarray] = {}
        if self.reid and candidates:
            cand_ids = [i for i in self.reid_ids(propagated) if i in candidates and np.any(candidates[i])]
            cand = {i: np.asarray(candidates[i], bool) for i in cand_ids}
            n_unc = (proposals.masks & ~covered[None]).reshape(n_prop, -1).sum(1) if n_prop else np.zeros(0, int)
            # a revival replaces a birth: only proposals the gate would let through can revive an object
            eligible = [k for k in range(n_prop) if k not in matched_props and areas[k] > 0
                        and n_unc[k] > self.gate_uncovered * areas[k] and n_unc[k] >= self.min_new_area]
            if eligible and cand_ids:
                cmasks = np.stack([cand[i] if kn is None else cand[i] & kn for i in cand_ids])
                for r, c, _ in _hungarian(mask_iou(seen[eligible], cmasks), self.tau_iou):
                    oid, k = cand_ids[c], eligible[r]
                    revived[oid] = k
                    revive_mask[oid] = proposals.masks[k].copy()
                    covered |= proposals.masks[k]
            rest = [i for i in cand_ids if i not in revived]
            if rest:
                sup, con = mask_evidence(np.stack([cand[i] for i in rest]), seen, self.part_share)
                for j in sorted(range(len(rest)), key=lambda j: (-sup[j], rest[j])):  # best supported first
                    oid = rest[j]
                    if sup[j] < self.support_min or con[j] > self.contradict_min:
                        continue
                    unc = cand[oid] & ~covered
                    c_unc = int(unc.sum())
                    if c_unc <= self.gate_uncovered * float(cand[oid].sum()) or c_unc < self.min_new_area:
                        continue  # mostly on tracked objects (two ids on one surface) or too small to be born
                    revived[oid] = None
                    revive_mask[oid] = unc
                    covered |= unc

        # --- 3. states: matched, revived, held (visible and not contradicted) or a miss
        unmatched_vis = [i for i in vis_ids if i not in matches]
        vis_stack = np.stack([vis[i] for i in unmatched_vis]) if unmatched_vis else np.zeros((0, h, w), bool)
        support, conflict, inter = _evidence(vis_stack, seen, self.part_share)
        evidence = {i: (float(s), float(c)) for i, s, c in zip(unmatched_vis, support, conflict)}
        growth = self._growth(vis_stack, unmatched_vis, inter, proposals.masks, seen, kn, areas)
        transitions: list[tuple[int, ObjectState, ObjectState]] = []
        condition: dict[int, np.ndarray] = {}
        remove: list[int] = []
        held: dict[int, float] = {}
        grow: dict[int, np.ndarray] = {}
        contradicted: list[int] = []
        for oid in sorted(set(live) | set(revived)):
            t = self.tracks[oid]
            before = t.state
            if oid in matches:
                t.state, t.miss, t.last_seen = ObjectState.ACTIVE, 0, frame_idx
                t.mask = evidence_of[oid]
                if self.recondition and match_iou[oid] >= self.recondition_iou:
                    condition[oid] = t.mask
            elif oid in revived:
                t.state, t.miss, t.last_seen, t.ended_at = ObjectState.ACTIVE, 0, frame_idx, None
                t.revivals += before is ObjectState.TERMINATED
                t.mask = revive_mask[oid]
                condition[oid] = t.mask  # a TERMINATED object re-enters the propagator here
            elif oid in evidence and evidence[oid][1] <= self.contradict_min:
                t.state, t.miss, t.last_seen = ObjectState.ACTIVE, 0, frame_idx
                t.mask = vis[oid].copy()  # seen at another granularity (or by the propagator alone): kept as is
                held[oid] = evidence[oid][0]
                if oid in growth:  # ... plus its newly visible surface
                    t.mask |= growth[oid]
                    grow[oid] = growth[oid]
                    covered |= growth[oid]
            else:
                if oid in evidence:
                    contradicted.append(oid)
                t.miss += 1
                if t.state is ObjectState.ACTIVE:
                    t.state = ObjectState.DORMANT
                if t.state is ObjectState.DORMANT and t.miss > self.tau_dorm:
                    t.state, t.ended_at = ObjectState.TERMINATED, frame_idx
                    t.last_area, t.mask = t.area, None
                    remove.append(oid)
            if t.mask is not None:
                t.last_area = int(t.mask.sum())
            if t.state is not before:
                transitions.append((oid, before, t.state))

        # --- 4. births through the granularity gate, largest unmatched proposal first (Segment3D keeps large masks)
        new: dict[int, int] = {}
        rejected: dict[int, str] = {}
        used = matched_props | {k for k in revived.values() if k is not None}
        order = sorted((k for k in range(n_prop) if k not in used), key=lambda k: (-areas[k], k))
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

        masks = {oid: self.tracks[oid].mask for oid in self.active_ids()}  # set at this step for every ACTIVE id
        return StepResult(frame_idx=frame_idx, matches=matches, match_iou=match_iou, new=new, rejected=rejected,
                          transitions=transitions, condition=dict(sorted(condition.items())), remove=remove,
                          masks=masks, held=held, revived=dict(sorted(revived.items())), contradicted=contradicted,
                          grow=grow)

    def _match_evidence(self, matches: dict[int, int], match_iou: dict[int, float], vis: dict[int, np.ndarray],
                        proposals: np.ndarray) -> dict[int, np.ndarray]:
        """A matched object's new evidence: its propagated mask (``recondition`` off or a weak match), else the
        matched proposal less the pixels other tracked objects hold (their propagated masks, their matched
        proposals), so a neighbour merged into the proposal is never absorbed."""
        out: dict[int, np.ndarray] = {}
        claims = np.zeros(proposals.shape[1:], np.int32)  # how many objects claim each pixel
        for i, m in vis.items():
            claims += (proposals[matches[i]] | m) if i in matches else m
        for oid, k in matches.items():
            if not self.recondition or match_iou[oid] < self.recondition_iou:
                out[oid] = vis[oid].copy()
                continue
            others = (claims - (proposals[k] | vis[oid])) > 0  # pixels some other object claims
            out[oid] = proposals[k] & ~others
        return out

    def _growth(self, masks: np.ndarray, ids: list[int], inter: np.ndarray, proposals: np.ndarray,
                seen: np.ndarray, known: np.ndarray | None, areas: np.ndarray) -> dict[int, np.ndarray]:
        """Newly visible surface of held objects: the unknown pixels of proposals that continue them. A proposal
        n continues mask M if its known part lies mostly on M (|n_known & M| > part_share |n_known|) and that
        overlap is a real share of M or of n (> part_share |M| or > part_share |n|): M itself, a part of M, or M
        with surface no keyframe has seen yet. Only unknown pixels are added, so boundary noise on seen surface
        never accumulates into the evidence. {} without ``known`` (every pixel is known)."""
        if known is None or not ids or not len(proposals):
            return {}
        unknown = proposals & ~known[None]
        if not unknown.any():
            return {}
        flat_m = masks.reshape(len(ids), -1)
        seen_area = seen.reshape(len(seen), -1).sum(1)
        m_area = flat_m.sum(1)
        ps = self.part_share
        src = ((inter > 0) & (inter > ps * seen_area[:, None])
               & ((inter > ps * m_area[None, :]) | (inter > ps * areas[:, None])))
        out: dict[int, np.ndarray] = {}
        for sl, m, (union,) in _chunked_unions(flat_m, unknown.reshape(len(unknown), -1), src):
            for j, oid in enumerate(ids[sl]):
                g = union[j] & ~m[j]
                if g.any():
                    out[oid] = g.reshape(known.shape)
        return out
