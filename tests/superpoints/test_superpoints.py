"""gcseg.superpoints: the oversegmentation never crosses separate objects, is deterministic, follows FH on a
tiny graph, and rejects bad input; the artifact refuses superpoints of another cloud."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import ArtifactError, ConfigError, InputError
from gcseg.superpoints import (SuperpointConfig, compute_superpoints, felzenszwalb_graph, first_occurrence_ids,
                               read_superpoints, scannet_segments, write_superpoints)


def box_surface(center, size, spacing, color, rng):
    """Points on the 6 faces of an axis-aligned box (about `spacing` apart), one colour with a little noise."""
    pts = []
    for ax in range(3):
        o = [i for i in range(3) if i != ax]
        na, nb = (max(2, int(size[j] / spacing)) for j in o)
        a, b = np.meshgrid(np.linspace(-0.5, 0.5, na) * size[o[0]], np.linspace(-0.5, 0.5, nb) * size[o[1]])
        for s in (-0.5, 0.5):
            p = np.zeros((a.size, 3))
            p[:, ax] = s * size[ax]
            p[:, o[0]], p[:, o[1]] = a.ravel(), b.ravel()
            pts.append(p)
    p = np.concatenate(pts) + center + rng.normal(0, 0.001, (sum(len(x) for x in pts), 3))
    c = np.clip(np.asarray(color) + rng.normal(0, 3, (len(p), 3)), 0, 255).astype(np.uint8)
    return p.astype(np.float32), c


def two_boxes(gap: float, same_color: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    p1, c1 = box_surface(np.array([0.0, 0, 0.2]), np.array([0.4, 0.4, 0.4]), 0.02, [200, 40, 40], rng)
    col2 = [200, 40, 40] if same_color else [40, 60, 200]
    p2, c2 = box_surface(np.array([0.4 + gap, 0, 0.2]), np.array([0.4, 0.4, 0.4]), 0.02, col2, rng)
    return np.concatenate([p1, p2]), np.concatenate([c1, c2]), np.r_[np.zeros(len(p1), int), np.ones(len(p2), int)]


@pytest.mark.parametrize("gap,same_color", [(0.10, True), (0.03, False), (0.015, False)])
def test_two_boxes_never_share_a_superpoint(gap, same_color):
    coord, color, obj = two_boxes(gap, same_color)
    sp = compute_superpoints(coord, color)
    assert sp.dtype == np.int32 and sp.shape == (len(coord),)
    for s in np.unique(sp):
        assert len(np.unique(obj[sp == s])) == 1, f"superpoint {s} spans both boxes (gap {gap})"
    # an oversegmentation, not one segment per point: a box face is a handful of superpoints
    assert 2 <= sp.max() + 1 < len(coord) / 20


def test_deterministic_and_ids_by_first_occurrence():
    coord, color, _ = two_boxes(0.05)
    a = compute_superpoints(coord, color)
    b = compute_superpoints(coord.copy(), color.copy())
    assert a.tobytes() == b.tobytes()
    first = [int(np.flatnonzero(a == s)[0]) for s in range(a.max() + 1)]
    assert first == sorted(first) and a[0] == 0


def test_partition_does_not_depend_on_point_order():
    coord, color, _ = two_boxes(0.05)
    perm = np.random.default_rng(3).permutation(len(coord))
    a = compute_superpoints(coord, color)
    b = compute_superpoints(coord[perm], color[perm])
    # the same points are grouped together (ids differ by renaming only)
    pairs = np.unique(np.c_[a[perm], b], axis=0)
    assert len(pairs) == a.max() + 1 == b.max() + 1


def _fh_reference(n, edges, k, min_size):
    """Felzenszwalb-Huttenlocher as published, plain Python: the check for the compiled one."""
    parent, size, thr = list(range(n)), [1] * n, [k] * n

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b, w in sorted(edges, key=lambda e: e[2]):
        x, y = find(a), find(b)
        if x != y and w <= thr[x] and w <= thr[y]:
            parent[y] = x
            size[x] += size[y]
            thr[x] = w + k / size[x]
    for a, b, w in sorted(edges, key=lambda e: e[2]):
        x, y = find(a), find(b)
        if x != y and (size[x] < min_size or size[y] < min_size):
            parent[y] = x
            size[x] += size[y]
    return first_occurrence_ids(np.array([find(i) for i in range(n)]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_graph_segmentation_matches_the_published_algorithm(seed):
    rng = np.random.default_rng(seed)
    n = 60
    a = rng.integers(0, n, 300)
    b = rng.integers(0, n, 300)
    w = rng.random(300).round(3) + np.where(a // 20 != b // 20, 1.0, 0.0)  # three weakly linked clusters
    got = felzenszwalb_graph(n, a, b, w, k_thresh=0.3, min_size=3)
    want = _fh_reference(n, list(zip(a.tolist(), b.tolist(), w.tolist())), 0.3, 3)
    assert np.array_equal(got, want)


def test_bad_input():
    with pytest.raises(InputError):
        compute_superpoints(np.zeros((0, 3), np.float32), None)
    with pytest.raises(InputError):
        compute_superpoints(np.array([[0, 0, np.nan]], np.float32), None)
    with pytest.raises(InputError):
        compute_superpoints(np.zeros((5, 2), np.float32), None)
    with pytest.raises(InputError):
        compute_superpoints(np.zeros((5, 3), np.float32), np.zeros((4, 3), np.uint8))
    with pytest.raises(ConfigError):
        SuperpointConfig(min_size=0)
    with pytest.raises(InputError):
        felzenszwalb_graph(3, np.array([0]), np.array([5]), np.array([0.1]), k_thresh=1, min_size=1)
    # a single point is one superpoint
    assert compute_superpoints(np.zeros((1, 3), np.float32), None).tolist() == [0]


def test_scannet_segments_renumbered():
    assert scannet_segments(np.array([907, 907, 12, 5000, 12])).tolist() == [0, 0, 1, 2, 1]


def test_artifact_roundtrip_and_foreign_cloud(tmp_path):
    coord, color, _ = two_boxes(0.05)
    sp = compute_superpoints(coord, color)
    path = tmp_path / "s.h5"
    write_superpoints(path, "s", {"reference": (coord, sp)}, method="felzenszwalb", config={"voxel": 0.01})
    assert np.array_equal(read_superpoints(path, "reference", coord), sp)
    moved = coord.copy()
    moved[0, 0] += 0.01
    with pytest.raises(ArtifactError, match="another cloud"):
        read_superpoints(path, "reference", moved)
    with pytest.raises(ArtifactError, match="no superpoints"):
        read_superpoints(path, "kf_000010")
