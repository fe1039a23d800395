"""The propagation-backend interface the tracking loop drives (reprojection: CPU, no weights; sam2: SAM2).

A propagator holds the ACTIVE/DORMANT objects of one scene. At a keyframe the loop asks for the
re-identification masks of the objects the policy may revive (:meth:`Propagator.candidates`), (re)conditions
some objects with masks (:meth:`Propagator.condition`, which also brings a revived object back), removes
TERMINATED ones (:meth:`Propagator.remove`) and asks for the masks of every held object on the frames up to the
next keyframe (:meth:`Propagator.propagate`). The window is streamed by the caller: a backend never sees more
than one window of frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

import numpy as np

from gcseg.scene import Frame


class Propagator(Protocol):
    name: str

    def reset(self) -> None:
        """Forget every object (start of a scene)."""

    def condition(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        """Add or replace objects' evidence: bool (H, W) masks on `frame` (the current keyframe)."""

    def extend(self, frame: Frame, masks: Mapping[int, np.ndarray]) -> None:
        """Add newly visible surface (bool (H, W) masks on `frame`, pixels outside :meth:`known`) to held objects'
        evidence without replacing it. Only a backend whose :meth:`known` is not None ever receives any."""

    def remove(self, ids: Iterable[int]) -> None:
        """Drop objects for good (TERMINATED)."""

    def held_ids(self) -> list[int]:
        """Ids currently held, ascending."""

    def candidates(self, frame: Frame, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Re-identification masks on `frame` (the current keyframe) for those of `ids` the backend can predict
        without propagation (reprojection: archived 3D models of removed objects; SAM2: last masks carried by
        pose). Absent = no prediction."""

    def known(self, frame: Frame) -> np.ndarray | None:
        """Pixels of `frame` the backend has evidence about (None = all), for the policy's matching IoU."""

    def propagate(self, window: Sequence[Frame]) -> Iterator[dict[int, np.ndarray]]:
        """Masks of the held objects on window[1:], where window[0] is the current keyframe.

        Yields one dict per frame of window[1:] (same order): id -> bool (H, W); an object that is not visible
        on a frame is absent or empty there. A generator, so that only one frame's masks are alive at a time;
        consume it fully.
        """


def build_propagator(backend: str, **kwargs: object) -> Propagator:
    """Registry: ``reprojection`` (default, CPU, exact for static scenes) or ``sam2`` (SAM2 video predictor)."""
    from gcseg.errors import ConfigError

    if backend == "reprojection":
        from gcseg.tracking.reprojection import ReprojectionPropagator

        return ReprojectionPropagator(**kwargs)  # type: ignore[arg-type]
    if backend == "sam2":
        from gcseg.tracking.sam2_backend import Sam2Propagator

        return Sam2Propagator(**kwargs)  # type: ignore[arg-type]
    raise ConfigError(f"unknown tracking backend {backend!r}", fix="set sam2_track.backend to reprojection or sam2")
