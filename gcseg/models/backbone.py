"""Res16UNet sparse 3D UNet backbone (Mask3D's ``Res16UNet34C`` family), on either sparse backend.

Layout (Mask3D ``models/res16unet.py``, after Choy et al.'s SpatioTemporalSegmentation): conv0 (kernel 5 or 3,
stride 1) -> 4 down stages (k2s2 strided conv + BN + ReLU, then ``layers[i]`` BasicBlocks with ``planes[i]``
channels) -> 4 up stages (k2s2 transposed conv to ``planes[4 + i]`` + BN + ReLU, concat the skip of the same
level, BasicBlocks). All convolutions without bias, BatchNorm momentum ``bn_momentum`` (Mask3D: 0.02).

Configurations:

* ``RES16UNET34C`` (GPU / paper): planes (32, 64, 128, 256, 256, 128, 96, 96), layers (2, 3, 4, 6, 2, 2, 2, 2),
  voxel 0.02 m, conv0 kernel 5; 37.9 M parameters.
* ``RES16UNET_TINY`` (CPU default for tests and smoke runs): planes (16, 32, 48, 64, 64, 48, 32, 32),
  layers (1, 1, 1, 1, 1, 1, 1, 1).

The weights are backend-independent (see :mod:`gcseg.sparse.common`): a state_dict trained with
``backend="minkowski"`` loads into ``backend="torch"`` and vice versa.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gcseg.errors import ConfigError, InputError
from gcseg.sparse import get_backend, resolve_backend
from gcseg.sparse.common import BatchNorm, DownConv, ReLU, SparseTensor, SubmConv, UpConv, cat, check_coords

RES16UNET34C = {"planes": (32, 64, 128, 256, 256, 128, 96, 96), "layers": (2, 3, 4, 6, 2, 2, 2, 2)}
RES16UNET_TINY = {"planes": (16, 32, 48, 64, 64, 48, 32, 32), "layers": (1, 1, 1, 1, 1, 1, 1, 1)}


@dataclass(frozen=True)
class BackboneOutput:
    """Multi-scale backbone features.

    ``levels``: ``[(feats [V_l, C_l], coords LongTensor[V_l, 4])]`` ordered coarse -> fine, at voxel strides
    ``strides`` = (16, 8, 4, 2, 1); coords = (batch, x, y, z) in the level's own voxel units
    (``floor(input_coord / stride)``). Rows of the coarser levels are sorted lexicographically by coords; the
    finest level's rows are the input voxels in input order.
    ``out``: ``[V, C_out]`` features per input voxel, input order (= ``levels[-1][0]``; ``C_out = planes[7]``).
    """

    levels: list[tuple[Tensor, Tensor]]
    out: Tensor
    strides: tuple[int, ...] = (16, 8, 4, 2, 1)


class BasicBlock(nn.Module):
    """ResNet basic block: (conv3-BN-ReLU-conv3-BN) + shortcut (1x1 conv + BN if channels change), ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, bn_momentum: float):
        super().__init__()
        self.conv1 = SubmConv(inplanes, planes, 3)
        self.norm1 = BatchNorm(planes, momentum=bn_momentum)
        self.conv2 = SubmConv(planes, planes, 3)
        self.norm2 = BatchNorm(planes, momentum=bn_momentum)
        self.relu = ReLU()
        self.downsample = (nn.Sequential(SubmConv(inplanes, planes, 1), BatchNorm(planes, momentum=bn_momentum))
                           if inplanes != planes else None)

    def forward(self, x: SparseTensor) -> SparseTensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return out.replace(torch.relu(out.feats + residual.feats))


