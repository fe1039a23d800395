"""The `rgbd` proposer: geometry -> room shell -> objects and their parts -> scored masks."""

from __future__ import annotations

from typing import Any

import numpy as np

from gcseg.proposals.base import Proposals
from gcseg.proposals.rgbd.config import RgbdConfig
from gcseg.proposals.rgbd.geometry import prepare, resample_index
from gcseg.proposals.rgbd.objects import segment_objects
from gcseg.proposals.rgbd.room import find_room
from gcseg.scene import Frame


class RgbdProposer:
    name = "rgbd"

    def __init__(self, cfg: RgbdConfig | Any = None, seed: int = 0):
        self.cfg = RgbdConfig.from_mapping(cfg)
        self.seed = seed  # deterministic algorithm; kept for a uniform constructor

    def __call__(self, frame: Frame) -> Proposals:
        view = prepare(frame, self.cfg)
        hw = tuple(np.asarray(frame.depth).shape)
        if view is None:
            return Proposals.empty(*hw)
        room = find_room(view, self.cfg)
        objs = segment_objects(view, room.mask, self.cfg)
        min_px = self.cfg.min_area_px * view.px ** 2
        masks, scores = [], []
        k = int(objs.label.max()) + 1
        for i in range(k):
            m = objs.label == i
            if m.sum() >= min_px:
                masks.append(m)
                scores.append(0.9)
        npart = int(objs.parts.max()) + 1
        for p in range(npart):
            m = objs.parts == p
            if m.sum() >= min_px:
                masks.append(m)
                scores.append(0.4)
        if not masks:
            return Proposals.empty(*hw)
        ms = np.stack(masks)
        if view.hw != hw:
            iy, ix = resample_index(view.hw[0], hw[0]), resample_index(view.hw[1], hw[1])
            ms = ms[:, iy][:, :, ix]
        return Proposals(ms, np.asarray(scores, np.float32))
