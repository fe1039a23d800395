"""The proposal backends: classical (weight-free), gt_sim (GT simulator), sam (real code path, random weights)."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import ConfigError, InputError
from gcseg.proposals.base import Proposals
from gcseg.proposals.coverage import best_iou_per_instance, proposal_coverage
from gcseg.proposals.factory import build_proposer
from gcseg.scene import Frame


def test_unknown_backend():
    with pytest.raises(ConfigError, match="classical"):
        build_proposer("maskrcnn", {})


def test_classical_finds_the_boxes_at_several_granularities(frame):
    props = build_proposer("classical", {})(frame)
    assert isinstance(props, Proposals) and len(props) > 3
    assert props.masks.shape[1:] == frame.hw and props.scores.dtype == np.float32
    assert np.all((props.scores >= 0) & (props.scores <= 1))
    best = best_iou_per_instance(frame.instance, props.masks, min_area=100)
    assert best.min() >= 0.9
    # the two-coloured box also comes out as its parts
    part_best = best_iou_per_instance(frame.part, props.masks, min_area=100)
    assert (part_best >= 0.8).sum() >= 3
    # deterministic
    again = build_proposer("classical", {})(frame)
    assert np.array_equal(again.masks, props.masks) and np.array_equal(again.scores, props.scores)


def test_classical_handles_missing_depth(frame):
    depth = frame.depth.copy()
    depth[:, :20] = 0
    f = Frame(frame.index, frame.color, depth, frame.intrinsics, frame.pose, frame.instance)
    props = build_proposer("classical", {})(f)
    assert len(props) > 0
    f0 = Frame(0, frame.color, np.zeros_like(depth), frame.intrinsics, frame.pose)
    assert build_proposer("classical", {})(f0).masks.shape[1:] == frame.hw  # colour alone still works


def test_classical_bad_options():
    with pytest.raises(ConfigError, match="unknown classical option"):
        build_proposer("classical", {"scale": 3})
    with pytest.raises(ConfigError, match="max_area_frac"):
        build_proposer("classical", {"max_area_frac": 0})


def test_coverage_counts_matched_instances(frame):
    class Oracle:
        name = "oracle"

        def __call__(self, f):
            ids = [i for i in np.unique(f.instance) if i > 0][:2]  # two of three instances
            return Proposals(np.stack([f.instance == i for i in ids]), np.ones(2, np.float32))

    assert proposal_coverage([frame], Oracle(), min_area=100) == pytest.approx(2 / 3)
    assert np.isnan(proposal_coverage([Frame(0, frame.color, frame.depth, frame.intrinsics, frame.pose)],
                                      Oracle(), min_area=100))


def test_gt_sim_is_seeded_and_switches_granularity(frame):
    cfg = {"p_part": 0.5, "p_merge": 0.2, "p_drop": 0.0, "boundary_noise_px": 1.0}
    a = build_proposer("gt_sim", cfg, seed=3)(frame)
    b = build_proposer("gt_sim", cfg, seed=3)(frame)
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.scores, b.scores)
    counts = {len(build_proposer("gt_sim", cfg, seed=s)(frame)) for s in range(12)}
    assert len(counts) >= 2  # parts / whole / merged differ between seeds
    exact = build_proposer("gt_sim", {"p_part": 0, "p_merge": 0, "p_drop": 0, "boundary_noise_px": 0})(frame)
    assert len(exact) == 3 and np.allclose(exact.scores, 1.0)
    assert best_iou_per_instance(frame.instance, exact.masks, 1).tolist() == [1.0, 1.0, 1.0]


def test_gt_sim_needs_gt(frame):
    f = Frame(0, frame.color, frame.depth, frame.intrinsics, frame.pose)
    with pytest.raises(InputError, match="GT instance"):
        build_proposer("gt_sim", {})(f)
    with pytest.raises(ConfigError):
        build_proposer("gt_sim", {"p_part": 0.8, "p_merge": 0.5})
