"""MinkowskiEngine 0.5.4 sparse convolution backend (the reference implementation Mask3D / Segment3D use).

Importing this module imports MinkowskiEngine (ImportError if it is missing: callers go through
:func:`gcseg.sparse.resolve_backend`). The weights stay in the shared layout of :mod:`gcseg.sparse.common`, which
is MinkowskiEngine's own kernel order, and are passed straight to ``MinkowskiConvolution(Transpose)Function``;
so the modules (and their state_dicts) are the same objects as with the pure-PyTorch backend.

Coordinates: MinkowskiEngine keeps level ``l`` coordinates as multiples of the tensor stride ``2**l`` in input
units; :meth:`Context.coords` converts them to level units. Row order is MinkowskiEngine's (hash map) order
internally; :meth:`Context.input` / :meth:`Context.output` map to and from the documented orders (level 0: the
caller's input order; coarser levels: sorted lexicographically).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

# OpenBLAS threads oversubscribe the cores beside torch's OpenMP threads (20-30 % slower on 2 cores); the variable
# is read when MinkowskiEngine loads libopenblas, i.e. on the import below. An explicit user setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

with warnings.catch_warnings():  # "compiled with CPU_ONLY flag": expected here, the backend is CPU-only
    warnings.simplefilter("ignore", UserWarning)
    import MinkowskiEngine as ME  # noqa: E402

from MinkowskiEngine.MinkowskiConvolution import (  # noqa: E402
    MinkowskiConvolutionFunction,
    MinkowskiConvolutionTransposeFunction,
)
from MinkowskiEngine.MinkowskiCoordinateManager import CoordinateManager  # noqa: E402
from MinkowskiEngineBackend._C import ConvolutionMode, CoordinateMapKey, CoordinateMapType  # noqa: E402
from torch import Tensor  # noqa: E402

from gcseg.errors import InputError  # noqa: E402
from gcseg.sparse.common import SparseTensor, check_coords  # noqa: E402

NAME = "minkowski"
_DIM = 3


@contextlib.contextmanager
def _one_openmp_thread() -> Iterator[None]:
    """Run MinkowskiEngine's coordinate hashing and kernel-map building on one OpenMP thread.

    Its CPU hash map inserts rows and kernel-map pairs with ``omp atomic capture``: with several threads the row
    order of coarse levels and the order of the pairs (hence the order of every sum in the backward) change from
    run to run, and so do the gradients' last bits. ME finds OpenMP through libtorch's libgomp, so
    ``torch.set_num_threads`` governs it. The conv GEMMs go to OpenBLAS (one thread, above) and torch's own ops
    outside these calls keep their threads.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _kernel(kernel_size: int, stride: int) -> ME.KernelGenerator:
    return ME.KernelGenerator(kernel_size=kernel_size, stride=stride, dilation=1, dimension=_DIM)


def _lexsort(coords: Tensor) -> Tensor:
    """Row order sorting ``(V, 4)`` int64 coordinates lexicographically (stable sorts, last key first)."""
    order = torch.arange(coords.shape[0], device=coords.device)
    for col in (3, 2, 1, 0):
        order = order[torch.sort(coords[order, col], stable=True).indices]
    return order


class Context:
    """One forward pass's MinkowskiEngine coordinate manager and the coordinate map key of every level."""

    name = NAME

    def __init__(self, coords: Tensor):
        coords = check_coords(coords)
        if coords.device.type != "cpu":
            raise InputError("this MinkowskiEngine build is CPU-only", fix="use backend: torch on GPU tensors")
        with _one_openmp_thread():
            self.manager = CoordinateManager(D=_DIM, coordinate_map_type=CoordinateMapType.CPU)
            key, (unique_index, inverse) = self.manager.insert_and_map(coords.int(), [1] * _DIM, "")
        if unique_index.shape[0] != coords.shape[0]:
            raise InputError("voxel coordinates contain duplicates",
                             fix="pass unique voxels (gcseg.models.voxelize.voxelize) and pool features per voxel")
        self._n = coords.shape[0]
        self._keys: dict[int, CoordinateMapKey] = {0: key}
        self._me_to_input = unique_index.long()  # ME row r holds input row _me_to_input[r]
        self._input_to_me = inverse.long()  # input row i lives in ME row _input_to_me[i]
        self._coords0 = coords
        self._sorted: dict[int, tuple[Tensor, Tensor]] = {}

    def coords(self, level: int) -> Tensor:
        """Voxel coordinates ``(V_l, 4)`` of a level in level units, in MinkowskiEngine's row order."""
        if level == 0:
            return self._coords0[self._me_to_input]
        c = self.manager.get_coordinates(self._keys[level]).long()
        c[:, 1:] = torch.div(c[:, 1:], 2**level, rounding_mode="floor")
        return c

    def input(self, feats: Tensor) -> SparseTensor:
        if feats.dim() != 2 or feats.shape[0] != self._n:
            raise InputError(f"features must be (V, C) with V = {self._n} voxels, got {tuple(feats.shape)}",
                             fix="pass one feature row per voxel coordinate")
        return SparseTensor(feats.index_select(0, self._me_to_input), 0, self)

    def output(self, x: SparseTensor) -> tuple[Tensor, Tensor]:
        """(features, level-unit coordinates): level 0 in input order, coarser levels sorted."""
        if x.level == 0:
            return x.feats.index_select(0, self._input_to_me), self._coords0
        if x.level not in self._sorted:
            c = self.coords(x.level)
            order = _lexsort(c)
            self._sorted[x.level] = (order, c[order])
        order, c = self._sorted[x.level]
        return x.feats.index_select(0, order), c

    def subm_conv(self, x: SparseTensor, weight: Tensor, kernel_size: int) -> Tensor:
        key = self._keys[x.level]
        with _one_openmp_thread():
            return MinkowskiConvolutionFunction.apply(x.feats, weight, _kernel(kernel_size, 1),
                                                      ConvolutionMode.DEFAULT, key, key, self.manager)

    def down_conv(self, x: SparseTensor, weight: Tensor) -> Tensor:
        out_key = self._keys.get(x.level + 1) or CoordinateMapKey(_DIM + 1)  # empty key: ME creates the map
        with _one_openmp_thread():
            out = MinkowskiConvolutionFunction.apply(x.feats, weight, _kernel(2, 2), ConvolutionMode.DEFAULT,
                                                     self._keys[x.level], out_key, self.manager)
        self._keys[x.level + 1] = out_key
        return out

    def up_conv(self, x: SparseTensor, weight: Tensor) -> Tensor:
        if x.level - 1 not in self._keys:
            raise ValueError(f"transposed convolution to level {x.level - 1}, which was never downsampled")
        with _one_openmp_thread():
            return MinkowskiConvolutionTransposeFunction.apply(x.feats, weight, _kernel(2, 2),
                                                               ConvolutionMode.DEFAULT, self._keys[x.level],
                                                               self._keys[x.level - 1], self.manager)


def make_context(coords: Tensor) -> Context:
    """Coordinate context for level-0 voxel coordinates ``LongTensor[V, 4]`` (unique)."""
    return Context(coords)
