"""A training step's bookkeeping, old and new formulation side by side on the same inputs.

Every training step draws crops (gcseg.train.dataset: crop box, instance ids renumbered 0..K-1, the crop's
superpoint ids compacted in gcseg.models.voxelize.superpoint_pool) and pools each query's previous mask onto the
keys of every coarse decoder level (gcseg.models.decoder.MaskDecoder._blocked). The data path used np.unique
(a sort of every point) and reductions over a strided (N, 2) view; it now counts (gcseg.ids) and reduces per
column. The coarse levels' pooling summed every fine voxel into every level row before the key subsample took
800 of them; it now sums only the voxels under a key (`_key_sums`). Both must give the same outputs bit for bit
(`*_equal`); ratios are new over old (interleaved medians).

Shapes: a reference cloud like the embedded default's rooms (~300 k points, ~60 instances, ~6 000 superpoints) and
a Stage 2 batch (2 crops of ~7 500 fine voxels, 300 queries, a stride-2 level of ~2 500 rows per crop, 800 keys);
quick: a tenth of the points.
"""

from __future__ import annotations


def _old_crop_and_ids(coord, inst, sp, size, rng):  # type: ignore[no-untyped-def]
    import numpy as np

    ext = coord[:, :2].max(0) - coord[:, :2].min(0)
    keep = None
    if not (ext <= size).all():
        labelled = np.flatnonzero(inst >= 0)
        c = coord[labelled[rng.integers(len(labelled))], :2]
        keep = (np.abs(coord[:, :2] - c) <= size / 2).all(1)
    ids, inv = np.unique(inst, return_inverse=True)
    lab = np.where(ids >= 0, np.cumsum(ids >= 0) - 1, -1)[inv.reshape(-1)]
    return keep, lab.astype(np.int64), np.unique(sp, return_inverse=True)[1].reshape(-1)


def _new_crop_and_ids(coord, inst, sp, size, rng):  # type: ignore[no-untyped-def]
    from gcseg.ids import compact_ids, compact_labels
    from gcseg.train.dataset import random_crop_mask

    return random_crop_mask(coord, inst, size, rng), compact_labels(inst), compact_ids(sp)


def run(quick: bool) -> dict[str, float | int | str | bool]:
    import gcseg  # noqa: F401  (kernel pins before torch)
    import numpy as np
    import torch

    from bench.bench_sparse import _interleaved_medians
    from gcseg.determinism import configure_torch
    from gcseg.models.decoder import MaskDecoder

    configure_torch()
    points = 30_000 if quick else 300_000
    rng = np.random.default_rng(0)
    coord = (rng.random((points, 3)) * np.array([8.0, 6.0, 2.5])).astype(np.float32)
    inst = rng.integers(-1, 60, points)
    sp = rng.integers(0, points // 50, points)
    out: dict[str, tuple] = {}

    def data_old() -> None:
        out["data_old"] = _old_crop_and_ids(coord, inst, sp, 3.0, np.random.default_rng(1))

    def data_new() -> None:
        out["data_new"] = _new_crop_and_ids(coord, inst, sp, 3.0, np.random.default_rng(1))

    g = torch.Generator().manual_seed(0)
    fine, rows, keys_n, queries, sps = (750, 250, 80, 30, 120) if quick else (7_500, 2_500, 800, 300, 1_200)
    prev = torch.randn(queries, sps, generator=g)
    voxel_sp = torch.randint(0, sps, (fine,), generator=g)
    par = rows + torch.randint(0, rows, (fine,), generator=g)  # the batch's second crop: level rows rows..2 rows
    keys = rows + torch.randperm(rows, generator=g)[:keys_n]

    def pool_old() -> None:  # every level row pooled, then the keys' columns
        out["pool_old"] = (prev.new_zeros(queries, 2 * rows).index_add_(1, par, prev[:, voxel_sp])[:, keys],)

    def pool_new() -> None:
        out["pool_new"] = (MaskDecoder._key_sums(prev, par, 2 * rows, keys, voxel_sp),)

    reps = 5 if quick else 9
    med = _interleaved_medians({"data_old": data_old, "data_new": data_new}, reps)
    med.update(_interleaved_medians({"pool_old": pool_old, "pool_new": pool_new}, reps))
    data_equal = all(np.array_equal(a, b) for a, b in zip(out["data_old"], out["data_new"]))
    return {"points": points, "fine_voxels": fine, "level_rows": rows, "keys": keys_n, "queries": queries,
            **{f"{k}_s": round(v, 5) for k, v in med.items()},
            "data_time_ratio_new_over_old": round(med["data_new"] / med["data_old"], 3),
            "pool_time_ratio_new_over_old": round(med["pool_new"] / med["pool_old"], 3),
            "data_outputs_equal": bool(data_equal),
            "pool_outputs_equal": bool(torch.equal(out["pool_old"][0], out["pool_new"][0]))}
