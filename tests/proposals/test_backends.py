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


def test_classical_median_px_must_be_odd(frame):
    """An even window has no centre (its reshape used to fail on every frame): a ConfigError up front."""
    for bad in (0, 2, 4):
        with pytest.raises(ConfigError, match="median_px must be an odd"):
            build_proposer("classical", {"median_px": bad})
    for ok in (1, 5):
        assert build_proposer("classical", {"median_px": ok})(frame).masks.shape[1:] == frame.hw


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
    cfg = {"p_part": 0.5, "p_merge": 0.2, "p_drop": 0.0, "boundary_noise": 0.1}
    a = build_proposer("gt_sim", cfg, seed=3)(frame)
    b = build_proposer("gt_sim", cfg, seed=3)(frame)
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.scores, b.scores)
    counts = {len(build_proposer("gt_sim", cfg, seed=s)(frame)) for s in range(12)}
    assert len(counts) >= 2  # parts / whole / merged differ between seeds
    exact = build_proposer("gt_sim", {"p_part": 0, "p_merge": 0, "p_drop": 0, "boundary_noise": 0})(frame)
    assert len(exact) == 3 and np.allclose(exact.scores, 1.0)
    assert best_iou_per_instance(frame.instance, exact.masks, 1).tolist() == [1.0, 1.0, 1.0]


def test_gt_sim_needs_gt(frame):
    f = Frame(0, frame.color, frame.depth, frame.intrinsics, frame.pose)
    with pytest.raises(InputError, match="GT instance"):
        build_proposer("gt_sim", {})(f)
    with pytest.raises(ConfigError):
        build_proposer("gt_sim", {"p_part": 0.8, "p_merge": 0.5})


def _boxes_frame(scale: int = 1) -> Frame:
    """120x160 (x scale) frame with a 60x80 px object, a 12x12 px one and a 5x5 px one (GT only matters)."""
    inst = np.zeros((120, 160), np.int32)
    inst[20:80, 20:100] = 1
    inst[30:42, 120:132] = 2
    inst[100:105, 140:145] = 3
    inst = np.kron(inst, np.ones((scale, scale), np.int32))
    h, w = inst.shape
    k = np.array([[100.0 * scale, 0, w / 2], [0, 100.0 * scale, h / 2], [0, 0, 1]])
    return Frame(0, np.zeros((h, w, 3), np.uint8), np.ones((h, w), np.float32), k, np.eye(4), instance=inst)


def _gt_sim_iou(frame: Frame, seeds: range, **cfg) -> dict[int, float]:
    """Mean IoU of each GT instance's proposal with the clean mask over seeds (whole objects only)."""
    out: dict[int, list[float]] = {}
    opts = {"p_part": 0, "p_merge": 0, "p_drop": 0, "min_area_frac": 0.0, **cfg}
    for s in seeds:
        props = build_proposer("gt_sim", opts, seed=s)(frame)
        for i, b in zip((1, 2, 3), best_iou_per_instance(frame.instance, props.masks, 1)):
            out.setdefault(i, []).append(float(b))
    return {i: float(np.mean(v)) for i, v in out.items()}


def test_gt_sim_boundary_noise_is_relative_to_object_size():
    """Every object loses about the same share of its mask, at any image size: small objects survive (a fixed
    1.5 px offset erased them), and doubling the resolution leaves the IoUs where they were."""
    small = _gt_sim_iou(_boxes_frame(1), range(8), boundary_noise=0.1)
    large = _gt_sim_iou(_boxes_frame(2), range(8), boundary_noise=0.1)
    assert all(0.7 < v < 0.98 for v in (small[1], large[1], large[2]))
    assert small[3] > 0.7 and small[2] > 0.7  # 25 px and 144 px objects keep their shape
    assert abs(small[1] - large[1]) < 0.05 and abs(small[2] - large[2]) < 0.1
    # more noise, lower IoU; none = exact
    assert _gt_sim_iou(_boxes_frame(1), range(4), boundary_noise=0.3)[1] < small[1]
    assert _gt_sim_iou(_boxes_frame(1), range(1), boundary_noise=0.0) == {1: 1.0, 2: 1.0, 3: 1.0}


def test_gt_sim_min_area_is_a_fraction_of_the_image():
    opts = {"p_part": 0, "p_merge": 0, "p_drop": 0, "boundary_noise": 0, "min_area_frac": 0.002}
    lo, hi = _boxes_frame(1), _boxes_frame(2)  # 0.002 of the image: 38 px at 160x120, 154 px at 320x240
    assert len(build_proposer("gt_sim", opts)(lo)) == 2  # the 25 px object is too small, the 144 px one not
    assert len(build_proposer("gt_sim", opts)(hi)) == 2  # ... and at twice the size, the same two


def test_gt_sim_bad_options():
    with pytest.raises(ConfigError, match="boundary_noise"):
        build_proposer("gt_sim", {"boundary_noise": 1.5})
    with pytest.raises(ConfigError, match="min_area_frac"):
        build_proposer("gt_sim", {"min_area_frac": 2.0})
    with pytest.raises(ConfigError, match="unknown gt_sim option"):
        build_proposer("gt_sim", {"boundary_noise_px": 1.5})  # pixel offsets are gone: relative noise
