"""Mask propagation with the SAM2 video predictor (facebookresearch/sam2 1.1.0, ``SAM2VideoPredictor``).

Streaming: SAM2's ``init_state`` loads every frame of its video folder, so we never give it the scan. For each
window (keyframe t_k .. next keyframe) a temporary folder receives ``<i>.jpg`` for

* the *anchor* frames: for each held object whose last conditioning was before t_k (DORMANT objects, and
  objects that were not re-conditioned), the frame of that conditioning, so SAM2 can re-acquire it from memory;
* the window's frames t_k, t_k + 1, ..., t_{k+1}.

Then ``init_state(offload_video_to_cpu=True, offload_state_to_cpu=True)``, ``add_new_mask`` for every held object
on its anchor frame (objects conditioned at t_k on t_k's slot) and ``propagate_in_video(start_frame_idx=slot of
t_k, max_frame_num_to_track=window length - 1)``; the state and the folder are dropped after the window. Memory
is thus bounded by (window + anchors) frames at ``image_size``, whatever the scan length. A TERMINATED object is
removed (:meth:`Sam2Propagator.remove`): it is simply not added to the next window's state, which is what
``predictor.remove_object`` achieves inside one state. SAM2 memory across windows is carried by the
conditioning masks (cf. SAM2Object, which resets its state every window).

Weights: ``config`` is a Hydra config name inside the sam2 package (``configs/sam2.1/sam2.1_hiera_t.yaml``),
``checkpoint`` a file path; the literal ``random-init-for-tests`` builds the model with random weights (tests and
benchmarks only: its masks mean nothing). ``import sam2`` initialises Hydra globally, so it is imported lazily.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gcseg.errors import ConfigError, InputError
from gcseg.scene import Frame

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
        return build_sam2_video_predictor(config, None if ckpt is None else str(ckpt), device=device,
                                          apply_postprocessing=False,
                                          hydra_overrides_extra=[f"++model.image_size={int(image_size)}"])
    except Exception as exc:  # hydra MissingConfigException, strict checkpoint loading (RuntimeError)
        name = type(exc).__name__
        if "MissingConfig" in name:
            raise ConfigError(f"sam2 config {config!r} not found in the sam2 package", fix=(
                "use a config name such as configs/sam2.1/sam2.1_hiera_t.yaml (a name, not a path)")) from exc
        if ckpt is not None:
            raise InputError(f"SAM2 checkpoint does not fit config {config!r} ({name}: {exc})", path=ckpt,
                             fix="use the checkpoint that matches the config (tiny <-> sam2.1_hiera_t.yaml)") from exc
        raise


def _write_jpg(path: Path, color: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(color)).save(path, quality=95)


@dataclass
class Sam2Propagator:
    config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"
    checkpoint: str = "data/weights/sam2.1_hiera_tiny.pt"
    image_size: int = 1024
    device: str = "cpu"
    seed: int = 0
    name: str = "sam2"
    _anchors: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict, repr=False)  # id -> (frame, mask)
    _anchor_frames: dict[int, Frame] = field(default_factory=dict, repr=False)
    _predictor: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_checkpoint(self.checkpoint)  # fail before any frame is read

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            self._predictor = build_video_predictor(self.config, self.checkpoint, self.image_size, self.device,
                                                    self.seed)
        return self._predictor

    def reset(self) -> None:
        self._anchors.clear()
        self._anchor_frames.clear()

    def held_ids(self) -> list[int]:
        return sorted(self._anchors)

    def known(self, frame: Frame) -> None:
        return None  # SAM2 segments the whole image: every pixel is evidence

    def condition(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        for oid in sorted(masks):
            m = np.asarray(masks[oid], bool)
            if m.any():
                self._anchors[oid] = (frame.index, m.copy())
        self._gc_frames(keep=frame)

    def remove(self, ids: Iterable[int]) -> None:
        for oid in ids:
            self._anchors.pop(int(oid), None)
        self._gc_frames()

    def _gc_frames(self, keep: Frame | None = None) -> None:
        """Hold colour only for frames some object is anchored on."""
        if keep is not None:
            self._anchor_frames[keep.index] = keep
        used = {fi for fi, _ in self._anchors.values()}
        for fi in [fi for fi in self._anchor_frames if fi not in used]:
            del self._anchor_frames[fi]

    def propagate(self, window: Sequence[Frame]) -> Iterator[dict[int, np.ndarray]]:
        if len(window) < 2 or not self._anchors:
            for _ in window[1:]:
                yield {}
            return
        import torch

        key = window[0]
        anchor_idx = sorted({fi for fi, _ in self._anchors.values() if fi != key.index})
        video = [self._anchor_frames[fi] for fi in anchor_idx] + list(window)
        slot = {fi: s for s, fi in enumerate(anchor_idx)}
        slot[key.index] = len(anchor_idx)
        h, w = key.hw
        for f in video:
            if f.color.shape[:2] != (h, w):
                raise InputError(f"frame {f.index} has colour {f.color.shape[:2]}, expected {(h, w)}",
                                 fix="all frames of a scan must have the same resolution")
        pred = self.predictor
        with tempfile.TemporaryDirectory(prefix="gcseg-sam2-") as tmp:
            for s, f in enumerate(video):
                _write_jpg(Path(tmp) / f"{s}.jpg", f.color)
            with torch.inference_mode():
                state = pred.init_state(tmp, offload_video_to_cpu=True, offload_state_to_cpu=True)
            try:
                with torch.inference_mode():
                    for oid in self.held_ids():
                        fi, m = self._anchors[oid]
                        pred.add_new_mask(state, slot[fi], oid, m)
                start = slot[key.index]
                stream = pred.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=len(window) - 1)
                for s, obj_ids, logits in stream:
                    if s <= start:
                        continue
                    masks = (logits[:, 0] > 0.0).cpu().numpy()  # logits at video resolution; absent = -1024
                    yield {int(o): masks[j] for j, o in enumerate(obj_ids) if masks[j].any()}
            finally:
                pred.reset_state(state)
                del state
