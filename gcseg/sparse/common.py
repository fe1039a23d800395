"""Backend-independent pieces of the sparse-convolution layer.

Kernel layout (shared by every backend, so a state_dict moves between them unchanged):
a convolution weight is a tensor ``(K, C_in, C_out)``; row ``k`` of ``K = k_x * k_y * k_z`` is the kernel offset

* odd kernel size ``s`` (submanifold 3x3x3, 5x5x5): offset axis ``a`` is ``i_a - s // 2`` and
  ``k = i_x + s * i_y + s * s * i_z`` (x fastest; k = 0 is (-1,-1,-1) for s = 3, k = 1 is (0,-1,-1));
* even kernel size 2 (strided / transposed k2s2): offset axis ``a`` is the parity bit ``b_a`` of the finer voxel
  inside its coarse parent (``fine = 2 * parent + b``), ``k = b_x + 2 b_y + 4 b_z``.

This is MinkowskiEngine 0.5's own order (``src/kernel_region.hpp`` ``coordinate_at``), so the Minkowski backend
passes weights through untouched and the pure-PyTorch backend enumerates offsets the same way.
The convolution is ``out[u] = sum_k x[u + offset_k] @ W[k]`` (submanifold), as in MinkowskiEngine.

A :class:`SparseTensor` is features plus a level (tensor stride ``2**level``) plus the backend's coordinate
context; coordinates at level ``l`` are ``floor(c / 2**l)`` of the level-0 voxel coordinates ("level units").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gcseg.errors import InputError


def kernel_offsets(kernel_size: int) -> Tensor:
    """Offsets ``(K, 3)`` (level units) of a cubic kernel in the shared layout (x fastest)."""
    if kernel_size % 2 == 1:
        r = torch.arange(kernel_size) - kernel_size // 2
    elif kernel_size == 2:
        r = torch.arange(2)
    else:
        raise ValueError(f"kernel size {kernel_size} is not supported (odd sizes and 2 are)")
    z, y, x = torch.meshgrid(r, r, r, indexing="ij")  # z slowest, x fastest
    return torch.stack([x.reshape(-1), y.reshape(-1), z.reshape(-1)], dim=1)


def init_kernel_(weight: Tensor) -> Tensor:
    """Kaiming-normal init of a ``(K, C_in, C_out)`` kernel, fan-out mode (as Res16UNet / Mask3D)."""
    k, _, c_out = weight.shape
    std = math.sqrt(2.0 / (k * c_out))
    with torch.no_grad():
        return weight.normal_(0.0, std)


def check_coords(coords: Tensor, name: str = "coords") -> Tensor:
    """Validate voxel coordinates ``LongTensor[V, 4]`` (batch, x, y, z); raises InputError."""
    if not isinstance(coords, Tensor) or coords.dim() != 2 or coords.shape[1] != 4:
        shape = tuple(coords.shape) if isinstance(coords, Tensor) else type(coords).__name__
        raise InputError(f"{name} must be a tensor of shape (V, 4) = (batch, x, y, z), got {shape}",
                         fix="voxelize points with gcseg.models.voxelize.voxelize")
    if coords.dtype != torch.int64:
        raise InputError(f"{name} must be int64 voxel indices, got {coords.dtype}",
                         fix="pass Voxels.coords from gcseg.models.voxelize.voxelize")
    if coords.shape[0] == 0:
        raise InputError("the point cloud is empty (0 voxels)",
                         fix="check the input scene / crop: it must contain at least one valid point")
    if int(coords[:, 0].min()) < 0:
        raise InputError(f"{name} has negative batch indices", fix="batch ids must be 0, 1, ...")
    return coords


@dataclass(frozen=True)
class SparseTensor:
    """Features of the voxels of one level of a backend's coordinate context.

    ``feats`` rows follow the backend's row order for that level; use ``ctx.output(t)`` to get rows in a
    documented order together with their coordinates.
    """

    feats: Tensor
    level: int
    ctx: Any

    def replace(self, feats: Tensor) -> SparseTensor:
        """Same voxels, new features."""
        return SparseTensor(feats, self.level, self.ctx)


class BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over voxel features (MinkowskiBatchNorm is exactly this)."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        if self.training and x.feats.shape[0] < 2:
            raise InputError(f"BatchNorm in training mode needs >= 2 voxels, but the input has a single voxel at "
                             f"stride {2**x.level}",
                             fix="train on larger crops (more than 16 voxels across) or batch several scenes")
        return x.replace(super().forward(x.feats))


class ReLU(nn.Module):
    """ReLU on voxel features."""

    def forward(self, x: SparseTensor) -> SparseTensor:
        return x.replace(torch.relu(x.feats))


class _KernelConv(nn.Module):
    """Base of the sparse convolutions: a ``(K, C_in, C_out)`` weight (shared layout) and optional bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.weight = nn.Parameter(init_kernel_(torch.empty(kernel_size**3, in_channels, out_channels)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def _finish(self, x: SparseTensor, feats: Tensor, level: int) -> SparseTensor:
        return SparseTensor(feats if self.bias is None else feats + self.bias, level, x.ctx)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, bias={self.bias is not None}"


class SubmConv(_KernelConv):
    """Submanifold convolution (odd kernel, stride 1): output voxels = input voxels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False):
        if kernel_size % 2 != 1 or kernel_size > 7:
            raise ValueError(f"submanifold kernel size must be 1, 3, 5 or 7, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, bias)

    def forward(self, x: SparseTensor) -> SparseTensor:
        if self.kernel_size == 1:
            return self._finish(x, x.feats @ self.weight[0], x.level)
        return self._finish(x, x.ctx.subm_conv(x, self.weight, self.kernel_size), x.level)


class DownConv(_KernelConv):
    """Strided convolution, kernel 2 stride 2: level l -> l + 1 (voxels ``floor(c / 2)``)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__(in_channels, out_channels, 2, bias)

    def forward(self, x: SparseTensor) -> SparseTensor:
        return self._finish(x, x.ctx.down_conv(x, self.weight), x.level + 1)


class UpConv(_KernelConv):
    """Transposed convolution, kernel 2 stride 2: level l -> l - 1, onto the existing finer voxels."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__(in_channels, out_channels, 2, bias)

    def forward(self, x: SparseTensor) -> SparseTensor:
        if x.level < 1:
            raise ValueError("a transposed convolution needs an input at level >= 1")
        return self._finish(x, x.ctx.up_conv(x, self.weight), x.level - 1)


def cat(*tensors: SparseTensor) -> SparseTensor:
    """Channel concatenation of sparse tensors on the same voxels (UNet skip connection)."""
    first = tensors[0]
    for t in tensors[1:]:
        if t.level != first.level or t.ctx is not first.ctx:
            raise ValueError("cat needs sparse tensors of the same level and coordinate context")
    return first.replace(torch.cat([t.feats for t in tensors], dim=1))
