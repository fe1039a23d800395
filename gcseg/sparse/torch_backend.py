"""Pure-PyTorch sparse convolution backend (no compiled extension; autograd gives the backward).

Voxel hashing by sorting: coordinates are linearised into one int64 key inside a padded bounding box (so a
neighbour offset never wraps into another row of the box), sorted once per level, and looked up with
``torch.searchsorted``. Per forward pass a :class:`Context` caches, per level, the coordinates, sorted keys,
submanifold kernel maps (per kernel size, shared by every conv of that level) and the stride-2 parent map
(shared by the strided conv going down and the transposed conv coming back up).

Row order: level 0 keeps the caller's row order; level ``l >= 1`` rows are sorted lexicographically by
(batch, x, y, z) (they come out of ``torch.unique``).

Convolutions (weight layout and offset order: :mod:`gcseg.sparse.common`):

* submanifold: centre offset as one dense matmul, then per offset gather / matmul / ``index_add_``, in a custom
  ``autograd.Function`` whose backward re-gathers instead of keeping gathered copies (memory);
* k2s2 down: rows grouped by parity bit pattern, one matmul per pattern, ``index_add`` into the parents;
* k2s2 transposed: gather the parent rows, one matmul per pattern, scatter back with one ``index_select``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gcseg.errors import InputError
from gcseg.sparse.common import SparseTensor, check_coords, kernel_offsets

NAME = "torch"
_MARGIN = 3  # box padding per side: room for the largest submanifold radius (kernel 7)
_PARITY_WEIGHTS = (1, 2, 4)  # k = b_x + 2 b_y + 4 b_z (shared layout)


@dataclass(frozen=True)
class _Box:
    """Padded bounding box of one level; linearises (batch, x, y, z) into a lexicographic int64 key."""

    lo: Tensor  # (4,) lower corner incl. margin
    strides: tuple[int, int, int, int]  # key multiplier per column

    def key(self, coords: Tensor) -> Tensor:
        s = torch.tensor(self.strides, dtype=torch.int64, device=coords.device)
        return ((coords - self.lo) * s).sum(dim=1)


@dataclass(frozen=True)
class _KernelMap:
    """Submanifold pairs ``out[out_rows] += x[in_rows] @ W[k]`` per non-empty offset ``k`` (centre excluded:
    it is the identity map)."""

    pairs: tuple[tuple[int, Tensor, Tensor], ...]  # (k, in_rows, out_rows)
    center: int
    kernel_volume: int


@dataclass(frozen=True)
class _DownMap:
    """Stride-2 map between level l (fine) and l + 1 (coarse)."""

    parent: Tensor  # (V_l,) coarse row of each fine row
    order: Tensor  # fine rows sorted by parity pattern (stable)
    inv_order: Tensor  # position of each fine row in `order`
    parent_sorted: Tensor  # parent[order]
    ks: tuple[int, ...]  # parity pattern of each non-empty group of `order`
    sizes: tuple[int, ...]  # rows per group


def _groups(counts: list[int], keys: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(kernel indices, sizes) of the non-empty groups."""
    kept = [(k, n) for k, n in zip(keys, counts) if n]
    return tuple(k for k, _ in kept), tuple(n for _, n in kept)


def _grouped_matmul(rows: Tensor, weight: Tensor, ks: tuple[int, ...], sizes: tuple[int, ...]) -> Tensor:
    """``cat_g(rows_g @ weight[k_g])`` for consecutive row groups.

    ``torch.split`` rather than slicing: the backward of a slice allocates and fills a full-size zero gradient
    per group, the backward of split is one concatenation.
    """
    parts = torch.split(rows, list(sizes))
    return torch.cat([p @ weight[k] for k, p in zip(ks, parts)])


