"""Res16UNet backbone on the pure-PyTorch backend: levels, order, determinism, gradients, strict loading."""

from __future__ import annotations

import pytest
import torch

from gcseg.errors import ArtifactError, ConfigError, InputError
from gcseg.models.backbone import RES16UNET34C, RES16UNET_TINY, Res16UNet, res16unet34c
from gcseg.models.state import load_state_strict
from gcseg.models.voxelize import scatter_mean, voxelize


def _cloud(n: int = 1500, seed: int = 0):
    """Two batch items of points on two planes (a floor and a wall), 5 cm voxels."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 3, generator=g) * 1.5
    pts[: n // 2, 2] = 0.0
    pts[n // 2:, 0] = 0.3
    batch = torch.randint(0, 2, (n,), generator=g)
    vox = voxelize(pts, 0.05, batch)
    feats = scatter_mean(torch.rand(n, 3, generator=g), vox.inverse, vox.num_voxels)
    return vox.coords, feats


def _tiny(seed: int = 0, **kw) -> Res16UNet:
    torch.manual_seed(seed)
    return Res16UNet(3, RES16UNET_TINY["planes"], RES16UNET_TINY["layers"], "torch", **kw)


def test_levels_coarse_to_fine_with_level_coordinates():
    coords, feats = _cloud()
    out = _tiny()(coords, feats)
    assert out.strides == (16, 8, 4, 2, 1)
    assert [f.shape[1] for f, _ in out.levels] == [64, 64, 48, 32, 32]
    for (f, c), s in zip(out.levels[:-1], out.strides[:-1]):
        expected = torch.unique(torch.cat([coords[:, :1], torch.div(coords[:, 1:], s, rounding_mode="floor")], 1),
                                dim=0)
        assert torch.equal(c, expected) and f.shape[0] == c.shape[0]
    assert torch.equal(out.levels[-1][1], coords)
    assert out.out is out.levels[-1][0] and out.out.shape == (coords.shape[0], 32)


def test_output_follows_input_row_order():
    coords, feats = _cloud(seed=1)
    model = _tiny().eval()
    perm = torch.randperm(coords.shape[0], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = model(coords, feats).out
        b = model(coords[perm], feats[perm]).out
    torch.testing.assert_close(a[perm], b, rtol=1e-5, atol=1e-5)


def test_deterministic_given_seed_and_trains():
    coords, feats = _cloud(seed=3)
    m1, m2 = _tiny(seed=7), _tiny(seed=7)
    for (k1, v1), (k2, v2) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    o1, o2 = m1(coords, feats), m2(coords, feats)
    assert torch.equal(o1.out, o2.out)
    loss = sum(f.square().mean() for f, _ in o1.levels)
    loss.backward()
    grads = [p.grad for p in m1.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert all(float(g.abs().sum()) > 0 for g in grads)


def test_res16unet34c_configuration():
    model = res16unet34c(3, "torch")
    assert model.planes == RES16UNET34C["planes"] and model.layers == RES16UNET34C["layers"]
    assert model.conv0p1s1.weight.shape == (125, 3, 32)  # conv0 kernel 5 (Mask3D conv1_kernel_size)
    assert abs(sum(p.numel() for p in model.parameters()) - 37.9e6) < 0.1e6


def test_bad_inputs_and_configs():
    model = _tiny()
    with pytest.raises(InputError, match="empty"):
        model(torch.zeros(0, 4, dtype=torch.int64), torch.zeros(0, 3))
    coords, feats = _cloud(200)
    with pytest.raises(InputError, match="features"):
        model(coords, feats[:, :2])
    with pytest.raises(InputError, match="single voxel at stride 2"):  # 4 voxels in one 2x2x2 cell, training mode
        model(torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), torch.rand(4, 3))
    with pytest.raises(ConfigError, match="8 positive planes"):
        Res16UNet(3, (16, 32), (1, 1), "torch")
    with pytest.raises(ConfigError, match="backend"):
        Res16UNet(3, RES16UNET_TINY["planes"], RES16UNET_TINY["layers"], "spconv")


def test_load_state_strict(tmp_path):
    src = _tiny(seed=1)
    dst = _tiny(seed=2)
    load_state_strict(dst, src.state_dict(), tmp_path / "ok.pt")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    wider = Res16UNet(3, (16, 32, 48, 64, 64, 48, 32, 40), RES16UNET_TINY["layers"], "torch")
    with pytest.raises(ArtifactError, match=r"shape mismatches \[.*block8") as err:
        load_state_strict(dst, wider.state_dict(), tmp_path / "wider.pt")
    assert "wider.pt" in str(err.value)
    deeper = Res16UNet(3, RES16UNET_TINY["planes"], (1, 2, 1, 1, 1, 1, 1, 1), "torch")
    with pytest.raises(ArtifactError, match=r"unexpected keys \[block2\.1\."):
        load_state_strict(dst, deeper.state_dict(), "deeper.pt")
    with pytest.raises(ArtifactError, match=r"missing keys \[block2\.1\."):
        load_state_strict(deeper, dst.state_dict(), "tiny.pt")
