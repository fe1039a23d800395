"""Pure-PyTorch sparse convolution backend (no compiled extension; autograd gives the backward).

Voxel hashing by sorting: coordinates are linearised into one int64 key inside a padded bounding box (so a
neighbour offset never wraps into another row of the box), sorted once per level, and looked up with
``torch.searchsorted``. Per forward pass a :class:`Context` caches, per level, the coordinates, sorted keys,
submanifold kernel maps (per kernel size, shared by every conv of that level) and the stride-2 parent map
(shared by the strided conv going down and the transposed conv coming back up).

Row order: level 0 keeps the caller's row order; level ``l >= 1`` rows are sorted lexicographically by
(batch, x, y, z) (they come out of ``torch.unique``).

Convolutions (weight layout and offset order: :mod:`gcseg.sparse.common`):

* submanifold: centre offset as one dense matmul, the other offsets as one gather of all (offset, input row)
  pairs, one matmul per offset on contiguous slices, and one ``index_add`` into the output rows;
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

    def delta(self, offsets: Tensor) -> Tensor:
        """Key difference of each spatial offset ``(K, 3)``."""
        s = torch.tensor(self.strides[1:], dtype=torch.int64, device=offsets.device)
        return (offsets * s).sum(dim=1)


@dataclass(frozen=True)
class _KernelMap:
    """Submanifold pairs ``out[out_rows] += x[in_rows] @ W[k]`` grouped by offset ``k`` (centre excluded)."""

    in_rows: Tensor
    out_rows: Tensor
    ks: tuple[int, ...]  # kernel index of each non-empty group
    sizes: tuple[int, ...]  # rows per group (in_rows/out_rows are the groups concatenated)
    center: int


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
        """Submanifold kernel map of a level (cached: every conv of that level and size reuses it)."""
        cache_key = (level, kernel_size)
        if cache_key in self._subm:
            return self._subm[cache_key]
        self.coords(level)
        keys = self._keys[level]
        sorted_keys, perm = self._sorted[level]
        offsets = kernel_offsets(kernel_size).to(self.device)
        k_total = offsets.shape[0]
        center = k_total // 2
        # Offsets k and K-1-k are opposite, so the pairs of k > centre are those of K-1-k swapped:
        # look up only the first half, in one batched searchsorted.
        deltas = self._box(level).delta(offsets[:center])
        queries = keys.unsqueeze(0) + deltas.unsqueeze(1)  # (center, V)
        pos = torch.searchsorted(sorted_keys, queries).clamp_(max=sorted_keys.shape[0] - 1)
        hit = sorted_keys[pos] == queries
        half_out, half_in = [], []
        for k in range(center):
            rows = hit[k].nonzero().squeeze(1)
            src = pos[k, rows]
            half_out.append(rows)
            half_in.append(src if perm is None else perm[src])
        ins = half_in + [half_out[k] for k in reversed(range(center))]
        outs = half_out + [half_in[k] for k in reversed(range(center))]
        ks = list(range(center)) + list(range(center + 1, k_total))
        counts = [int(t.shape[0]) for t in ins]
        empty = torch.empty(0, dtype=torch.int64, device=self.device)
        keep = [i for i, n in enumerate(counts) if n]
        km = _KernelMap(torch.cat([ins[i] for i in keep]) if keep else empty,
                        torch.cat([outs[i] for i in keep]) if keep else empty, *_groups(counts, ks), center)
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
        km = self.subm_map(x.level, kernel_size)
        feats = x.feats
        out = feats @ weight[km.center]
        if not km.ks:
            return out
        msg = _grouped_matmul(feats.index_select(0, km.in_rows), weight, km.ks, km.sizes)
        return out.index_add(0, km.out_rows, msg)

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


def make_context(coords: Tensor) -> Context:
    """Coordinate context for level-0 voxel coordinates ``LongTensor[V, 4]`` (unique)."""
    return Context(coords)