def _stage(inplanes: int, planes: int, blocks: int, bn_momentum: float) -> nn.Sequential:
    layers = [BasicBlock(inplanes, planes, bn_momentum)]
    layers += [BasicBlock(planes, planes, bn_momentum) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class Res16UNet(nn.Module):
    """Sparse residual UNet; ``forward(coords [V, 4], feats [V, in_channels]) -> BackboneOutput``.

    ``backend``: ``"auto" | "minkowski" | "torch"`` (resolved per input device, see
    :func:`gcseg.sparse.resolve_backend`: ``auto`` is MinkowskiEngine on CPU where it is installed, else torch).
    Parameters and their names do not depend on the backend.
    """

    def __init__(self, in_channels: int, planes: Sequence[int], layers: Sequence[int], backend: str,
                 bn_momentum: float = 0.02, conv0_kernel_size: int = 5):
        super().__init__()
        planes, layers = tuple(int(p) for p in planes), tuple(int(n) for n in layers)
        if len(planes) != 8 or len(layers) != 8 or min(planes) < 1 or min(layers) < 1:
            raise ConfigError(f"Res16UNet needs 8 positive planes and 8 positive layer counts, got planes={planes}, "
                              f"layers={layers}", fix="e.g. planes (32, 64, 128, 256, 256, 128, 96, 96), "
                                                      "layers (2, 3, 4, 6, 2, 2, 2, 2) (Res16UNet34C)")
        if in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {in_channels}")
        if conv0_kernel_size not in (3, 5):
            raise ConfigError(f"conv0_kernel_size must be 3 or 5, got {conv0_kernel_size}")
        if not 0.0 < bn_momentum <= 1.0:
            raise ConfigError(f"bn_momentum must be in (0, 1], got {bn_momentum}")
        resolve_backend(backend)  # an unknown name or a missing MinkowskiEngine fails here, not at the first forward
        self.backend = backend  # resolved per forward, on the input's device
        self.in_channels, self.planes, self.layers = in_channels, planes, layers
        self.out_channels = planes[7]
        m = bn_momentum
        init_dim = planes[0]

        self.conv0p1s1 = SubmConv(in_channels, init_dim, conv0_kernel_size)
        self.bn0 = BatchNorm(init_dim, momentum=m)
        self.conv1p1s2 = DownConv(init_dim, init_dim)
        self.bn1 = BatchNorm(init_dim, momentum=m)
        self.block1 = _stage(init_dim, planes[0], layers[0], m)
        self.conv2p2s2 = DownConv(planes[0], planes[0])
        self.bn2 = BatchNorm(planes[0], momentum=m)
        self.block2 = _stage(planes[0], planes[1], layers[1], m)
        self.conv3p4s2 = DownConv(planes[1], planes[1])
        self.bn3 = BatchNorm(planes[1], momentum=m)
        self.block3 = _stage(planes[1], planes[2], layers[2], m)
        self.conv4p8s2 = DownConv(planes[2], planes[2])
        self.bn4 = BatchNorm(planes[2], momentum=m)
        self.block4 = _stage(planes[2], planes[3], layers[3], m)

        self.convtr4p16s2 = UpConv(planes[3], planes[4])
        self.bntr4 = BatchNorm(planes[4], momentum=m)
        self.block5 = _stage(planes[4] + planes[2], planes[4], layers[4], m)
        self.convtr5p8s2 = UpConv(planes[4], planes[5])
        self.bntr5 = BatchNorm(planes[5], momentum=m)
        self.block6 = _stage(planes[5] + planes[1], planes[5], layers[5], m)
        self.convtr6p4s2 = UpConv(planes[5], planes[6])
        self.bntr6 = BatchNorm(planes[6], momentum=m)
        self.block7 = _stage(planes[6] + planes[0], planes[6], layers[6], m)
        self.convtr7p2s2 = UpConv(planes[6], planes[7])
        self.bntr7 = BatchNorm(planes[7], momentum=m)
        self.block8 = _stage(planes[7] + init_dim, planes[7], layers[7], m)
        self.relu = ReLU()

    def forward(self, coords: Tensor, feats: Tensor) -> BackboneOutput:
        check_coords(coords)
        if feats.dim() != 2 or feats.shape != (coords.shape[0], self.in_channels):
            raise InputError(f"backbone features must be ({coords.shape[0]}, {self.in_channels}), "
                             f"got {tuple(feats.shape)}", fix="one row of in_channels features per voxel")
        ctx = get_backend(self.backend, coords.device.type).make_context(coords)
        x = ctx.input(feats)
        r = self.relu

        out_p1 = r(self.bn0(self.conv0p1s1(x)))
        out_b1p2 = self.block1(r(self.bn1(self.conv1p1s2(out_p1))))
        out_b2p4 = self.block2(r(self.bn2(self.conv2p2s2(out_b1p2))))
        out_b3p8 = self.block3(r(self.bn3(self.conv3p4s2(out_b2p4))))
        out_p16 = self.block4(r(self.bn4(self.conv4p8s2(out_b3p8))))

        out_p8 = self.block5(cat(r(self.bntr4(self.convtr4p16s2(out_p16))), out_b3p8))
        out_p4 = self.block6(cat(r(self.bntr5(self.convtr5p8s2(out_p8))), out_b2p4))
        out_p2 = self.block7(cat(r(self.bntr6(self.convtr6p4s2(out_p4))), out_b1p2))
        out_p1 = self.block8(cat(r(self.bntr7(self.convtr7p2s2(out_p2))), out_p1))

        levels = [ctx.output(t) for t in (out_p16, out_p8, out_p4, out_p2, out_p1)]
        return BackboneOutput(levels=levels, out=levels[-1][0])


def res16unet34c(in_channels: int, backend: str, bn_momentum: float = 0.02) -> Res16UNet:
    """Mask3D's Res16UNet34C (GPU configuration, voxel 0.02 m)."""
    return Res16UNet(in_channels, RES16UNET34C["planes"], RES16UNET34C["layers"], backend, bn_momentum)
