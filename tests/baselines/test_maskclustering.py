"""View-consensus mask clustering (MaskClustering) on scenes with known answers, and its building blocks."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.baselines.maskclustering import (MaskClusteringConfig, _drop_contained, build_mask_graph, mask_clustering,
                                            observer_thresholds, percentile_of_counts)
from gcseg.baselines.views import PointViews, collect_views

CFG = MaskClusteringConfig()


def _run(scene, views, cfg=CFG):
    pv = collect_views(scene.coord, views, max_dist=0.05, boundary_px=cfg.boundary_px)
    return mask_clustering(scene.coord, pv, cfg)


def test_objects_seen_from_crossing_views_merge_into_one_each(box_scene, views_of, match):
    """Every view sees other faces of A, B and C; the masks of one object merge across views into one object,
    and objects never share one."""
    inst = _run(box_scene, views_of(box_scene))
    masks = inst.dense()
    for obj in (2, 3, 4):
        gt = box_scene.instance == obj
        k, iou = match(masks, gt)
        assert iou > 0.85, (obj, iou)
    for m in masks:  # no object takes a real share of two GT objects
        share = np.bincount(box_scene.instance[m], minlength=5)[2:] / max(m.sum(), 1)
        assert (share > 0.1).sum() <= 1, share
    assert np.all((inst.scores > 0) & (inst.scores <= 1))


def test_a_part_never_joins_its_neighbours_object(box_scene, views_of, match):
    """A's leg touches B. In one view the leg and B are one mask (under-segmentation across objects) and in one
    other the table comes as top + leg: the leg may join its table, never B's object."""
    inst = _run(box_scene, views_of(box_scene, split=(2,), leg_with_b=(5,)))
    masks = inst.dense()
    leg = box_scene.part == 22
    k_b, iou_b = match(masks, box_scene.instance == 3)
    assert iou_b > 0.85
    assert (masks[k_b] & leg).sum() <= 0.05 * leg.sum()
    for m in masks:  # nothing mixes the leg and B
        assert min((m & leg).sum() / leg.sum(), (m & (box_scene.instance == 3)).sum() / m.sum()) < 0.1
    k_a, iou_a = match(masks, box_scene.instance == 2)
    assert iou_a > 0.7


def test_a_mask_spanning_two_objects_is_undersegmented(box_scene):
    """A mask covering B and C in one view is split between their masks in the other views: it is dropped, and
    nothing counts as contained in it."""
    views = [(f, np.where((f.index == 7) & (f.instance == 3), 4, f.instance).astype(np.int64))
             for f in box_scene.frames]
    pv = collect_views(box_scene.coord, views, max_dist=0.05, boundary_px=1)
    g = build_mask_graph(pv, CFG)
    merged = np.unique(g.entry_mask[(pv.view == 7) & (pv.label == 4)])
    assert merged.size == 1 and merged[0] >= 0
    assert g.undersegmented[merged].all()
    assert g.contained[:, merged].nnz == 0
    inst = mask_clustering(box_scene.coord, pv, CFG)
    for m in inst.dense():  # and the two objects stay apart
        assert min((m & (box_scene.instance == 3)).sum(), (m & (box_scene.instance == 4)).sum()) < 0.1 * m.sum()


def test_confidence_is_the_detection_rate(box_scene, views_of, match):
    """C missed (no mask) in 3 of the 8 views that see it scores ~5/8; A found in every view scores 1."""
    views = [(f, np.where((f.instance == 4) & (f.index % 3 == 0), 0, f.instance).astype(np.int64))
             for f in box_scene.frames]
    inst = _run(box_scene, views)
    masks = inst.dense()
    k_c, iou_c = match(masks, box_scene.instance == 4)
    k_a, _ = match(masks, box_scene.instance == 2)
    assert iou_c > 0.8
    assert inst.scores[k_a] == pytest.approx(1.0)
    assert inst.scores[k_c] < 0.8


def test_deterministic(box_scene, views_of):
    a = _run(box_scene, views_of(box_scene, split=(2,), leg_with_b=(5,)))
    b = _run(box_scene, views_of(box_scene, split=(2,), leg_with_b=(5,)))
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.points, b.points)
    assert np.array_equal(a.scores, b.scores)


def test_no_masks_gives_no_instances(box_scene):
    views = [(f, np.zeros(f.hw, np.int64)) for f in box_scene.frames]
    assert len(_run(box_scene, views)) == 0


def test_percentile_of_counts_is_numpys():
    rng = np.random.default_rng(0)
    for _ in range(300):
        vals = rng.integers(1, rng.integers(2, 40), rng.integers(1, 80))
        hist = np.bincount(vals)
        for q in range(95, -5, -5):
            assert percentile_of_counts(hist, q) == np.percentile(vals, q)


def test_observer_thresholds_match_the_reference_rule():
    rng = np.random.default_rng(1)
    vis = rng.random((60, 9)) < 0.4
    obs = (vis.astype(int) @ vis.T.astype(int)).ravel()
    obs = obs[obs > 0]
    expected = []
    for q in range(95, -5, -5):  # graph/construction.py get_observer_num_thresholds, verbatim logic
        t = np.percentile(obs, q)
        if t <= 1:
            if q < 50:
                break
            t = 1
        expected.append(t)
    assert observer_thresholds(vis, block=7) == expected


def test_drop_contained_follows_the_reference_order():
    objs = [np.arange(0, 10), np.arange(0, 100), np.arange(50, 60), np.arange(200, 210)]
    # 0 lies inside 1 -> 0 dropped; 2 lies inside 1 -> 2 dropped; 3 overlaps nothing
    assert _drop_contained(objs, 300, 0.8) == [1, 3]
    # an object removed in its own row still removes the later ones inside it (the reference's loop): 0 lies
    # 85 % inside 1, 2 lies inside 0 only
    objs = [np.arange(0, 100), np.arange(15, 200), np.arange(0, 10)]
    assert _drop_contained(objs, 300, 0.8) == [1]
    # an object removed before its row removes nothing: 1 lies 85 % inside 0, 2 lies inside 1 only
    objs = [np.arange(0, 100), np.arange(83, 103), np.arange(100, 103)]
    assert _drop_contained(objs, 300, 0.8) == [0, 2]


def test_config_rejects_out_of_range_values():
    with pytest.raises(ValueError, match="view_consensus_threshold"):
        MaskClusteringConfig(view_consensus_threshold=1.5)
    with pytest.raises(ValueError, match="dbscan_eps"):
        MaskClusteringConfig(dbscan_eps=0.0)


def test_rejects_mismatched_points(box_scene, views_of):
    pv = collect_views(box_scene.coord, views_of(box_scene), max_dist=0.05)
    with pytest.raises(ValueError, match="coord"):
        mask_clustering(box_scene.coord[:-1], pv)


def test_empty_views_object():
    pv = PointViews(num_points=3, frames=np.zeros(0, np.int64), view=np.zeros(0, np.int32),
                    point=np.zeros(0, np.int32), label=np.zeros(0, np.int64), boundary=np.zeros(0, bool))
    assert len(mask_clustering(np.zeros((3, 3)), pv)) == 0
