"""Pure-PyTorch backend against brute-force dict references (runs without MinkowskiEngine)."""

from __future__ import annotations

import pytest
import torch

from gcseg.errors import InputError
from gcseg.sparse import torch_backend as tb
from gcseg.sparse.common import DownConv, SubmConv, UpConv, kernel_offsets


def test_kernel_offsets_follow_minkowski_order(ref):
    off = kernel_offsets(3)
    assert off.shape == (27, 3)
    assert off[0].tolist() == [-1, -1, -1] and off[1].tolist() == [0, -1, -1] and off[13].tolist() == [0, 0, 0]
    assert [tuple(o) for o in off.tolist()] == ref.offsets_me_order(3)
    assert [tuple(o) for o in kernel_offsets(5).tolist()] == ref.offsets_me_order(5)
    assert kernel_offsets(2).tolist()[:3] == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]


@pytest.mark.parametrize("size", [3, 5])
def test_submanifold_matches_brute_force(ref, tiny_coords, size):
    g = torch.Generator().manual_seed(size)
    x = torch.randn(tiny_coords.shape[0], 3, generator=g, dtype=torch.float64)
    w = torch.randn(size**3, 3, 4, generator=g, dtype=torch.float64)
    ctx = tb.make_context(tiny_coords)
    got = ctx.subm_conv(ctx.input(x), w, size)
    torch.testing.assert_close(got, ref.brute_subm(tiny_coords, x, w, size), rtol=1e-12, atol=1e-12)


def test_down_and_up_match_brute_force(ref, tiny_coords):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(tiny_coords.shape[0], 3, generator=g, dtype=torch.float64)
    w = torch.randn(8, 3, 5, generator=g, dtype=torch.float64)
    ctx = tb.make_context(tiny_coords)
    down = ctx.down_conv(ctx.input(x), w)
    ref_coords, expected = ref.brute_down(tiny_coords, x, w)
    assert torch.equal(ctx.coords(1), ref_coords)
    torch.testing.assert_close(down, expected, rtol=1e-12, atol=1e-12)
    # transposed conv back onto the level-0 voxels, in the level-0 row order
    wt = torch.randn(8, 5, 2, generator=g, dtype=torch.float64)
    from gcseg.sparse.common import SparseTensor
    up = ctx.up_conv(SparseTensor(down, 1, ctx), wt)
    torch.testing.assert_close(up, ref.brute_up(tiny_coords, ref_coords, down, wt), rtol=1e-12, atol=1e-12)


def test_modules_gradcheck(tiny_coords):
    """Autograd backward of the three convolutions equals finite differences (float64)."""
    coords = tiny_coords[:30]
    torch.manual_seed(0)
    subm, down, up = SubmConv(2, 3).double(), DownConv(3, 2).double(), UpConv(2, 2).double()

    def net(x, ws, wd, wu):
        ctx = tb.make_context(coords)
        subm.weight.data, down.weight.data, up.weight.data = ws, wd, wu
        y = subm(ctx.input(x))
        return up(down(y)).feats

    def f(x, ws, wd, wu):  # functional form: weights as inputs
        ctx = tb.make_context(coords)
        y = ctx.subm_conv(ctx.input(x), ws, 3)
        from gcseg.sparse.common import SparseTensor
        z = ctx.down_conv(SparseTensor(y, 0, ctx), wd)
        return ctx.up_conv(SparseTensor(z, 1, ctx), wu)

    x = torch.randn(coords.shape[0], 2, dtype=torch.float64, requires_grad=True)
    ws = torch.randn(27, 2, 3, dtype=torch.float64, requires_grad=True)
    wd = torch.randn(8, 3, 2, dtype=torch.float64, requires_grad=True)
    wu = torch.randn(8, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (x, ws, wd, wu), fast_mode=True)
    torch.testing.assert_close(net(x, ws.detach(), wd.detach(), wu.detach()), f(x, ws, wd, wu))


def test_kernel_maps_are_cached_per_level(ref):
    ctx = tb.make_context(ref.random_coords(200, seed=2))
    assert ctx.subm_map(0, 3) is ctx.subm_map(0, 3)
    assert ctx.down_map(0) is ctx.down_map(0)
    assert ctx.coords(2).shape[0] <= ctx.coords(1).shape[0] <= 200
    km = ctx.subm_map(1, 3)
    assert [k for k, _, _ in km.pairs] == sorted(k for k, _, _ in km.pairs) and km.center == 13
    for k, in_rows, out_rows in km.pairs:  # offset k links out_row to in_row = out_row + offset
        off = ref.offsets_me_order(3)[k]
        c = ctx.coords(1)
        assert torch.equal(c[in_rows, 1:] - c[out_rows, 1:], torch.tensor(off).expand(len(in_rows), 3))


def test_coarse_levels_sorted_and_floor_divided(ref):
    coords = ref.random_coords(300, seed=4)
    ctx = tb.make_context(coords)
    c2 = ctx.coords(2)
    expected = torch.unique(torch.cat([coords[:, :1], torch.div(coords[:, 1:], 4, rounding_mode="floor")], 1),
                            dim=0)
    assert torch.equal(c2, expected)  # torch.unique(dim=0) sorts lexicographically


def test_bad_coordinates_are_reported():
    with pytest.raises(InputError, match="empty"):
        tb.make_context(torch.zeros(0, 4, dtype=torch.int64))
    with pytest.raises(InputError, match="duplicates"):
        tb.make_context(torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]))
    with pytest.raises(InputError, match="int64"):
        tb.make_context(torch.zeros(3, 4))
    with pytest.raises(InputError, match=r"\(V, 4\)"):
        tb.make_context(torch.zeros(3, 3, dtype=torch.int64))