class Context:
    """Coordinate maps of one forward pass (built lazily, cached per level and kernel size)."""

    name = NAME

    def __init__(self, coords: Tensor):
        coords = check_coords(coords)
        self.device = coords.device
        lo = coords.min(dim=0).values
        hi = coords.max(dim=0).values
        self._lo0, self._hi0 = lo, hi
        self._coords: dict[int, Tensor] = {0: coords}
        self._keys: dict[int, Tensor] = {}
        self._sorted: dict[int, tuple[Tensor, Tensor | None]] = {}  # level -> (sorted keys, perm or None)
        self._boxes: dict[int, _Box] = {}
        self._subm: dict[tuple[int, int], _KernelMap] = {}
        self._down: dict[int, _DownMap] = {}
        keys = self._box(0).key(coords)
        sorted_keys, perm = torch.sort(keys)
        if sorted_keys.numel() > 1 and bool((sorted_keys[1:] == sorted_keys[:-1]).any()):
            raise InputError("voxel coordinates contain duplicates",
                             fix="pass unique voxels (gcseg.models.voxelize.voxelize) and pool features per voxel")
        self._keys[0] = keys
        self._sorted[0] = (sorted_keys, perm)

    # ----------------------------------------------------------------- coordinates
    def _box(self, level: int) -> _Box:
        if level not in self._boxes:
            f = 2**level
            lo = self._lo0.clone()
            hi = self._hi0.clone()
            lo[1:] = torch.div(lo[1:], f, rounding_mode="floor") - _MARGIN
            hi[1:] = torch.div(hi[1:], f, rounding_mode="floor") + _MARGIN
            span = [int(v) for v in (hi - lo + 1).tolist()]
            total = span[0] * span[1] * span[2] * span[3]
            if total >= 2**62:
                raise InputError(f"voxel coordinates span too large a box ({span}) for 64-bit hashing",
                                 fix="check the voxel size and the point coordinates' units (metres)")
            strides = (span[1] * span[2] * span[3], span[2] * span[3], span[3], 1)
            self._boxes[level] = _Box(lo, strides)
        return self._boxes[level]

    def coords(self, level: int) -> Tensor:
        """Voxel coordinates ``(V_l, 4)`` of a level in level units, in this backend's row order."""
        while level not in self._coords:
            self.down_map(max(self._coords))
        return self._coords[level]

    def num_voxels(self, level: int) -> int:
        return int(self.coords(level).shape[0])

    def down_map(self, level: int) -> _DownMap:
        """Parent map level -> level + 1 (creates level + 1's coordinates on first use)."""
        if level in self._down:
            return self._down[level]
        fine = self.coords(level)
        par = fine.clone()
        par[:, 1:] = torch.div(fine[:, 1:], 2, rounding_mode="floor")
        box = self._box(level + 1)
        keys, parent = torch.unique(box.key(par), sorted=True, return_inverse=True)
        coarse = torch.empty((keys.shape[0], 4), dtype=torch.int64, device=self.device)
        coarse[parent] = par  # every write into a row carries the same value
        pw = torch.tensor(_PARITY_WEIGHTS, dtype=torch.int64, device=self.device)
        parity = ((fine[:, 1:] - 2 * par[:, 1:]) * pw).sum(dim=1)
        parity_sorted, order = torch.sort(parity, stable=True)
        counts = torch.bincount(parity_sorted, minlength=8).tolist()
        inv_order = torch.empty_like(order)
        inv_order[order] = torch.arange(order.shape[0], device=self.device)
        self._coords[level + 1] = coarse
        self._keys[level + 1] = keys
        self._sorted[level + 1] = (keys, None)
        dm = _DownMap(parent, order, inv_order, parent[order], *_groups(counts, list(range(8))))
        self._down[level] = dm
        return dm

    def subm_map(self, level: int, kernel_size: int) -> _KernelMap:
        """Submanifold kernel map of a level (cached: every conv of that level and size reuses it).

        Keys are z-fastest, so the neighbours ``dz = -r..r`` of a voxel in one (dx, dy) column are consecutive
        integers and sit, if present, in consecutive sorted positions: one ``searchsorted`` per column finds the
        first, a walk of compare-and-advance steps the rest. Offsets ``k`` and ``K-1-k`` are opposite, so only
        the first half (``dz < 0``, or ``dz = 0`` and ``(dy, dx) < (0, 0)``) is looked up; the second half is the
        first half with input and output rows swapped.
        """
        cache_key = (level, kernel_size)
        if cache_key in self._subm:
            return self._subm[cache_key]
        self.coords(level)
        keys = self._keys[level]
        sorted_keys, perm = self._sorted[level]
        n = sorted_keys.shape[0]
        s, r = kernel_size, kernel_size // 2
        k_total, center = s**3, s**3 // 2
        _, sx, sy, sz = self._box(level).strides
        found: dict[int, tuple[Tensor, Tensor]] = {}
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                steps = r + 1 if (dy, dx) < (0, 0) else r  # dz = -r .. 0 or -r .. -1
                base = keys + (dx * sx + dy * sy - r * sz)
                pos = torch.searchsorted(sorted_keys, base)
                for j in range(steps):
                    at = pos.clamp(max=n - 1)
                    hit = sorted_keys[at] == base + j * sz
                    rows = hit.nonzero().squeeze(1)
                    if rows.numel():
                        src = at[rows]
                        found[(dx + r) + s * (dy + r) + s * s * j] = (src if perm is None else perm[src], rows)
                    pos = pos + hit
        pairs = [(k, *found[k]) for k in sorted(found)]
        pairs += [(k_total - 1 - k, out_rows, in_rows) for k, in_rows, out_rows in reversed(pairs)]
        km = _KernelMap(tuple(pairs), center, k_total)
        self._subm[cache_key] = km
        return km

    # ----------------------------------------------------------------- tensors
    def input(self, feats: Tensor) -> SparseTensor:
        """Level-0 sparse tensor of per-voxel features (rows in the order of the coordinates given)."""
        if feats.dim() != 2 or feats.shape[0] != self._coords[0].shape[0]:
            raise InputError(f"features must be (V, C) with V = {self._coords[0].shape[0]} voxels, "
                             f"got {tuple(feats.shape)}", fix="pass one feature row per voxel coordinate")
        return SparseTensor(feats, 0, self)

    def output(self, x: SparseTensor) -> tuple[Tensor, Tensor]:
        """(features, coordinates in level units): level 0 in input order, coarser levels sorted."""
        return x.feats, self.coords(x.level)

    # ----------------------------------------------------------------- convolutions
    def subm_conv(self, x: SparseTensor, weight: Tensor, kernel_size: int) -> Tensor:
        return _SubmConvFunction.apply(x.feats, weight, self.subm_map(x.level, kernel_size))

    def down_conv(self, x: SparseTensor, weight: Tensor) -> Tensor:
        dm = self.down_map(x.level)
        msg = _grouped_matmul(x.feats.index_select(0, dm.order), weight, dm.ks, dm.sizes)
        n_coarse = self.num_voxels(x.level + 1)
        out = msg.new_zeros((n_coarse, weight.shape[2]))
        return out.index_add(0, dm.parent_sorted, msg)

    def up_conv(self, x: SparseTensor, weight: Tensor) -> Tensor:
        if x.level - 1 not in self._down:
            raise ValueError(f"transposed convolution to level {x.level - 1}, which was never downsampled")
        dm = self._down[x.level - 1]
        msg = _grouped_matmul(x.feats.index_select(0, dm.parent_sorted), weight, dm.ks, dm.sizes)
        return msg.index_select(0, dm.inv_order)


