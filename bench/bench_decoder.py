"""The decoder's masked cross-attention at inference, old and new formulation side by side on the same inputs.

At inference every query attends to every voxel of a level (params.yaml `model.test_attn_voxels: null`) under
Mask3D's attention mask: a query may attend where its previous mask's mean logit over the voxel is >= 0. The mask
used to be pooled with a float gather + index_add + division on every level (the finest level's pooling is the
identity), stored as bool and repeated per head, and nn.MultiheadAttention converted each head's copy to an
additive float mask. Now (gcseg.models.decoder.MaskDecoder._blocked / _head_mask) the finest level takes the sign
per superpoint and spreads it with a bool gather, and the additive mask is built once and shared by the heads (a
stride-0 expand). Both must give the same attention output bit for bit (`outputs_equal`); the ratio is the time of
one mask + attention call, new over old (interleaved medians).

Shapes: the default model (params.yaml `model:`: hidden_dim 64, 4 heads) on a room like the embedded default's
finest level (~60 k voxels, ~5 900 superpoints) with the query chunk test_attn_mb 256 allows; quick: a small room.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHUNK_MB = 256.0  # params.yaml model.test_attn_mb


def _old_mask(prev, voxel_sp, heads):  # the formulation before: float gather, pooling, division, per-head bool
    import torch

    vox = prev[:, voxel_sp]
    n = vox.shape[1]
    par = torch.arange(n)
    summed = prev.new_zeros(len(prev), n).index_add_(1, par, vox)
    blocked = (summed / torch.bincount(par, minlength=n).clamp_min(1).to(summed.dtype)) < 0
    blocked[blocked.all(1)] = False
    return blocked.unsqueeze(0).repeat_interleave(heads, dim=0)


def run(quick: bool) -> dict[str, float | int | str | bool]:
    import gcseg  # noqa: F401  (kernel pins before torch)
    import torch

    from bench.bench_sparse import _interleaved_medians
    from gcseg.determinism import configure_torch
    from gcseg.models.decoder import MaskDecoder

    configure_torch()
    voxels, sps, dim, heads = (3_000, 300, 64, 4) if quick else (60_000, 5_900, 64, 4)
    g = torch.Generator().manual_seed(0)
    dec = MaskDecoder(level_channels=[8], mask_channels=8, hlevels=[0], num_decoders=1, hidden_dim=dim,
                      num_queries=8, num_heads=heads, ffn_dim=2 * dim, dropout=0.0, max_attn_voxels=voxels,
                      test_attn_mb=CHUNK_MB).eval()
    queries = min(4_000, dec.query_chunk(1, voxels, voxels) or 4_000)
    attn = dec.cross[0].attn
    prev = torch.randn(queries, sps, generator=g) - 0.5  # per-superpoint mask logits, most of a room blocked
    voxel_sp = torch.randint(0, sps, (voxels,), generator=g)
    q = torch.randn(1, queries, dim, generator=g)
    kv = torch.randn(1, voxels, dim, generator=g)
    keys = torch.arange(voxels)
    out: dict[str, torch.Tensor] = {}

    def old() -> None:
        with torch.inference_mode():
            out["old"] = attn(q, kv, kv, attn_mask=_old_mask(prev, voxel_sp, heads), need_weights=False)[0]

    def new() -> None:
        with torch.inference_mode():
            blocked = MaskDecoder._blocked(prev, None, voxels, keys, voxel_sp).unsqueeze(0)
            out["new"] = attn(q, kv, kv, attn_mask=dec._head_mask(blocked, q.dtype), need_weights=False)[0]

    med = _interleaved_medians({"old": old, "new": new}, reps=3 if quick else 5)
    return {"voxels": voxels, "superpoints": sps, "queries_per_call": queries, "heads": heads,
            "old_s": round(med["old"], 4), "new_s": round(med["new"], 4),
            "time_ratio_new_over_old": round(med["new"] / med["old"], 3),
            "outputs_equal": bool(torch.equal(out["old"], out["new"]))}
