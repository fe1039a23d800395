"""voxelize / scatter_mean: unique sorted voxels, point -> voxel map, per-voxel means, errors."""

from __future__ import annotations

import pytest
import torch

from gcseg.errors import ConfigError, InputError
from gcseg.models.voxelize import scatter_mean, voxelize


def test_voxels_unique_sorted_and_inverse_consistent():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(500, 3, generator=g) * 2 - 1  # negative coordinates too
    batch = torch.randint(0, 3, (500,), generator=g)
    v = voxelize(pts, 0.25, batch)
    assert v.coords.dtype == torch.int64 and v.coords.shape[1] == 4
    assert torch.equal(v.coords, torch.unique(v.coords, dim=0))  # unique + lexicographically sorted
    expected = torch.cat([batch[:, None], torch.floor(pts.double() / 0.25).long()], 1)
    assert torch.equal(v.coords[v.inverse], expected)
    assert v.num_voxels == v.coords.shape[0] < 500


def test_deterministic_under_point_permutation():
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(300, 3, generator=g)
    perm = torch.randperm(300, generator=g)
    a, b = voxelize(pts, 0.1), voxelize(pts[perm], 0.1)
    assert torch.equal(a.coords, b.coords)
    assert torch.equal(a.inverse[perm], b.inverse)


def test_scatter_mean():
    inverse = torch.tensor([0, 2, 0, 2, 2])
    feat = torch.tensor([[1.0], [2.0], [3.0], [4.0], [6.0]], requires_grad=True)
    out = scatter_mean(feat, inverse, 4)
    assert out[:, 0].tolist() == [2.0, 0.0, 4.0, 0.0]  # empty voxels are 0, not nan
    out.sum().backward()
    assert feat.grad[:, 0].tolist() == pytest.approx([0.5, 1 / 3, 0.5, 1 / 3, 1 / 3])


def test_errors():
    with pytest.raises(InputError, match="empty"):
        voxelize(torch.zeros(0, 3), 0.02)
    with pytest.raises(ConfigError, match="voxel_size"):
        voxelize(torch.zeros(4, 3), 0.0)
    with pytest.raises(InputError, match="inf/nan"):
        voxelize(torch.tensor([[0.0, float("nan"), 0.0]]), 0.02)
    with pytest.raises(InputError, match="batch"):
        voxelize(torch.zeros(4, 3), 0.02, torch.zeros(3, dtype=torch.int64))
