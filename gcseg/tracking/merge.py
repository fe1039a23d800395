"""Merging tracks that the proposals show as one object more often than as separate ones.

Algorithm 1 keeps the granularity at which an object was first seen. When the proposer first shows an object in
parts (the weight-free rgbd proposer cuts it where new surface comes into view; SAM returns a chair's seat and
back at one keyframe and the whole chair at the next), the parts become separate tracks, and every later proposal
of the whole object is the union of tracked masks, which the granularity gate rejects. The paper leaves open
which granularity wins; this module lets the keyframes vote on it, after tracking:

* at each keyframe, a proposal *joins* tracks a and b if it holds most (> ``part_share``) of each of their
  masks and the tracked masks it holds cover at least ``union_cover`` of it (it is their union, not a bigger
  region that happens to contain them);
* a proposal *separates* a from b if it holds most of a (or lies mostly on a) and at most ``separate_share``
  of b, while b is visible at that keyframe.

Pairs with ``joined >= min_joined`` and ``joined >= ratio * separated`` are merged (union-find; every id of a
group maps to its smallest id, so ids stay those the policy gave and are never reused). Distinct neighbours
that the proposer occasionally merges (a chair tucked under a table) are separated at most keyframes and stay
apart. The merge is an alias map applied to the lifted votes (:meth:`gcseg.lifting.VoteAccumulator.relabel`),
the stored id maps and the consistency meters, which is exact: each frame gave a point one vote, for one id, and
the meters keep per-frame pixel counts (instance areas, instance/id intersections, id areas) and decide coverage
after the merge (:meth:`gcseg.tracking.consistency.ConsistencyMeter.relabel`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from gcseg.masks import mask_intersections
from gcseg.proposals.base import Proposals
from gcseg.scene import Frame
from gcseg.tracking.policy import StepResult


@dataclass
class UnionEvidence:
    """Keyframe hook (``track_scene(on_keyframe=[ev.observe])``) counting joined / separated keyframes per pair."""

    part_share: float = 0.5
    union_cover: float = 0.8
    separate_share: float = 0.1
    joined: Counter = field(default_factory=Counter)  # (a, b), a < b -> keyframes where a proposal joined them
    separated: Counter = field(default_factory=Counter)  # (a, b), a < b -> keyframes where one separated them

    def observe(self, frame: Frame, props: Proposals, step: StepResult) -> None:
        ids = sorted(i for i, m in step.masks.items() if m.any())
        if len(ids) < 2 or len(props) == 0:
            return
        flat_m = np.stack([step.masks[i] for i in ids]).reshape(len(ids), -1)
        flat_p = props.masks.reshape(len(props), -1)
        inter = mask_intersections(flat_p, flat_m)  # (K, T)
        m_area = flat_m.sum(1)
        p_area = flat_p.sum(1)
        holds = inter > self.part_share * m_area[None, :]
        on = inter > self.part_share * p_area[:, None]
        joined: set[tuple[int, int]] = set()
        for k in np.flatnonzero(holds.sum(1) >= 2):
            cols = np.flatnonzero(holds[k])
            if inter[k, cols].sum() < self.union_cover * p_area[k]:  # more than the union of tracked masks
                continue
            for x, a in enumerate(cols):
                for b in cols[x + 1:]:
                    joined.add((ids[a], ids[b]))
        # separated: a proposal on (or holding) a that holds at most separate_share of b
        of_a = (holds | on).astype(np.float32)
        little = (inter <= self.separate_share * m_area[None, :]).astype(np.float32)
        sep = (of_a.T @ little) > 0  # (T, T): [a, b] separated
        sep = sep | sep.T
        for a, b in zip(*np.nonzero(np.triu(sep, 1))):
            pair = (ids[a], ids[b])
            if pair not in joined:
                self.separated[pair] += 1
        for pair in joined:
            self.joined[pair] += 1

    def aliases(self, *, min_joined: int = 2, ratio: float = 1.0) -> dict[int, int]:
        """id -> representative (smallest id of its group) for every merged id; {} when nothing merges."""
        parent: dict[int, int] = {}

        def find(x: int) -> int:
            while parent.get(x, x) != x:
                x = parent[x]
            return x

        for (a, b), n in sorted(self.joined.items()):
            if n >= min_joined and n >= ratio * self.separated.get((a, b), 0):
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        return {i: find(i) for i in sorted(parent) if find(i) != i}


def relabel_id_map(id_map: np.ndarray, alias: dict[int, int]) -> np.ndarray:
    """``id_map`` with every aliased id replaced by its representative (same dtype)."""
    if not alias:
        return id_map
    lut = np.arange(max(int(id_map.max()), max(alias)) + 1, dtype=id_map.dtype)
    for a, r in alias.items():
        lut[a] = r
    return lut[id_map]
