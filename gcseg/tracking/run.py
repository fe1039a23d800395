"""The tracking loop over one scan: keyframe proposals -> policy -> propagation -> per-frame id maps.

Frames are streamed: only the current window (keyframe .. next keyframe, ``keyframe_stride + 1`` frames) is in
memory; per-frame id maps are kept zlib-compressed (:class:`IdMapStack`) and written to HDF5 frame by frame.
Callers attach per-frame consumers (the 3D vote accumulator, consistency meters) through ``on_frame`` and
``on_keyframe``, so each frame is read from disk once.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gcseg.errors import GcsegError, InputError
from gcseg.lifting import LiftConfig, VoteAccumulator
from gcseg.masks import masks_to_id_map
from gcseg.proposals.base import Proposals
from gcseg.proposals.containment import containment_filter
from gcseg.scene import Frame, Scene
from gcseg.tracking.merge import UnionEvidence, relabel_id_map
from gcseg.tracking.policy import ObjectState, StepResult, TrackingPolicy
from gcseg.tracking.propagators import Propagator

MAX_ID = np.iinfo(np.uint16).max


class IdMapStack:
    """Per-frame uint16 id maps (0 = no object), zlib-compressed in memory; written to HDF5 frame by frame
    (``write_h5_dataset``, the streamed-dataset hook of :func:`gcseg.io.h5.write_h5`)."""

    def __init__(self, hw: tuple[int, int]):
        self.hw = (int(hw[0]), int(hw[1]))
        self.frames: list[int] = []
        self._blobs: list[bytes] = []

    def append(self, frame_idx: int, id_map: np.ndarray) -> None:
        if id_map.shape != self.hw or id_map.dtype != np.uint16:
            raise ValueError(f"id map must be uint16 {self.hw}, got {id_map.dtype} {id_map.shape}")
        self.frames.append(int(frame_idx))
        self._blobs.append(zlib.compress(np.ascontiguousarray(id_map).tobytes(), 6))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self._blobs[i]), np.uint16).reshape(self.hw)

    def relabel(self, alias: dict[int, int]) -> None:
        """Map every stored id through ``alias`` (tracks merged after tracking)."""
        if alias:
            self._blobs = [zlib.compress(np.ascontiguousarray(relabel_id_map(self[i], alias)).tobytes(), 6)
                           for i in range(len(self))]

    def nbytes_compressed(self) -> int:
        return sum(len(b) for b in self._blobs)

    def to_array(self) -> np.ndarray:
        """All maps as one (F, H, W) array (tests and small scans only)."""
        out = np.zeros((len(self), *self.hw), np.uint16)
        for i in range(len(self)):
            out[i] = self[i]
        return out

    def write_h5_dataset(self, group: Any, key: str) -> None:
        shape = (len(self), *self.hw)
        if len(self) == 0:
            group.create_dataset(key, shape=shape, dtype=np.uint16, track_times=False)
            return
        ds = group.create_dataset(key, shape=shape, dtype=np.uint16, chunks=(1, *self.hw), compression="gzip",
                                  compression_opts=4, shuffle=True, track_times=False)
        for i in range(len(self)):
            ds[i] = self[i]


def tracked_id_map(masks: Mapping[int, np.ndarray], hw: tuple[int, int]) -> np.ndarray:
    """uint16 id map of tracked objects (:func:`gcseg.masks.masks_to_id_map`: smaller masks on top, ties by id)."""
    if masks and max(masks) > MAX_ID:
        raise GcsegError(f"more than {MAX_ID} objects in one scan: id maps are uint16",
                         fix="raise sam2_track.min_new_area or tau_contain, or split the scan")
    return masks_to_id_map(masks, hw, dtype=np.uint16)


def proposals_to_id_map(proposals: Proposals) -> np.ndarray:
    """Per-keyframe labels with fresh ids 1..K (Stage 1 style: smaller masks painted over larger ones)."""
    return tracked_id_map({k + 1: proposals.masks[k] for k in range(len(proposals))}, proposals.masks.shape[1:])


def keyframe_indices(num_frames: int, stride: int) -> list[int]:
    """Keyframes 0, s, 2s, ... (the last window runs to the scan's last frame)."""
    return list(range(0, num_frames, stride))


@dataclass
class TrackResult:
    scene_id: str
    id_maps: IdMapStack  # per saved frame
    keyframes: list[int]
    stats: dict[str, int | float]  # deterministic: goes into artifacts and metrics
    timing: dict[str, float] = field(default_factory=dict)  # seconds per phase (benchmarks only; not written)

    @property
    def frames(self) -> np.ndarray:
        return np.asarray(self.id_maps.frames, np.int32)


def _filter(proposals: Proposals, tau_contain: float, min_area: int, frame: Frame) -> Proposals:
    if proposals.masks.shape[1:] != frame.hw:
        raise InputError(f"proposals are {proposals.masks.shape[1:]} but frame {frame.index} is {frame.hw}",
                         fix="the proposer must return masks at the depth resolution")
    keep = np.sort(containment_filter(proposals.masks, proposals.scores, tau_contain, min_area))
    return Proposals(proposals.masks[keep], proposals.scores[keep])


def track_scene(scene: Scene, proposer: Callable[[Frame], Proposals], propagator: Propagator,
                policy: TrackingPolicy, *, keyframe_stride: int, tau_contain: float, min_area: int = 0,
                save_every: int = 1,
                on_frame: Iterable[Callable[[Frame, np.ndarray], None]] = (),
                on_keyframe: Iterable[Callable[[Frame, Proposals, StepResult], None]] = (),
                progress: bool = False) -> TrackResult:
    """Track objects through `scene` (Algorithm 1) and return per-frame id maps and track statistics.

    Every frame gets an id map of the ACTIVE objects (keyframes: after the policy step; other frames: the
    propagated masks of the objects ACTIVE at the previous keyframe). ``on_frame`` callbacks receive every
    frame with its id map; maps of frames with ``index % save_every == 0`` are kept in the result.
    ``on_keyframe`` callbacks receive each keyframe with its containment-filtered proposals and the step.
    """
    if scene.num_frames < 1:
        raise InputError(f"scene {scene.scene_id} has no frames", path=scene.root or None,
                         fix="check the scan's color/, depth/ and pose/ folders")
    if keyframe_stride < 1 or save_every < 1:
        raise ValueError("keyframe_stride and save_every must be >= 1")
    on_frame, on_keyframe = list(on_frame), list(on_keyframe)
    hw = tuple(scene.image_size)
    id_maps = IdMapStack(hw)  # type: ignore[arg-type]
    keyframes = keyframe_indices(scene.num_frames, keyframe_stride)
    propagator.reset()
    timing = {"propose_s": 0.0, "policy_s": 0.0, "propagate_s": 0.0}
    appearances: dict[int, int] = {}
    counts = {"proposals": 0, "matched": 0, "rejected_part_or_union": 0, "rejected_small": 0,
              "dormant_events": 0, "reactivations": 0, "held": 0, "extended": 0, "contradicted": 0,
              "reidentified": 0, "revived_terminated": 0}

    def emit(frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        if frame.hw != hw:
            raise InputError(f"frame {frame.index} is {frame.hw}, the scene is {hw}",
                             fix="all frames of a scan must have the same depth resolution")
        id_map = tracked_id_map(masks, hw)  # type: ignore[arg-type]
        for oid, m in masks.items():
            if m.any():
                appearances[oid] = appearances.get(oid, 0) + 1
        if frame.index % save_every == 0:
            id_maps.append(frame.index, id_map)
        for cb in on_frame:
            cb(frame, id_map)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=scene.num_frames, desc=f"track {scene.scene_id}", unit="frame")
    propagated: dict[int, np.ndarray] = {}
    frame = scene.frame(0)
    for k, t in enumerate(keyframes):
        t0 = time.perf_counter()
        props = _filter(proposer(frame), tau_contain, min_area, frame)
        t1 = time.perf_counter()
        known = propagator.known(frame) if k > 0 else None
        live = {i: m for i, m in propagated.items() if policy.tracks[i].alive}
        # re-identification masks for the objects the policy may revive (a policy without re-identification,
        # e.g. no_policy.NoPolicy, has no reid_ids and takes no candidates)
        reid = policy.reid_ids(live) if k > 0 and hasattr(policy, "reid_ids") else []
        candidates = propagator.candidates(frame, reid) if reid else {}
        step = (policy.step(t, live, props, known, candidates) if candidates
                else policy.step(t, live, props, known))
        t2 = time.perf_counter()
        timing["propose_s"] += t1 - t0
        timing["policy_s"] += t2 - t1
        counts["proposals"] += len(props)
        counts["matched"] += len(step.matches)
        counts["rejected_part_or_union"] += sum(r == "part_or_union" for r in step.rejected.values())
        counts["rejected_small"] += sum(r == "small" for r in step.rejected.values())
        counts["held"] += len(step.held)
        counts["extended"] += len(step.grow)
        counts["contradicted"] += len(step.contradicted)
        counts["reidentified"] += len(step.revived)
        for _, a, b in step.transitions:
            counts["dormant_events"] += a is ObjectState.ACTIVE and b is ObjectState.DORMANT
            counts["reactivations"] += a is ObjectState.DORMANT and b is ObjectState.ACTIVE
            counts["revived_terminated"] += a is ObjectState.TERMINATED and b is ObjectState.ACTIVE
        propagator.remove(step.remove, keep=bool(getattr(policy, "reid", False)))  # re-ID models only if used
        propagator.condition(frame, step.condition)
        if step.grow:
            propagator.extend(frame, step.grow)
        emit(frame, step.masks)
        for cb in on_keyframe:
            cb(frame, props, step)
        if bar is not None:
            bar.update(1)

        end = keyframes[k + 1] if k + 1 < len(keyframes) else scene.num_frames - 1
        window = [frame] + [scene.frame(i) for i in range(t + 1, end + 1)]
        active = set(policy.active_ids())
        propagated = {}
        t3 = time.perf_counter()
        stream = propagator.propagate(window)
        n_out = 0
        try:
            for j, masks in enumerate(stream):
                f = window[j + 1]
                n_out += 1
                if f.index == end and k + 1 < len(keyframes):
                    propagated = masks  # evidence for the next keyframe's step (emitted after that step)
                else:
                    emit(f, {i: m for i, m in masks.items() if i in active})
                    if bar is not None:
                        bar.update(1)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # release a backend's per-window state even on error
        if n_out != len(window) - 1:
            raise RuntimeError(f"{propagator.name} returned {n_out} frames for a window of {len(window) - 1}")
        timing["propagate_s"] += time.perf_counter() - t3
        frame = window[-1]
    if bar is not None:
        bar.close()

    tracks = policy.tracks.values()
    lengths = [appearances.get(t.id, 0) for t in tracks]
    stats: dict[str, int | float] = {
        "frames": scene.num_frames,
        "keyframes": len(keyframes),
        "objects_created": len(policy.tracks),
        "objects_terminated": sum(t.state is ObjectState.TERMINATED for t in tracks),
        "active_at_end": sum(t.state is ObjectState.ACTIVE for t in tracks),
        "dormant_at_end": sum(t.state is ObjectState.DORMANT for t in tracks),
        "mean_track_length_frames": float(np.mean(lengths)) if lengths else 0.0,
        **counts,
    }
    return TrackResult(scene_id=scene.scene_id, id_maps=id_maps, keyframes=keyframes, stats=stats, timing=timing)


def track_and_lift(scene: Scene, proposer: Callable[[Frame], Proposals], propagator: Propagator,
                   policy: TrackingPolicy, *, keyframe_stride: int, tau_contain: float, min_area: int = 0,
                   save_every: int = 1, lift: LiftConfig | None = None, consistency_iou: float = 0.5,
                   progress: bool = False, cloud: Any = None,
                   keyframe_hooks: Iterable[Callable[[Frame, Proposals, StepResult], None]] = (),
                   merge: Any = None,
                   ) -> tuple[TrackResult, Any, np.ndarray, np.ndarray, np.ndarray,
                              dict[str, dict[str, float | int]]]:
    """Track a scene, vote the per-frame id maps onto its reference cloud and measure temporal consistency.

    Returns (track result, reference PointCloud, labels int32 (N,) with -1 = unlabelled, vote shares float32
    (N,), votes int32 (N,), consistency) where a point's share is the fraction of its votes that went to its label
    and votes its number of votes (together the lift-only row's confidence) and consistency = {"tracked": all frames, "tracked_keyframes": tracked ids on keyframes,
    "stage1_keyframes": per-keyframe proposals with fresh ids} (empty summaries when the scene has no per-frame
    GT). `cloud`: the reference cloud if the caller has read it already (else read or fused here);
    `keyframe_hooks`: more track_scene on_keyframe callbacks (diagnostics, proposal recording). `merge`: None, or
    settings with ``min_joined``, ``ratio``, ``union_cover``, ``separate_share`` (``sam2_track.merge``): tracks the
    keyframe proposals join more often than they separate are merged after tracking (gcseg.tracking.merge), in
    the votes, the id maps and the consistency figures alike; ``stats["merged_tracks"]`` counts merged ids.
    """
    from gcseg.tracking.consistency import ConsistencyMeter

    lift = lift or LiftConfig()
    cloud = cloud if cloud is not None else scene.reference()
    if cloud is None:
        from gcseg.readers.fusion import fuse_reference

        cloud = fuse_reference(scene)
    if len(cloud) == 0:
        raise InputError(f"scene {scene.scene_id} has an empty reference cloud", path=scene.root or None,
                         fix="the scene needs a mesh, reference.ply or valid depth to fuse")
    acc = VoteAccumulator(cloud.coord, max_dist=lift.max_dist, voxel=lift.voxel, association=lift.association)
    tracked, tracked_kf, stage1 = (ConsistencyMeter(iou_thresh=consistency_iou) for _ in range(3))
    evidence = None
    if merge is not None:
        evidence = UnionEvidence(part_share=policy.part_share, union_cover=merge.union_cover,
                                 separate_share=merge.separate_share)
        keyframe_hooks = [*keyframe_hooks, evidence.observe]

    def on_frame(frame: Frame, id_map: np.ndarray) -> None:
        if frame.index % max(1, lift.every) == 0:
            acc.add(frame, id_map)
        tracked.add(frame, id_map)

    def on_keyframe(frame: Frame, props: Proposals, step: StepResult) -> None:
        stage1.add(frame, proposals_to_id_map(props), namespace=frame.index)
        tracked_kf.add(frame, tracked_id_map(step.masks, frame.hw))  # = the id map emitted for this keyframe

    result = track_scene(scene, proposer, propagator, policy, keyframe_stride=keyframe_stride,
                         tau_contain=tau_contain, min_area=min_area, save_every=save_every,
                         on_frame=[on_frame], on_keyframe=[on_keyframe, *keyframe_hooks], progress=progress)
    if evidence is not None:
        alias = evidence.aliases(min_joined=merge.min_joined, ratio=merge.ratio)
        acc.relabel(alias)
        tracked.relabel(alias)
        tracked_kf.relabel(alias)
        result.id_maps.relabel(alias)
        result.stats["merged_tracks"] = len(alias)
    labels = acc.result(min_share=lift.min_share, min_points=lift.min_points, fine_share=lift.fine_share)
    shares = acc.label_shares(labels).astype(np.float32)
    votes = acc.point_votes()
    summary = {"tracked": tracked.summary(), "tracked_keyframes": tracked_kf.summary(),
               "stage1_keyframes": stage1.summary()}
    return result, cloud, labels, shares, votes, summary
