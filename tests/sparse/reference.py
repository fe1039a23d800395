"""Sparse-test helpers: random unique voxel sets and brute-force (Python dict) references of the convolutions.

Loaded by path from conftest.py (tests run with --import-mode=importlib); use the ``ref`` fixture."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor


def random_coords(n: int, batches: int = 2, extent: int = 12, seed: int = 0) -> Tensor:
    """About ``n`` unique voxels (batch, x, y, z) per batch mix, coordinates in [-extent, extent) (negatives on
    purpose: floor division must round down), shuffled row order."""
    g = torch.Generator().manual_seed(seed)
    c = torch.cat([torch.randint(0, batches, (2 * n, 1), generator=g),
                   torch.randint(-extent, extent, (2 * n, 3), generator=g)], dim=1)
    c = torch.unique(c, dim=0)
    c = c[torch.randperm(c.shape[0], generator=g)][:n]
    return c.contiguous()


def surface_coords(n_side: int, batches: int = 2, seed: int = 0) -> Tensor:
    """Voxels of two orthogonal noisy planes per batch item (realistic ~9/27 neighbour fill)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b in range(batches):
        u, v = torch.meshgrid(torch.arange(n_side), torch.arange(n_side), indexing="ij")
        u, v = u.reshape(-1), v.reshape(-1)
        h = torch.randint(0, 2, u.shape, generator=g)
        rows.append(torch.stack([torch.full_like(u, b), u - n_side // 2, v, h], 1))
        rows.append(torch.stack([torch.full_like(u, b), h - 3, u, v + 2], 1))
    c = torch.unique(torch.cat(rows), dim=0)
    return c[torch.randperm(c.shape[0], generator=g)].contiguous()


def offsets_me_order(size: int) -> list[tuple[int, int, int]]:
    """Kernel offsets in the documented shared order (x fastest), written independently of the library."""
    r = range(-(size // 2), size // 2 + 1) if size % 2 else range(size)
    return [(x, y, z) for z, y, x in itertools.product(r, r, r)]


def brute_subm(coords: Tensor, x: Tensor, w: Tensor, size: int) -> Tensor:
    """out[u] = sum_k x[u + o_k] @ W[k] with a Python dict (the definition)."""
    index = {tuple(c): i for i, c in enumerate(coords.tolist())}
    out = torch.zeros(coords.shape[0], w.shape[2], dtype=x.dtype)
    for i, (b, *p) in enumerate(coords.tolist()):
        for k, o in enumerate(offsets_me_order(size)):
            j = index.get((b, p[0] + o[0], p[1] + o[1], p[2] + o[2]))
            if j is not None:
                out[i] += x[j] @ w[k]
    return out


def brute_down(coords: Tensor, x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """k2s2 conv: parent = floor(c / 2), kernel index = parity bits; output rows sorted by coordinates."""
    acc: dict[tuple[int, ...], Tensor] = {}
    for i, (b, *p) in enumerate(coords.tolist()):
        par = (b, *[v // 2 for v in p])
        k = sum((v - 2 * (v // 2)) << a for a, v in enumerate(p))
        acc[par] = acc.get(par, torch.zeros(w.shape[2], dtype=x.dtype)) + x[i] @ w[k]
    keys = sorted(acc)
    return torch.tensor(keys), torch.stack([acc[k] for k in keys])


def brute_up(fine: Tensor, coarse: Tensor, x: Tensor, w: Tensor) -> Tensor:
    """Transposed k2s2: out[f] = x[parent(f)] @ W[parity(f)]."""
    index = {tuple(c): i for i, c in enumerate(coarse.tolist())}
    rows = []
    for b, *p in fine.tolist():
        k = sum((v - 2 * (v // 2)) << a for a, v in enumerate(p))
        rows.append(x[index[(b, *[v // 2 for v in p])]] @ w[k])
    return torch.stack(rows)