class _SubmConvFunction(torch.autograd.Function):
    """Submanifold convolution with a hand-written backward.

    Per offset: gather, matmul, ``index_add_`` into the output. Unlike plain autograd it keeps no gathered copies
    of the input for the backward (``E x C_in`` per conv, E ~ 9 V: gigabytes for Res16UNet34C at 100k voxels) and
    needs no concatenation; the backward gathers again.
    """

    @staticmethod
    def forward(ctx, feats: Tensor, weight: Tensor, km: _KernelMap) -> Tensor:  # type: ignore[override]
        out = feats @ weight[km.center]
        for k, in_rows, out_rows in km.pairs:
            out.index_add_(0, out_rows, feats.index_select(0, in_rows) @ weight[k])
        ctx.km = km
        ctx.save_for_backward(feats, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        feats, weight = ctx.saved_tensors
        km: _KernelMap = ctx.km
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_out = grad_out.contiguous()
        grad_x = grad_out @ weight[km.center].t() if need_x else None
        grad_w = torch.zeros_like(weight) if need_w else None
        if need_w:
            grad_w[km.center] = feats.t() @ grad_out
        for k, in_rows, out_rows in km.pairs:
            g = grad_out.index_select(0, out_rows)
            if need_x:
                grad_x.index_add_(0, in_rows, g @ weight[k].t())
            if need_w:
                grad_w[k] = feats.index_select(0, in_rows).t() @ g
        return grad_x, grad_w, None


def make_context(coords: Tensor) -> Context:
    """Coordinate context for level-0 voxel coordinates ``LongTensor[V, 4]`` (unique)."""
    return Context(coords)
