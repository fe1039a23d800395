"""Stage 1 data for one scene: keyframes -> proposals -> containment -> lifted, labelled partial clouds."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gcseg.errors import InputError
from gcseg.io.samples import is_finished, read_point_samples
from gcseg.proposals.base import Proposals
from gcseg.proposals.factory import build_proposer
from gcseg.proposals.pipeline import (SCHEMA, process_keyframe, read_summary, relabel_min_points,
                                     run_sam_keyframes)
from gcseg.io.h5 import read_h5
from gcseg.scene import Frame, Scene

from .conftest import make_frame


def scene_of(frames: list[Frame], scene_id: str = "toy") -> Scene:
    return Scene(scene_id, len(frames), frames[0].hw, lambda i: frames[i], source="test")


KW = dict(stride=2, min_valid_depth=0.5, tau_contain=0.8, min_area=20, min_points=30)


def test_end_to_end_on_hand_made_frames(tmp_path: Path):
    frames = [make_frame(i, seed=i) for i in range(5)]
    out = tmp_path / "toy.h5"
    png = tmp_path / "toy.png"
    res = run_sam_keyframes(scene_of(frames), build_proposer("gt_sim", {"boundary_noise": 0, "p_drop": 0,
                            "p_part": 0, "p_merge": 0}), out_h5=out, overlay_png=png, coverage_min_area=100, **KW)
    assert res.keyframes == [0, 2, 4] and not res.empty
    data, attrs = read_h5(out, schema=SCHEMA, version=1)
    assert attrs["scene_id"] == "toy"
    assert data["keyframes"].tolist() == [0, 2, 4] and data["num_kept"].tolist() == [3, 3, 3]
    samples = dict(read_point_samples(out))
    assert sorted(samples) == ["kf_000000", "kf_000002", "kf_000004"]
    s = samples["kf_000002"]
    f = frames[2]
    assert len(s["coord"]) == int((f.depth > 0).sum())  # every valid pixel, no downsampling by default
    # labels follow GT exactly with exact masks: 3 instances, void pixels -1
    assert sorted(np.unique(s["instance"]).tolist()) == [-1, 0, 1, 2]
    assert (s["instance"] >= 0).sum() == int((f.instance > 0).sum())
    # the stored id map agrees with the point labels: pixel v >= 1 <-> instance v - 1
    id_map = data["masks"]["kf_000002"]
    assert id_map.dtype == np.uint16 and id_map.shape == f.hw
    assert np.array_equal(id_map.reshape(-1)[f.depth.reshape(-1) > 0].astype(np.int64) - 1, s["instance"])
    assert data["scores"]["kf_000002"].shape == (3,)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = read_summary(out)
    assert [st["gt_hits_kept"] for st in summary["stats"]] == [3, 3, 3]
    assert is_finished(out, SCHEMA, None) and not is_finished(tmp_path / "nope.h5", SCHEMA, None)


def test_min_points_drops_small_instances():
    id_map = np.array([[1, 1, 2], [3, 3, 3]])
    keep, labels, new_map = relabel_min_points(id_map, np.array([1, 1, 2, 3, 3, 3, -1]), min_points=2)
    assert keep.tolist() == [1, 3] and labels.tolist() == [0, 0, -1, 1, 1, 1, -1]
    assert new_map.tolist() == [[1, 1, 0], [2, 2, 2]]


def test_min_points_counts_the_points_left_after_voxel_downsampling():
    """With voxel_size > 0 the points are downsampled before min_points: the red box (360 pixels, 30 points at
    10 cm voxels) is under min_points 40 and dropped everywhere (instances, scores, id map); the others keep
    at least min_points stored points each."""
    frame = make_frame()

    def gt_boxes(f: Frame) -> Proposals:
        return Proposals(np.stack([f.instance == i for i in (1, 2, 3)]), np.array([0.9, 0.8, 0.7], np.float32))

    kw = dict(tau_contain=0.8, min_area=20, min_points=40)
    full, full_map, full_scores, full_stats = process_keyframe(frame, gt_boxes, **kw)
    assert full_stats.instances == 3 and sorted(full_scores.tolist()) == pytest.approx([0.7, 0.8, 0.9])
    sample, id_map, scores, stats = process_keyframe(frame, gt_boxes, voxel_size=0.1, **kw)
    labels = sample["instance"]
    assert stats.instances == len(scores) == len(sample["score"]) == 2
    assert sorted(scores.tolist()) == pytest.approx([0.7, 0.8])  # the red box (score 0.9) is gone
    counts = np.bincount(labels[labels >= 0], minlength=2)
    assert counts.tolist() and (counts >= 40).all() and len(counts) == 2
    assert stats.points == len(labels) < len(full["instance"]) and stats.labelled_points == int(counts.sum())
    assert set(np.unique(id_map).tolist()) == {0, 1, 2} and not id_map[frame.instance == 1].any()
    for v in (1, 2):  # the id map and the points agree: id v is the points labelled v - 1
        assert np.unique(frame.instance[id_map == v]).size == 1


def test_identical_inputs_give_identical_bytes(tmp_path: Path):
    frames = [make_frame(i, seed=i) for i in range(3)]
    digests = []
    for k in range(2):
        out, png = tmp_path / f"a{k}.h5", tmp_path / f"a{k}.png"
        run_sam_keyframes(scene_of(frames), build_proposer("classical", {}), out_h5=out, overlay_png=png,
                          voxel_size=0.05, **KW)
        digests.append((hashlib.md5(out.read_bytes()).hexdigest(), hashlib.md5(png.read_bytes()).hexdigest()))
    assert digests[0] == digests[1]


def test_frame_without_depth_is_skipped_and_all_empty_is_a_warning(tmp_path: Path):
    good = make_frame(0)
    blank = replace(good, depth=np.zeros_like(good.depth))
    frames = [blank, good, blank, blank]
    res = run_sam_keyframes(scene_of(frames), build_proposer("classical", {}), out_h5=tmp_path / "a.h5", **KW)
    assert res.keyframes == [1]  # window 0-1 moves to frame 1, window 2-3 has no depth at all
    with pytest.warns(RuntimeWarning, match="no keyframe has enough valid depth"):
        res = run_sam_keyframes(scene_of([blank, blank]), build_proposer("classical", {}),
                                out_h5=tmp_path / "b.h5", overlay_png=tmp_path / "b.png", **KW)
    assert res.keyframes == [] and res.empty
    data, _ = read_h5(tmp_path / "b.h5", schema=SCHEMA, version=1)
    assert data["keyframes"].shape == (0,) and list(read_point_samples(tmp_path / "b.h5")) == []
    assert (tmp_path / "b.png").is_file()

    class Nothing:
        name = "nothing"

        def __call__(self, f):
            return Proposals.empty(*f.hw)

    with pytest.warns(RuntimeWarning, match="no mask survived"):
        res = run_sam_keyframes(scene_of([good]), Nothing(), out_h5=tmp_path / "c.h5", **KW)
    assert res.keyframes == [0] and res.stats[0].proposals == 0


def test_wrong_image_size_is_an_input_error_and_writes_nothing(tmp_path: Path):
    good = make_frame(0)
    small = make_frame(2, h=40, w=64)
    bad_color = replace(good, index=2, color=good.color[:, :50])
    for frames in ([good, good, small], [good, good, bad_color]):
        with pytest.raises(InputError, match="frame 2"):
            run_sam_keyframes(scene_of(frames), build_proposer("classical", {}), out_h5=tmp_path / "x.h5",
                              overlay_png=tmp_path / "x.png", **KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_higher_tau_contain_keeps_more_masks(tmp_path: Path):
    frames = [make_frame(i, seed=i) for i in range(2)]
    kept = {}
    at_min_area = {"min_area_frac": KW["min_area"] / (48 * 64)}  # no proposal under the filter's min_area
    for tau in (0.5, 0.8, 1.0):
        res = run_sam_keyframes(scene_of(frames), build_proposer("classical", at_min_area),
                                out_h5=tmp_path / f"{tau}.h5", **{**KW, "tau_contain": tau})
        kept[tau] = [s.kept for s in res.stats]
    assert all(a <= b <= c for a, b, c in zip(kept[0.5], kept[0.8], kept[1.0]))
    assert kept[1.0] == [s.proposals for s in res.stats]  # tau 1: nothing is "more than" fully contained
