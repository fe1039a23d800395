"""The `rgbd` proposer: geometry -> room shell -> whole objects and their parts -> scored masks.

Like SAM's automatic mask generator it returns overlapping masks at two granularities: every whole object
(score in [0.5, 1]) and the parts inside it (score below 0.5): the pieces it was assembled from (a table's top
and legs, a shelf's boards) and its single-coloured regions (a chair's seat and back, a bottle's cap). A mask's
score grows with the share of its outline that is a real boundary (a depth step, or the line where it stands on
a support) rather than a colour edge or the image border, so whole objects rank above their parts.

Deliberately absent: the room shell (floor, walls, ceiling are background, void in ScanNet's GT) and masks of
groups of objects (a table with what stands on it): the containment filter keeps the largest of nested masks,
so a group mask would swallow every object inside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gcseg.errors import ConfigError
from gcseg.proposals.base import Proposals
from gcseg.proposals.rgbd.config import RgbdConfig
from gcseg.proposals.rgbd.geometry import View, prepare, resample_index
from gcseg.proposals.rgbd.graph import components, label_sums, relabel
from gcseg.proposals.rgbd.objects import Objects, segment_objects
from gcseg.proposals.rgbd.room import find_room
from gcseg.scene import Frame


def boundary_strength(lab: np.ndarray, view: View) -> np.ndarray:
    """Per label of `lab` (h, w; -1 = none): the share of its outline (4-neighbour pairs with another label or
    nothing, image border excluded) where the surface really ends: a depth step, missing depth or the room."""
    k = int(lab.max()) + 1
    out = np.zeros(max(k, 0))
    if k == 0:
        return out
    total = np.zeros(k)
    strong = np.zeros(k)
    for cont, a, b in ((view.cont_h, lab[:, :-1], lab[:, 1:]), (view.cont_v, lab[:-1, :], lab[1:, :])):
        edge = a != b
        for x, y in ((a, b), (b, a)):
            sel = edge & (x >= 0)
            total += np.bincount(x[sel], minlength=k)
            real = sel & (~cont | (y < 0))
            strong += np.bincount(x[real], minlength=k)
    return np.where(total > 0, strong / np.maximum(total, 1), 0.0)


def colour_parts(objs: Objects, view: View, cfg: RgbdConfig) -> np.ndarray:
    """Single-coloured regions inside each object: connected along one surface without a colour edge."""
    h, w = view.hw
    lab = objs.label.ravel()
    idx = np.arange(h * w).reshape(h, w)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    cont = np.concatenate([view.cont_h.ravel(), view.cont_v.ravel()])
    la = view.lab.reshape(-1, 3)
    same = (lab[a] == lab[b]) & cont & (np.linalg.norm(la[a] - la[b], axis=-1) <= cfg.color_cut)
    return components(h * w, a, b, same, lab >= 0).reshape(h, w)


def check_up(up: Any) -> np.ndarray | None:
    """A scene's up vector as a unit float64 (3,) array; None stays None. Anything else is a ConfigError."""
    if up is None:
        return None
    v = np.asarray(up, np.float64)
    norm = float(np.linalg.norm(v)) if v.shape == (3,) else 0.0
    if v.shape != (3,) or not np.isfinite(v).all() or norm < 1e-9:
        raise ConfigError(f"the rgbd proposer's scene up must be a finite non-zero 3-vector, got {up!r}",
                          fix="pass gcseg.upright.proposer_up(scene), or None for each frame's own up")
    return v / norm


class RgbdProposer:
    """Weight-free RGB-D masks of whole objects and their parts (see the package docstring)."""

    name = "rgbd"

    def __init__(self, cfg: RgbdConfig | Any = None, seed: int = 0, *, up: Any = None):
        self.cfg = RgbdConfig.from_mapping(cfg)
        self.seed = seed  # deterministic algorithm; kept for a uniform constructor
        self.up = check_up(up)

    def for_scene(self, up: Any) -> "RgbdProposer":
        """This proposer for one scene whose world up (world coordinates, e.g. gcseg.upright.proposer_up of the
        scene) is `up`: every frame's up starts from it instead of from the frame's own camera (which a camera
        pitched steeply down gets wrong), refined to the frame's horizontal surfaces as before. None = each
        frame's own rule. A new proposer; this one is unchanged."""
        return RgbdProposer(self.cfg, self.seed, up=up)

    def segment(self, frame: Frame) -> tuple[View, Objects] | None:
        """The intermediate result (working resolution): view and objects; None without valid depth."""
        view = prepare(frame, self.cfg, self.up)
        if view is None:
            return None
        room = find_room(view, self.cfg)
        return view, segment_objects(view, room.mask, self.cfg)

    def __call__(self, frame: Frame) -> Proposals:
        out_hw = tuple(int(x) for x in np.asarray(frame.depth).shape)
        res = self.segment(frame)
        if res is None:
            return Proposals.empty(*out_hw)
        view, objs = res
        cfg = self.cfg
        h, w = view.hw
        min_px = cfg.min_area_px * view.px ** 2
        max_px = cfg.max_area_frac * h * w
        # whole objects
        lab = objs.label
        k = int(lab.max()) + 1
        area = np.bincount(lab[lab >= 0], minlength=k) if k else np.zeros(0, np.int64)
        ok_obj = (area >= min_px) & (area <= max_px)
        obj_score = 0.5 + 0.5 * boundary_strength(lab, view)
        # parts: the pieces an object was built from and its single-coloured regions, if smaller than it
        masks: list[np.ndarray] = [lab == i for i in np.flatnonzero(ok_obj)]
        scores: list[float] = [float(obj_score[i]) for i in np.flatnonzero(ok_obj)]
        seen: set[bytes] = {m.tobytes() for m in masks}
        for parts in (objs.parts, colour_parts(objs, view, cfg)):
            parts = relabel(np.where(lab >= 0, parts, -1))
            npart = int(parts.max()) + 1
            if npart == 0:
                continue
            p_area = np.bincount(parts[parts >= 0], minlength=npart)
            owner = np.full(npart, -1, np.int64)
            owner[parts[parts >= 0]] = lab[parts >= 0]
            # a part must lie inside one object (a band shared by an object and an item is cut by the label)
            (inside,) = label_sums(np.where(lab == owner[np.maximum(parts, 0)], parts, -1).ravel(), npart,
                                   np.ones(h * w))
            p_score = 0.5 * boundary_strength(parts, view)
            for p in np.flatnonzero((p_area >= min_px) & (inside == p_area) & ok_obj[np.maximum(owner, 0)]
                                    & (owner >= 0)):
                if p_area[p] >= cfg.part_max_share * area[owner[p]]:
                    continue
                m = parts == p
                key = m.tobytes()
                if key in seen:
                    continue
                seen.add(key)
                masks.append(m)
                scores.append(float(p_score[p]))
        if not masks:
            return Proposals.empty(*out_hw)
        ms = np.stack(masks)
        if (h, w) != out_hw:
            iy, ix = resample_index(h, out_hw[0]), resample_index(w, out_hw[1])
            ms = ms[:, iy][:, :, ix]
        return Proposals(ms, np.asarray(scores, np.float32))
