"""Tracking without the policy: the ablation that shows what Algorithm 1 itself adds (issue 17, item 4).

The same keyframe proposals and the same mask propagation as the tracked labels, but no object life cycle:
at every keyframe each (containment-filtered) proposal starts a new object, with no matching against the
propagated objects and no granularity gate, and every object of the previous keyframe ends there (it lives
exactly one keyframe window). The per-frame id maps are then lifted like the tracked ones, so the row differs
from the lift-only row by the policy alone. It is what the paper suggests as a check of the policy: propagation
without it gives consistent ids only within a window, and every keyframe re-labels the scene at whatever
granularity its proposals have.

:class:`NoPolicy` has the step interface of :class:`gcseg.tracking.policy.TrackingPolicy` (``tracks``,
``live_ids``, ``active_ids``, ``step``), so :func:`gcseg.tracking.run.track_scene` runs it unchanged.
:class:`KeyframeProposals` records the filtered proposals of a first tracking pass and replays them as a
proposer, so the proposer runs once per keyframe for both passes.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gcseg.errors import GcsegError
from gcseg.proposals.base import Proposals
from gcseg.scene import Frame, PointCloud, Scene
from gcseg.tracking.policy import ObjectState, StepResult, Track
from gcseg.tracking.propagators import Propagator


@dataclass
class NoPolicy:
    """Every keyframe's proposals become new ACTIVE objects; every object alive before it is TERMINATED there.
    Ids start at 1 and are never reused (as TrackingPolicy's)."""

    tracks: dict[int, Track] = field(default_factory=dict)
    _next_id: int = 1
    _last_frame: int = -1

    def live_ids(self) -> list[int]:
        return sorted(i for i, t in self.tracks.items() if t.alive)

    def active_ids(self) -> list[int]:
        return sorted(i for i, t in self.tracks.items() if t.state is ObjectState.ACTIVE)

    def step(self, frame_idx: int, propagated: Mapping[int, np.ndarray], proposals: Proposals,
             known: np.ndarray | None = None) -> StepResult:
        """Advance by one keyframe. `propagated` and `known` are accepted for the interface and ignored: the
        point of this variant is that nothing carries over a keyframe."""
        if frame_idx <= self._last_frame:
            raise ValueError(f"keyframes must increase: {frame_idx} after {self._last_frame}")
        self._last_frame = frame_idx
        transitions: list[tuple[int, ObjectState, ObjectState]] = []
        remove: list[int] = []
        for oid in self.live_ids():
            t = self.tracks[oid]
            transitions.append((oid, t.state, ObjectState.TERMINATED))
            t.state, t.ended_at = ObjectState.TERMINATED, frame_idx
            t.last_area, t.mask = t.area, None
            remove.append(oid)
        new: dict[int, int] = {}
        condition: dict[int, np.ndarray] = {}
        rejected: dict[int, str] = {}
        for k in range(len(proposals)):
            m = np.asarray(proposals.masks[k], bool)
            area = int(m.sum())
            if area == 0:
                rejected[k] = "small"
                continue
            oid = self._next_id
            self._next_id += 1
            self.tracks[oid] = Track(id=oid, born_at=frame_idx, mask=m.copy(), last_seen=frame_idx, last_area=area)
            new[oid] = k
            condition[oid] = self.tracks[oid].mask  # type: ignore[assignment]
        return StepResult(frame_idx=frame_idx, matches={}, match_iou={}, new=new, rejected=rejected,
                          transitions=transitions, condition=condition, remove=remove, masks=dict(condition))


class KeyframeProposals:
    """The filtered proposals of each keyframe of a tracking pass, kept compressed (bit-packed, zlib), replayed
    as a proposer for a second pass over the same keyframes.

    :meth:`record` is a ``track_scene`` on_keyframe callback; calling the object with a recorded frame returns
    that frame's proposals (the containment filter leaves them unchanged: filtering is idempotent)."""

    name = "replay"

    def __init__(self) -> None:
        self._store: dict[int, tuple[tuple[int, int, int], bytes, np.ndarray]] = {}

    def record(self, frame: Frame, props: Proposals, step: Any = None) -> None:
        bits = np.packbits(np.ascontiguousarray(props.masks, bool), axis=None)
        self._store[int(frame.index)] = (props.masks.shape, zlib.compress(bits.tobytes(), 6),
                                         np.asarray(props.scores, np.float32).copy())

    def __call__(self, frame: Frame) -> Proposals:
        if frame.index not in self._store:
            raise GcsegError(f"no recorded proposals for frame {frame.index}",
                             fix="replay only the keyframes of the pass that recorded them (same keyframe_stride)")
        shape, blob, scores = self._store[frame.index]
        n = int(np.prod(shape))
        masks = np.unpackbits(np.frombuffer(zlib.decompress(blob), np.uint8), count=n).astype(bool).reshape(shape)
        return Proposals(masks, scores.copy())

    def __len__(self) -> int:
        return len(self._store)

    def total_masks(self) -> int:
        return int(sum(shape[0] for shape, _, _ in self._store.values()))


def track_without_policy(scene: Scene, proposals: KeyframeProposals, propagator: Propagator, *,
                         keyframe_stride: int, tau_contain: float, min_area: int, lift: Any, cloud: PointCloud
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int | float]]:
    """Run :class:`NoPolicy` over `scene` with the recorded `proposals` and `propagator` (reset first), voting
    every frame's id map onto `cloud` as `sam2_track` does.

    lift: ``sam2_track``'s lifting settings (gcseg.tracking.run.LiftConfig or anything with association,
    max_dist, voxel, min_share, min_points, fine_share, every). Returns (labels int32 (N,), -1 = unlabelled;
    vote share of each point's label float32 (N,); votes per point int32 (N,); track statistics). Raises
    GcsegError when the scan needs more ids than an id map holds (every keyframe's proposals are new objects)."""
    from gcseg.lifting import VoteAccumulator
    from gcseg.tracking.run import MAX_ID, track_scene

    if proposals.total_masks() > MAX_ID:
        raise GcsegError(f"tracking without the policy needs {proposals.total_masks()} ids in {scene.scene_id}, "
                         f"more than an id map holds ({MAX_ID})",
                         fix="run the no-policy row on shorter scans or a larger keyframe_stride")
    acc = VoteAccumulator(cloud.coord, max_dist=lift.max_dist, voxel=lift.voxel, association=lift.association)
    every = max(1, int(getattr(lift, "every", 1)))

    def vote(frame: Frame, id_map: np.ndarray) -> None:
        if frame.index % every == 0:
            acc.add(frame, id_map)

    result = track_scene(scene, proposals, propagator, NoPolicy(), keyframe_stride=keyframe_stride,
                         tau_contain=tau_contain, min_area=min_area, save_every=max(scene.num_frames, 1),
                         on_frame=[vote])
    labels = acc.result(min_share=lift.min_share, min_points=lift.min_points, fine_share=lift.fine_share)
    return labels, acc.label_shares(labels).astype(np.float32), acc.point_votes(), result.stats
