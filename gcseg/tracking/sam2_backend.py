"""Mask propagation with the SAM2 video predictor (facebookresearch/sam2 1.1.0, ``SAM2VideoPredictor``).

**One inference state for the whole scan**, so that an object's identity and memory survive window
boundaries. SAM2's ``init_state`` loads every frame of a video folder up front; instead the state is built once
per scan (the same keys ``init_state`` creates) over a frame store that holds only the current window (keyframe
t_k .. next keyframe t_{k+1}), preprocessed exactly as SAM2's loader does (resize to ``image_size``^2, /255,
ImageNet mean / std). Per window: TERMINATED objects are removed (``remove_object``: this is what bounds SAM2's
cost), new and re-conditioned objects get ``add_new_mask`` on t_k (a conditioning frame: the model is built with
``add_all_frames_to_correct_as_cond``, so a re-conditioning on an already tracked frame is a conditioning frame,
not a one-frame correction), then ``propagate_in_video(start_frame_idx=t_k + 1)`` tracks every held object
through the window with its memory bank from the previous windows: its conditioning frames and its recent
frames, exactly as inside one long video (the frame t_k itself was tracked at the end of the previous window).

Memory stays bounded whatever the scan length: after each window every object keeps at most
``max_cond_frames`` conditioning outputs (the most recent; SAM2 would attend to all of them), the full outputs
(mask memory features) of the last ``num_maskmem`` frames its memory attention reads, and only the object
pointers of the last ``max_obj_ptrs_in_encoder`` frames; mask inputs are dropped once encoded.

Re-identification: SAM2's memory re-acquires an object that reappears while it is held; for a TERMINATED object
(no longer in the state) and for a held one SAM2 has lost, :meth:`Sam2Propagator.candidates` carries the
object's last conditioning mask to the keyframe by depth and pose (:class:`gcseg.tracking.reprojection.CarriedMasks`),
which the policy matches against the proposals.

Weights: ``config`` is a Hydra config name inside the sam2 package (``configs/sam2.1/sam2.1_hiera_t.yaml``),
``checkpoint`` a file path; the literal ``random-init-for-tests`` builds the model with random weights (tests and
benchmarks only: its masks mean nothing). ``import sam2`` initialises Hydra globally, so it is imported lazily.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gcseg.errors import ConfigError, InputError
from gcseg.scene import Frame
from gcseg.tracking.reprojection import CarriedMasks

RANDOM_INIT = "random-init-for-tests"
CHECKPOINT_HELP = (
    "download sam2.1_hiera_tiny.pt from https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
    "sam2.1_hiera_tiny.pt into data/weights/, track it with `dvc add data/weights/sam2.1_hiera_tiny.pt` "
    "(or `dvc import-url <URL> data/weights/`), set sam2_track.sam2.checkpoint to that path; or run without "
    "weights: `dvc exp run -S sam2_track.backend=reprojection`"
)


def check_checkpoint(checkpoint: str) -> Path | None:
    """The checkpoint path, or None for random test weights; InputError (with where to get it) if missing."""
    if checkpoint == RANDOM_INIT:
        return None
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError("SAM2 checkpoint not found", path=path, fix=CHECKPOINT_HELP)
    return path


def build_video_predictor(config: str, checkpoint: str, image_size: int, device: str = "cpu", seed: int = 0) -> Any:
    """``build_sam2_video_predictor`` with post-processing off (it needs the CUDA extension) and the image size
    overridden (``++model.image_size``); random weights only for ``checkpoint == RANDOM_INIT``."""
    ckpt = check_checkpoint(checkpoint)
    if image_size % 16 != 0 or image_size < 64:
        raise ConfigError(f"sam2.image_size must be a multiple of 16 and >= 64, got {image_size}",
                          fix="use 1024 (SAM2's native size) or e.g. 256 for tests")
    import torch

    from gcseg.errors import GcsegError

    try:
        from sam2.build_sam import build_sam2_video_predictor  # lazy: initialises Hydra globally
    except ImportError as exc:
        raise GcsegError(f"sam2 is not installed ({exc})",
                         fix="SAM2_BUILD_CUDA=0 pip install --no-deps --no-build-isolation sam2==1.1.0") from exc
    torch.manual_seed(seed)  # random-init weights are then reproducible
    try:
        # every mask we add is a conditioning frame, also on a frame SAM2 already tracked (a re-conditioning)
        return build_sam2_video_predictor(config, None if ckpt is None else str(ckpt), device=device,
                                          apply_postprocessing=False,
                                          hydra_overrides_extra=[f"++model.image_size={int(image_size)}",
                                                                 "++model.add_all_frames_to_correct_as_cond=true"])
    except Exception as exc:  # hydra MissingConfigException, strict checkpoint loading (RuntimeError)
        name = type(exc).__name__
        if "MissingConfig" in name:
            raise ConfigError(f"sam2 config {config!r} not found in the sam2 package", fix=(
                "use a config name such as configs/sam2.1/sam2.1_hiera_t.yaml (a name, not a path)")) from exc
        if ckpt is not None:
            raise InputError(f"SAM2 checkpoint does not fit config {config!r} ({name}: {exc})", path=ckpt,
                             fix="use the checkpoint that matches the config (tiny <-> sam2.1_hiera_t.yaml)") from exc
        raise


IMG_MEAN = (0.485, 0.456, 0.406)  # sam2.utils.misc.load_video_frames
IMG_STD = (0.229, 0.224, 0.225)


class FrameStore:
    """The frames a persistent SAM2 inference state can read (``state["images"][i]``): the current window only,
    each preprocessed as SAM2's video loader does. SAM2 reads a frame's image only to track it or to encode a
    mask added on it, both inside the current window; earlier frames live on as memory features."""

    def __init__(self, image_size: int):
        self.image_size = int(image_size)
        self.num_frames = 0
        self._frames: dict[int, Any] = {}

    def set_window(self, frames: Sequence[Frame]) -> None:
        old, self._frames = self._frames, {}
        for f in frames:
            self._frames[f.index] = old[f.index] if f.index in old else self._prepare(f.color)
        self.num_frames = max(self.num_frames, frames[-1].index + 1)

    def _prepare(self, color: np.ndarray) -> Any:
        import torch

        img = Image.fromarray(np.ascontiguousarray(color)).convert("RGB").resize((self.image_size, self.image_size))
        x = torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(IMG_MEAN, dtype=torch.float32)[:, None, None]
        std = torch.tensor(IMG_STD, dtype=torch.float32)[:, None, None]
        return (x - mean) / std

    def __getitem__(self, index: int) -> Any:
        try:
            return self._frames[int(index)]
        except KeyError:
            raise RuntimeError(f"SAM2 read frame {index} outside the current window {sorted(self._frames)}") from None

    def __len__(self) -> int:
        return self.num_frames

    def indices(self) -> list[int]:
        return sorted(self._frames)


def new_inference_state(images: FrameStore, hw: tuple[int, int], device: Any) -> dict[str, Any]:
    """The dict ``SAM2VideoPredictor.init_state`` (sam2 1.1.0) builds, over a :class:`FrameStore` instead of a
    folder loaded whole; video and state offloaded to CPU memory."""
    import torch

    return {
        "images": images, "num_frames": len(images), "offload_video_to_cpu": True, "offload_state_to_cpu": True,
        "video_height": int(hw[0]), "video_width": int(hw[1]), "device": device,
        "storage_device": torch.device("cpu"), "point_inputs_per_obj": {}, "mask_inputs_per_obj": {},
        "cached_features": {}, "constants": {}, "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(),
        "obj_ids": [], "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
    }


@dataclass
class Sam2Propagator:
    config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"
    checkpoint: str = "data/weights/sam2.1_hiera_tiny.pt"
    image_size: int = 1024
    device: str = "cpu"
    seed: int = 0
    max_cond_frames: int = 4  # conditioning frames kept per object (the most recent); assumption
    carry: CarriedMasks = field(default_factory=CarriedMasks)  # last masks carried by pose, for re-identification
    name: str = "sam2"
    _predictor: Any = field(default=None, repr=False)
    _state: dict[str, Any] | None = field(default=None, repr=False)
    _store: FrameStore | None = field(default=None, repr=False)
    _held: set[int] = field(default_factory=set, repr=False)
    _pending: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # id -> mask on _pending_frame
    _pending_frame: int | None = field(default=None, repr=False)
    _to_remove: set[int] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        check_checkpoint(self.checkpoint)  # fail before any frame is read
        if self.max_cond_frames < 1:
            raise ConfigError(f"sam2.max_cond_frames must be >= 1, got {self.max_cond_frames}",
                              fix="e.g. sam2_track.sam2.max_cond_frames: 4")

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            self._predictor = build_video_predictor(self.config, self.checkpoint, self.image_size, self.device,
                                                    self.seed)
        return self._predictor

    def reset(self) -> None:
        self._state, self._store = None, None
        self._held.clear()
        self._pending.clear()
        self._pending_frame = None
        self._to_remove.clear()
        self.carry.reset()

    def held_ids(self) -> list[int]:
        return sorted(self._held)

    def known(self, frame: Frame) -> None:
        return None  # SAM2 segments the whole image: every pixel is evidence

    def candidates(self, frame: Frame, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Last conditioning masks of `ids` carried to `frame` by depth and pose."""
        return self.carry.render(frame, ids)

    def extend(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        if any(np.asarray(m).any() for m in masks.values()):
            raise ValueError("the sam2 backend has no unknown pixels (known() is None): nothing can extend it")

    def condition(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        """Queue masks on `frame` (the current keyframe): added to the state when its window is propagated."""
        if self._pending and self._pending_frame != frame.index:
            raise ValueError(f"conditioning on frame {frame.index} while frame {self._pending_frame} is pending")
        nonempty = {int(i): np.asarray(m, bool).copy() for i, m in masks.items() if np.asarray(m).any()}
        if nonempty:
            self._pending.update(nonempty)
            self._pending_frame = frame.index
            self._held.update(nonempty)
            self._to_remove.difference_update(nonempty)
            self.carry.update(frame, nonempty)

    def remove(self, ids: Iterable[int]) -> None:
        """Drop objects from the state (before the next window); their carried masks stay for re-identification."""
        for oid in ids:
            oid = int(oid)
            self._held.discard(oid)
            self._pending.pop(oid, None)
            self._to_remove.add(oid)

    def propagate(self, window: Sequence[Frame]) -> Iterator[dict[int, np.ndarray]]:
        if len(window) < 2:
            return
        import torch

        key = window[0]
        if self._pending and self._pending_frame != key.index:
            raise ValueError(f"masks were conditioned on frame {self._pending_frame}, the window starts at {key.index}")
        h, w = key.hw
        for f in window:
            if f.color.shape[:2] != (h, w):
                raise InputError(f"frame {f.index} has colour {f.color.shape[:2]}, expected {(h, w)}",
                                 fix="all frames of a scan must have the same resolution")
        pred = self.predictor
        if self._state is None:
            self._store = FrameStore(self.image_size)
            self._state = new_inference_state(self._store, (h, w), pred.device)
        state, store = self._state, self._store
        assert store is not None
        if (state["video_height"], state["video_width"]) != (h, w):
            raise InputError(f"frame {key.index} is {(h, w)}, the scan's SAM2 state is "
                             f"{(state['video_height'], state['video_width'])}",
                             fix="all frames of a scan must have the same resolution")
        store.set_window(window)
        # as in a video at least max_obj_ptrs_in_encoder frames long: SAM2 scales its object-pointer positions by
        # min(num_frames, that), so a growing scan would otherwise change them from window to window
        state["num_frames"] = max(len(store), int(pred.max_obj_ptrs_in_encoder))
        with torch.inference_mode():
            for oid in sorted(self._to_remove):
                if oid in state["obj_id_to_idx"]:
                    pred.remove_object(state, oid, need_output=False)
            for oid in sorted(self._pending):
                pred.add_new_mask(state, key.index, oid, self._pending[oid])
                # the mask is encoded in the conditioning output; SAM2 never reads the input again
                state["mask_inputs_per_obj"][state["obj_id_to_idx"][oid]].pop(key.index, None)
        self._to_remove.clear()
        self._pending.clear()
        self._pending_frame = None
        if not state["obj_ids"]:
            for _ in window[1:]:
                yield {}
            return
        # frames t_k + 1 .. t_{k+1}: propagate_in_video tracks max_frame_num_to_track + 1 frames
        stream = pred.propagate_in_video(state, start_frame_idx=key.index + 1, max_frame_num_to_track=len(window) - 2)
        try:  # propagate_in_video runs under inference_mode itself (not held across our yields)
            for _, obj_ids, logits in stream:
                masks = (logits[:, 0] > 0.0).cpu().numpy()  # logits at video resolution; absent = -1024
                yield {int(o): masks[j] for j, o in enumerate(obj_ids) if masks[j].any()}
        finally:
            stream.close()
            self._prune(window[-1].index)

    def _prune(self, last: int) -> None:
        """Bound the state: per object the newest ``max_cond_frames`` conditioning outputs, full outputs of the
        frames SAM2's memory attention can still read, object pointers of the frames its pointer attention can."""
        state, pred = self._state, self.predictor
        assert state is not None
        keep_mem = pred.num_maskmem * pred.memory_temporal_stride_for_eval
        keep_ptr = max(pred.max_obj_ptrs_in_encoder, keep_mem)
        for obj_idx, out in state["output_dict_per_obj"].items():
            cond = out["cond_frame_outputs"]
            for t in sorted(cond)[:-self.max_cond_frames]:
                del cond[t]
                state["mask_inputs_per_obj"][obj_idx].pop(t, None)
                state["point_inputs_per_obj"][obj_idx].pop(t, None)
            non_cond = out["non_cond_frame_outputs"]
            for t in list(non_cond):
                if t < last - keep_ptr:
                    del non_cond[t]
                elif t < last - keep_mem and non_cond[t].get("maskmem_features") is not None:
                    non_cond[t] = {"obj_ptr": non_cond[t]["obj_ptr"], "maskmem_features": None,
                                   "maskmem_pos_enc": None, "pred_masks": None,
                                   "object_score_logits": non_cond[t]["object_score_logits"]}
            tracked = state["frames_tracked_per_obj"][obj_idx]
            for t in [t for t in tracked if t < last - keep_ptr]:
                del tracked[t]
