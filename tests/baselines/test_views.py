"""The shared input of the baselines: point association per view, mask boundaries, the Instances container."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.baselines.views import Instances, collect_views, mask_boundary
from gcseg.lifting import VoteAccumulator


def test_views_read_the_same_ids_as_the_pipelines_lifting(box_scene, views_of):
    views = views_of(box_scene)
    pv = collect_views(box_scene.coord, views, max_dist=0.05)
    acc = VoteAccumulator(box_scene.coord, max_dist=0.05, association="point")
    for f, m in views:
        acc.add(f, m)
    point, ids, count = acc.votes()
    # the accumulator's votes are the per-view readings summed over views (the projection may round a point
    # sitting on a pixel border the other way in float32 vs float64: allow one reading in a thousand)
    key = pv.point.astype(np.int64) << 32 | pv.label
    u, c = np.unique(key, return_counts=True)
    mine = dict(zip(u.tolist(), c.tolist()))
    theirs = dict(zip(((point << 32) | ids).tolist(), count.tolist()))
    differ = sum(abs(mine.get(k, 0) - theirs.get(k, 0)) for k in set(mine) | set(theirs))
    assert differ <= 0.001 * count.sum(), differ
    assert np.all(np.diff(pv.view) >= 0) and pv.num_views == len(views) and pv.num_points == len(box_scene.coord)
    assert not pv.boundary.any()  # not asked for


def test_mask_boundary_only_between_two_masks():
    ids = np.zeros((5, 6), np.int64)
    ids[:, :3] = 1
    ids[:, 3:5] = 2  # column 5 stays background
    b = mask_boundary(ids, 1)
    assert b[:, 2].all() and b[:, 3].all()  # where 1 meets 2
    assert not b[:, :2].any() and not b[:, 4:].any()  # mask next to background is no boundary
    assert not mask_boundary(ids, 0).any()


def test_collect_views_rejects_bad_id_maps(box_scene):
    f = box_scene.frames[0]
    with pytest.raises(ValueError, match="id map"):
        collect_views(box_scene.coord, [(f, np.zeros((3, 3), np.int64))], max_dist=0.05)
    with pytest.raises(ValueError, match="id map"):
        collect_views(box_scene.coord, [(f, np.zeros(f.hw, np.float32))], max_dist=0.05)
    with pytest.raises(ValueError, match="max_dist"):
        collect_views(box_scene.coord, [], max_dist=0.0)


def test_instances_order_and_dense():
    inst = Instances.from_lists(6, [np.array([4, 1]), np.array([0]), np.array([2, 3, 5])], [0.2, 0.9, 0.2])
    assert inst.scores.tolist() == pytest.approx([0.9, 0.2, 0.2])  # descending, ties in creation order
    d = inst.dense()
    assert d.tolist() == [[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1]]
    lab = Instances.from_labels(np.array([0, 2, 2, 1, 0]), np.array([0.3, 0.6]))
    assert lab.dense().tolist() == [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0]] and lab.scores.tolist() == pytest.approx([0.6, 0.3])
