"""Mask3D-style transformer query decoder (Schult et al. 2023; Segment3D uses the same module).

Per decoder layer: masked cross-attention from the queries to one backbone level's voxel features (the mask
comes from the previous layer's prediction, average-pooled onto that level), then self-attention among the
queries, then an FFN (post-norm, as Mask3D's ``CrossAttentionLayer``/``SelfAttentionLayer``/``FFNLayer``).
After the initial queries and after every layer the head predicts per-query mask logits (dot product of a query
embedding with per-voxel mask features) and a 2-way objectness logit (object, no-object), so that every layer
gets an auxiliary loss.

Batching: the voxels of all scenes are concatenated with a batch column (coords[:, 0]); queries are per scene,
keys are padded per scene and padding is masked. To bound CPU cost, each layer attends to a random subsample of
at most ``max_attn_voxels`` voxels of its level per scene (Mask3D samples ``sample_sizes`` points per level the
same way); the subsample is drawn from a per-scene seed so that a scene gets the same draw wherever (which rank,
which batch) it is processed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Prediction:
    """One layer's prediction for a batch of B scenes with Q queries each.

    logits: float [B, Q, 2] (index 0 = object, 1 = no-object); masks: per scene float [Q, V_b] logits over
    that scene's finest voxels (in the order of the scene's rows in the batched voxel tensor).
    """

    logits: Tensor
    masks: list[Tensor]


class FourierPosEnc(nn.Module):
    """Random Fourier features of coordinates normalised to [0, 1] per scene (Mask3D `PositionEmbeddingCoordsSine`,
    pos_type "fourier", gauss_scale 1). The projection is a buffer, so it is saved with the model."""

    def __init__(self, dim: int, scale: float = 1.0, seed: int = 0):
        super().__init__()
        if dim % 2:
            raise ValueError("positional encoding dim must be even")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("proj", torch.randn(3, dim // 2, generator=g) * scale)

    def forward(self, xyz01: Tensor) -> Tensor:
        z = 2 * math.pi * (xyz01 @ self.proj)
        return torch.cat([z.sin(), z.cos()], dim=-1)


class _AttentionLayer(nn.Module):
    """Multi-head attention + dropout + residual + post-norm; the subclasses differ in what attends to what."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)


class CrossAttentionLayer(_AttentionLayer):
    def forward(self, tgt: Tensor, query_pos: Tensor, memory: Tensor, pos: Tensor, attn_mask: Tensor) -> Tensor:
        out = self.attn(tgt + query_pos, memory + pos, memory, attn_mask=attn_mask, need_weights=False)[0]
        return self.norm(tgt + self.drop(out))


class SelfAttentionLayer(_AttentionLayer):
    def forward(self, tgt: Tensor, query_pos: Tensor) -> Tensor:
        q = tgt + query_pos
        out = self.attn(q, q, tgt, need_weights=False)[0]
        return self.norm(tgt + self.drop(out))


