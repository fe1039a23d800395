"""Sparse convolution backends side by side: pure PyTorch vs MinkowskiEngine (CPU), on a synthetic 2 cm room
(floor, 3 walls, table, box as voxel surfaces with one-voxel jitter: ~9 of 27 neighbours occupied, as real scans).

Figures per size (20k voxels; 100k unless quick), median of the repetitions, both backends in this process:
* ``subm_<n>_<backend>_s``: 3x3x3 submanifold conv 32 -> 32, forward + backward, coordinate maps built inside
  (each training forward pass builds its maps once);
* ``subm_reused_<n>_<backend>_s``: the same with the maps already built (the cost of a conv after the first one of
  a level);
* ``downup_<n>_<backend>_s``: k2s2 strided conv 32 -> 64 + transposed conv 64 -> 32, forward + backward;
* ``train_step_<n>_<backend>_s``: the default (tiny) Res16UNet, forward + backward + Adam step;
* ``*_ratio_torch_over_minkowski``: target <= 1.3.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before MinkowskiEngine loads OpenBLAS (see dependencies)

import torch  # noqa: E402

from gcseg.models.backbone import RES16UNET_TINY, Res16UNet  # noqa: E402
from gcseg.sparse import available_backends, get_backend  # noqa: E402
from gcseg.sparse.common import SparseTensor  # noqa: E402


def room_voxels(target: int, seed: int = 0) -> torch.Tensor:
    """Unique voxel coordinates (batch 0) of a room whose surfaces hold about ``target`` voxels."""
    g = torch.Generator().manual_seed(seed)
    s = max(8, int(math.sqrt(target / 2.9)))
    h = s // 2

    def plane(axis: int, value: int, lo_a: int, hi_a: int, lo_b: int, hi_b: int) -> torch.Tensor:
        a, b = torch.meshgrid(torch.arange(lo_a, hi_a), torch.arange(lo_b, hi_b), indexing="ij")
        a, b = a.reshape(-1), b.reshape(-1)
        n = value + torch.randint(-1, 2, a.shape, generator=g) * (torch.rand(a.shape, generator=g) < 0.3)
        cols = {axis: n, (axis + 1) % 3: a, (axis + 2) % 3: b}
        return torch.stack([cols[0], cols[1], cols[2]], 1)

    t0, t1 = s // 4, s // 4 + s // 3
    parts = [
        plane(2, 0, 0, s, 0, s),  # floor (x, y)
        plane(0, 0, 0, s, 0, h),  # wall x = 0: axes (y, z)
        plane(1, 0, 0, h, 0, s),  # wall y = 0: axes (z, x)
        plane(1, s - 1, 0, h, 0, s),  # wall y = s - 1
        plane(2, h // 3, t0, t1, t0, t1),  # table top
        plane(0, s - s // 5, s // 2, s // 2 + s // 6, 0, s // 6),  # box side
        plane(2, s // 6, s - s // 5, s, s // 2, s // 2 + s // 6),  # box top
    ]
    xyz = torch.unique(torch.cat(parts), dim=0)
    return torch.cat([torch.zeros(len(xyz), 1, dtype=torch.int64), xyz], 1)


def _interleaved_medians(fns: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    """Median seconds of each function; repetitions alternate between them so that load changes on a shared
    machine hit every backend alike. One warm-up call each (allocator, first-call overheads)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def _conv_fns(backend: str, coords: torch.Tensor) -> dict[str, Callable[[], None]]:
    mod = get_backend(backend)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(coords.shape[0], 32, generator=g, requires_grad=True)
    w = (torch.randn(27, 32, 32, generator=g) * 0.05).requires_grad_()
    wd = (torch.randn(8, 32, 64, generator=g) * 0.05).requires_grad_()
    wu = (torch.randn(8, 64, 32, generator=g) * 0.05).requires_grad_()

    def subm(ctx=None):
        ctx = ctx or mod.make_context(coords)
        ctx.subm_conv(ctx.input(x), w, 3).sum().backward()

    shared = mod.make_context(coords)
    shared.subm_conv(shared.input(x), w, 3)  # builds and caches the kernel map

    def downup():
        ctx = mod.make_context(coords)
        y = ctx.down_conv(ctx.input(x), wd)
        ctx.up_conv(SparseTensor(y, 1, ctx), wu).sum().backward()

    return {"subm": subm, "subm_reused": lambda: subm(shared), "downup": downup}


def _train_step_fn(backend: str, coords: torch.Tensor) -> Callable[[], None]:
    torch.manual_seed(0)
    model = Res16UNet(3, RES16UNET_TINY["planes"], RES16UNET_TINY["layers"], backend)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    feats = torch.rand(coords.shape[0], 3, generator=torch.Generator().manual_seed(2))

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(coords, feats)
        out.out.square().mean().backward()
        opt.step()

    return step


def run(quick: bool) -> dict[str, float | int | str]:
    backends = available_backends()
    res: dict[str, float | int | str] = {"backends": ",".join(backends), "torch_threads": torch.get_num_threads()}
    sizes = [20_000] if quick else [20_000, 100_000]
    reps = 3 if quick else 7
    for target in sizes:
        coords = room_voxels(target)
        tag = f"{target // 1000}k"
        res[f"voxels_{tag}"] = int(coords.shape[0])
        fns: dict[str, Callable[[], None]] = {}
        for b in backends:
            fns.update({f"{k}_{tag}_{b}": fn for k, fn in _conv_fns(b, coords).items()})
        med = _interleaved_medians(fns, reps)
        med.update(_interleaved_medians({f"train_step_{tag}_{b}": _train_step_fn(b, coords) for b in backends},
                                        max(2, reps // 2)))
        for name, v in med.items():
            res[f"{name}_s"] = round(v, 4)
        if "minkowski" in backends:
            for k in ("subm", "subm_reused", "downup", "train_step"):
                res[f"{k}_{tag}_ratio_torch_over_minkowski"] = round(med[f"{k}_{tag}_torch"]
                                                                     / med[f"{k}_{tag}_minkowski"], 3)
    if "minkowski" not in backends:
        res["minkowski"] = "not installed: torch figures only"
    return res


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
