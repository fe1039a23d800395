"""Superpoint region growing (SAI3D) on scenes with known answers, and its building blocks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gcseg.baselines.sai3d import (Sai3dConfig, affinity, grow_regions, merge_small, neighbour_layers, sai3d,
                                   view_features)
from gcseg.baselines.views import collect_views


def _run(scene, views, cfg=None):
    pv = collect_views(scene.coord, views, max_dist=0.05)
    return sai3d(scene.coord, scene.superpoints(), pv, cfg)


def test_objects_seen_from_crossing_views_grow_into_one_each(box_scene, views_of, match):
    inst = _run(box_scene, views_of(box_scene))
    masks = inst.dense()
    for obj in (2, 3, 4):
        k, iou = match(masks, box_scene.instance == obj)
        assert iou > 0.85, (obj, iou)
        assert inst.scores[k] > 0.9  # one mask covers it in every view
    for m in masks:
        share = np.bincount(box_scene.instance[m], minlength=5)[2:] / max(m.sum(), 1)
        assert (share > 0.1).sum() <= 1, share


def test_a_part_never_joins_its_neighbours_region(box_scene, views_of, match):
    """The leg and B are one mask in one view, the table two parts in another: the leg's affinity to B stays
    low over the other views, so the leg never grows into B's region."""
    inst = _run(box_scene, views_of(box_scene, split=(2,), leg_with_b=(5,)))
    masks = inst.dense()
    leg = box_scene.part == 22
    k_b, iou_b = match(masks, box_scene.instance == 3)
    assert iou_b > 0.85
    assert (masks[k_b] & leg).sum() <= 0.05 * leg.sum()
    k_a, iou_a = match(masks, box_scene.instance == 2)
    assert iou_a > 0.8 and (masks[k_a] & leg).sum() > 0.9 * leg.sum()  # the leg stays with its table


def test_tracked_ids_across_views_need_no_consistency(box_scene, views_of, match):
    """SAI3D compares histograms within a view only: relabelling every view's ids changes nothing."""
    views = views_of(box_scene)
    shuffled = [(f, np.where(m > 0, (m * (7 + f.index)) % 97 + 1, 0)) for f, m in views]
    a, b = _run(box_scene, views), _run(box_scene, shuffled)
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.points, b.points)
    assert np.allclose(a.scores, b.scores)


def test_affinity_is_the_visibility_weighted_cosine():
    """Two primitives, two views: in view 0 both read one id (cosine 1, seen 1 and 0.5), in view 1 they read
    different ids (cosine 0, seen 1 and 1): affinity = (1 * 0.5 + 0 * 1) / (0.5 + 1)."""
    from gcseg.baselines.views import PointViews

    prim = np.array([0, 0, 1, 1])
    pv = PointViews(num_points=4, frames=np.array([0, 1]), view=np.array([0, 0, 0, 1, 1, 1, 1], np.int32),
                    point=np.array([0, 1, 2, 0, 1, 2, 3], np.int32), label=np.array([5, 5, 5, 1, 1, 2, 2]),
                    boundary=np.zeros(7, bool))
    w, seen = view_features(prim, 2, pv)
    assert seen.tolist() == [[1.0, 1.0], [0.5, 1.0]]
    assert affinity(np.array([0]), np.array([1]), w, seen)[0] == pytest.approx(0.5 / 1.5)


def test_region_growing_respects_the_threshold_and_hops():
    """A chain 0-1-2-3 (equal sizes): affinities 0.9, 0.6, 0.9; at 0.8 two regions, at 0.5 one."""
    num = 4
    knn = np.array([[0, 1], [1, 2], [2, 3], [3, 2]])
    prim = np.arange(num)
    layers = neighbour_layers(prim, knn, num, 2)
    assert layers[0].toarray().astype(int).tolist() == [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
    assert layers[1][0, 2] and not layers[1][0, 3] and not layers[1][0, 0]
    a = np.zeros((num, num))
    a[0, 1] = a[2, 3] = 0.9
    a[1, 2] = 0.6
    adj = sp.csr_matrix(a + a.T)
    count = np.ones(num)
    assert grow_regions(layers, adj, count, 0.8, 0.5).tolist() == [1, 1, 2, 2]
    # at 0.5: 2 joins (0.6 to 1, 0 to 0 at hop 2 with weight 0.5: 0.6 / 1.5 = 0.4 < 0.5): still apart
    assert grow_regions(layers, adj, count, 0.5, 0.5).tolist() == [1, 1, 2, 2]
    assert grow_regions(layers, adj, count, 0.35, 0.5).tolist() == [1, 1, 1, 1]


def test_small_regions_merge_into_their_best_neighbour_or_vanish():
    labels = np.array([1, 1, 2, 3, 4])
    count = np.array([300.0, 300.0, 50.0, 20.0, 500.0])
    a = np.zeros((5, 5))
    a[2, 1], a[2, 4] = 0.2, 0.7  # region 2 is small, closest to region 4
    adj = sp.csr_matrix(a + a.T)  # region 3 is small with no affinity: dropped
    assert merge_small(labels, adj, count, 200, 2).tolist() == [1, 1, 4, 0, 4]


def test_deterministic_and_rejects_bad_superpoints(box_scene, views_of):
    a = _run(box_scene, views_of(box_scene, split=(2,)))
    b = _run(box_scene, views_of(box_scene, split=(2,)))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.scores, b.scores)
    pv = collect_views(box_scene.coord, views_of(box_scene), max_dist=0.05)
    with pytest.raises(ValueError, match="superpoints"):
        sai3d(box_scene.coord, box_scene.superpoints()[:-1], pv)
    with pytest.raises(ValueError, match="non-negative"):
        sai3d(box_scene.coord, box_scene.superpoints() - 1, pv)
    with pytest.raises(ValueError, match="thresholds"):
        Sai3dConfig(thresholds=())