class FFNLayer(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.lin1 = nn.Linear(dim, ffn_dim)
        self.lin2 = nn.Linear(ffn_dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt: Tensor) -> Tensor:
        out = self.lin2(self.drop(F.relu(self.lin1(tgt))))
        return self.norm(tgt + self.drop(out))


class MLP(nn.Module):
    def __init__(self, dim_in: int, dim_hidden: int, dim_out: int, layers: int):
        super().__init__()
        dims = [dim_in] + [dim_hidden] * (layers - 1) + [dim_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def farthest_point_sample(xyz: Tensor, k: int) -> Tensor:
    """Indices of k farthest-point samples of xyz [M, 3], starting at index 0 (deterministic).

    With fewer than k points the sample cycles (queries then share positions, as Mask3D does with repeats)."""
    m = xyz.shape[0]
    if m == 0:
        raise ValueError("farthest point sampling of an empty point set")
    k_eff = min(k, m)
    idx = torch.zeros(k_eff, dtype=torch.long)
    dist = torch.full((m,), float("inf"))
    cur = 0
    for i in range(k_eff):
        idx[i] = cur
        dist = torch.minimum(dist, ((xyz - xyz[cur]) ** 2).sum(-1))
        cur = int(torch.argmax(dist))
    if k_eff < k:
        idx = idx[torch.arange(k) % k_eff]
    return idx


def _pack(coords: Tensor, lo: Tensor, span: Tensor) -> Tensor:
    """One int64 key per (batch, x, y, z) row, order-preserving (lexicographic)."""
    c = coords - lo
    return ((c[:, 0] * span[1] + c[:, 1]) * span[2] + c[:, 2]) * span[3] + c[:, 3]


def _parent_index(fine: Tensor, coarse: Tensor, stride: int) -> Tensor:
    """For each fine voxel (batch, x, y, z), the row of the coarse voxel containing it.

    Coarse coordinates follow MinkowskiEngine's convention (same index units as the finest level, multiples of
    the level's tensor stride). A fine voxel with no coarse parent (never happens for a UNet encoder) maps to -1.
    Packed int64 keys + searchsorted (torch.unique over rows is ~50x slower on CPU).
    """
    key_f = fine.clone()
    key_f[:, 1:] = torch.div(key_f[:, 1:], stride, rounding_mode="floor") * stride
    both = torch.cat([coarse, key_f], 0)
    lo = both.min(0).values
    span = both.max(0).values - lo + 1
    kc, kf = _pack(coarse, lo, span), _pack(key_f, lo, span)
    kc_sorted, order = torch.sort(kc)
    pos = torch.searchsorted(kc_sorted, kf).clamp_max(len(kc) - 1)
    found = kc_sorted[pos] == kf
    return torch.where(found, order[pos], torch.full_like(pos, -1))


class MaskDecoder(nn.Module):
    """Queries -> per-layer predictions over a batch of sparse voxel scenes.

    Arguments:
        level_channels: channels of every backbone level (coarse -> fine, as the backbone returns them).
        mask_channels: channels of the backbone's full-resolution output (mask features are projected from it).
        hlevels: which backbone levels the decoder layers attend to, in order (Mask3D `hlevels`).
        num_decoders: how often the stack of len(hlevels) layers is repeated with shared weights (Mask3D
            `num_decoders` with `shared_decoder: true`).
        non_parametric_queries: Segment3D/Mask3D's FPS-sampled query positions (queries start at zero) instead
            of learned query features and positions.
    """

    def __init__(self, *, level_channels: list[int], mask_channels: int, hlevels: list[int], num_decoders: int,
                 hidden_dim: int, num_queries: int, num_heads: int, ffn_dim: int, dropout: float,
                 max_attn_voxels: int, non_parametric_queries: bool = False, pos_seed: int = 0):
        super().__init__()
        bad = [h for h in hlevels if not 0 <= h < len(level_channels)]
        if bad:
            raise ValueError(f"hlevels {bad} out of range for a backbone with {len(level_channels)} levels")
        self.hlevels = list(hlevels)
        self.num_decoders = num_decoders
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.max_attn_voxels = max_attn_voxels
        self.non_parametric = non_parametric_queries
        self.pos_enc = FourierPosEnc(hidden_dim, seed=pos_seed)
        if non_parametric_queries:
            self.query_projection = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        else:
            self.query_feat = nn.Embedding(num_queries, hidden_dim)
            self.query_pos = nn.Embedding(num_queries, hidden_dim)
        self.mask_features = nn.Linear(mask_channels, hidden_dim)
        self.level_proj = nn.ModuleList(nn.Linear(level_channels[h], hidden_dim) for h in self.hlevels)
        self.cross = nn.ModuleList(CrossAttentionLayer(hidden_dim, num_heads, dropout) for _ in self.hlevels)
        self.selfa = nn.ModuleList(SelfAttentionLayer(hidden_dim, num_heads, dropout) for _ in self.hlevels)
        self.ffn = nn.ModuleList(FFNLayer(hidden_dim, ffn_dim, dropout) for _ in self.hlevels)
        self.norm = nn.LayerNorm(hidden_dim)
        self.mask_embed = MLP(hidden_dim, hidden_dim, hidden_dim, 3)
        self.class_embed = nn.Linear(hidden_dim, 2)

    @property
    def num_layers(self) -> int:
        return self.num_decoders * len(self.hlevels)

    def _head(self, q: Tensor, mask_feats: list[Tensor]) -> Prediction:
        qn = self.norm(q)
        emb = self.mask_embed(qn)
        masks = [emb[b] @ mf.T for b, mf in enumerate(mask_feats)]
        return Prediction(self.class_embed(qn), masks)

    def forward(self, levels: list[tuple[Tensor, Tensor]], strides: list[int], out: Tensor, coords: Tensor,
                seeds: list[int]) -> list[Prediction]:
        """Run the decoder.

        Arguments:
            levels: backbone levels (feats [V_l, C_l], coords [V_l, 4]) coarse -> fine.
            strides: tensor stride of every level (finest = 1) in the units of `coords`.
            out: full-resolution backbone features [V, C_out], rows aligned with `coords`.
            coords: the input voxels [V, 4] (batch, x, y, z); batch ids 0..B-1.
            seeds: one seed per scene for the key subsampling (and FPS start in training).
        Returns:
            predictions of the initial queries and of every layer (1 + num_layers), the last is the output.
        """
        bidx = coords[:, 0]
        nb = len(seeds)
        rows = [torch.nonzero(bidx == b).squeeze(1) for b in range(nb)]
        if any(len(r) == 0 for r in rows):
            raise ValueError("a scene in the batch has no voxels")
        xyz = coords[:, 1:].float()
        lo = torch.stack([xyz[r].min(0).values for r in rows])
        span = torch.stack([xyz[r].max(0).values for r in rows]) - lo
        span = span.clamp_min(1.0)  # a flat or single-voxel scene must not divide by zero

        def norm01(c: Tensor) -> Tensor:  # per-scene [0, 1] coordinates of coords c [M, 4]
            b = c[:, 0]
            return (c[:, 1:].float() - lo[b]) / span[b]

        mf_all = self.mask_features(out)
        mask_feats = [mf_all[r] for r in rows]
        dev = out.device

        if self.non_parametric:
            qpos = []
            for b, r in enumerate(rows):
                pidx = farthest_point_sample(norm01(coords[r]).cpu(), self.num_queries).to(dev)
                qpos.append(self.query_projection(self.pos_enc(norm01(coords[r][pidx]))))
            query_pos = torch.stack(qpos)
            q = torch.zeros_like(query_pos)
        else:
            query_pos = self.query_pos.weight.unsqueeze(0).expand(nb, -1, -1)
            q = self.query_feat.weight.unsqueeze(0).expand(nb, -1, -1)

        # per used level: padded key indices per scene and the fine->level parent map for mask pooling
        level_keys = []
        for li, h in enumerate(self.hlevels):
            lfeat, lcoord = levels[h]
            parent = _parent_index(coords.cpu(), lcoord.cpu(), strides[h]).to(dev)
            lrows = [torch.nonzero(lcoord[:, 0] == b).squeeze(1) for b in range(nb)]
            level_keys.append((lfeat, lcoord, parent, lrows))

        preds = [self._head(q, mask_feats)]
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        for rep in range(self.num_decoders):
            for li, h in enumerate(self.hlevels):
                lfeat, lcoord, parent, lrows = level_keys[li]
                mem_all = self.level_proj[li](lfeat)
                sel = []
                for b in range(nb):
                    r = lrows[b]
                    if len(r) > self.max_attn_voxels:
                        r = r[torch.randperm(len(r), generator=gens[b])[: self.max_attn_voxels].to(dev)]
                    sel.append(r)
                smax = max(len(r) for r in sel)
                hd = mem_all.shape[1]
                memory = mem_all.new_zeros(nb, smax, hd)
                pos = mem_all.new_zeros(nb, smax, hd)
                # True = may not attend
                amask = torch.ones(nb, self.num_queries, smax, dtype=torch.bool, device=dev)
                prev = preds[-1].masks
                for b, r in enumerate(sel):
                    memory[b, : len(r)] = mem_all[r]
                    pos[b, : len(r)] = self.pos_enc(norm01(lcoord[r]))
                    # Mask3D: average the fine mask logits over each level voxel, attend where sigmoid >= 0.5
                    fr = rows[b]
                    par = parent[fr]
                    nlev = len(lcoord)
                    summed = prev[b].new_zeros(self.num_queries, nlev).index_add_(1, par, prev[b].detach())
                    cnt = torch.bincount(par, minlength=nlev).clamp_min(1).to(summed.dtype)
                    pooled = (summed / cnt)[:, r]
                    blocked = pooled < 0
                    blocked[blocked.all(1)] = False  # a query with an empty mask attends everywhere
                    amask[b, :, : len(r)] = blocked
                amask = amask.repeat_interleave(self.num_heads, dim=0)
                q = self.cross[li](q, query_pos, memory, pos, amask)
                q = self.selfa[li](q, query_pos)
                q = self.ffn[li](q)
                preds.append(self._head(q, mask_feats))
        return preds
