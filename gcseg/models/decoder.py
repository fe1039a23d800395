"""Mask3D-style transformer query decoder (Schult et al. 2023; Segment3D uses the same module).

Per decoder layer: masked cross-attention from the queries to one backbone level's voxel features (the mask
comes from the previous layer's prediction, average-pooled onto that level), then self-attention among the
queries, then an FFN (post-norm, as Mask3D's ``CrossAttentionLayer``/``SelfAttentionLayer``/``FFNLayer``).
After the initial queries and after every layer the head predicts per-query mask logits (dot product of a query
embedding with per-voxel mask features) and a 2-way objectness logit (object, no-object), so that every layer
gets an auxiliary loss.

Batching: the voxels of all scenes are concatenated with a batch column (coords[:, 0]); queries are per scene,
keys are padded per scene and padding is masked. To bound CPU cost, in training each layer attends to a random
subsample of at most ``max_attn_voxels`` voxels of its level per scene (Mask3D samples ``sample_sizes`` points per
level the same way); the subsample is drawn from a per-scene seed so that a scene gets the same draw wherever (which
rank, which batch) it is processed. In eval mode every voxel is a key (Mask3D at evaluation), or at most
``test_attn_voxels`` drawn the same way. Then the attention runs over chunks of queries sized so that one chunk's
attention matrix and its previous masks pooled onto the fine voxels (for the attention mask) stay under
``test_attn_mb`` (queries attend independently: the same result, bounded memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# distance unit of the seeded queries' spatial extent, in voxels: with the initial rate softplus(0) ~ 0.7 a mask
# logit drops by ~0.7 at this distance from the seed, so masks start compact (25 cm at 5 cm voxels) and grow as
# the rate is learned. Measured (docs/model_study.md, one seed): 5 vs 20 voxels, Stage 1 val AP50 0.127 vs 0.097
EXTENT_UNIT_VOXELS = 5.0


@dataclass
class Prediction:
    """One layer's prediction for a batch of B scenes with Q queries each.

    logits: float [B, Q, 2] (index 0 = object, 1 = no-object); masks: per scene float [Q, V_b] logits over
    that scene's finest voxels (in the order of the scene's rows in the batched voxel tensor), or [Q, S_b] over
    its superpoints when the model predicts on superpoints. seeds: per scene LongTensor [Q], the superpoint
    each query was seeded at (superpoint queries only; the seeded matcher reads it), else None. iou: float [B, Q]
    logits of each mask's predicted IoU with its object (the IoU head, `iou_head`), else None.
    """

    logits: Tensor
    masks: list[Tensor]
    seeds: list[Tensor] | None = None
    iou: Tensor | None = None


@dataclass
class SuperpointPool:
    """How the voxels of a batch pool onto superpoints (gcseg.models.superpoint_pool builds it).

    Per scene b: ``pair_sp``/``pair_vox``/``pair_w`` [P_b]: superpoint, scene-local voxel row and weight (share
    of the superpoint's points in that voxel; the weights of a superpoint sum to 1), ``num_sp`` S_b,
    ``centroid`` [S_b, 3] in voxel units (the coords' units), ``voxel_sp`` [V_b] the superpoint holding most
    of each voxel's points."""

    pair_sp: list[Tensor]
    pair_vox: list[Tensor]
    pair_w: list[Tensor]
    num_sp: list[int]
    centroid: list[Tensor]
    voxel_sp: list[Tensor]

    def to(self, dev: torch.device) -> SuperpointPool:
        return SuperpointPool([x.to(dev) for x in self.pair_sp], [x.to(dev) for x in self.pair_vox],
                              [x.to(dev) for x in self.pair_w], list(self.num_sp),
                              [x.to(dev) for x in self.centroid], [x.to(dev) for x in self.voxel_sp])

    def pool(self, b: int, feats: Tensor) -> Tensor:
        """Mean of scene b's voxel features [V_b, C] over each superpoint's points -> [S_b, C]."""
        w = self.pair_w[b].to(feats.dtype)[:, None]
        return feats.new_zeros(self.num_sp[b], feats.shape[1]).index_add_(0, self.pair_sp[b],
                                                                           feats[self.pair_vox[b]] * w)


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
    def forward(self, tgt: Tensor, query_pos: Tensor, chunk: int | None = None) -> Tensor:
        """`chunk`: attend with at most this many queries at a time (every query still attends to all)."""
        q = tgt + query_pos
        n = q.shape[1]
        if chunk is None or chunk >= n:
            out = self.attn(q, q, tgt, need_weights=False)[0]
        else:
            out = torch.cat([self.attn(q[:, s: s + chunk], q, tgt, need_weights=False)[0]
                             for s in range(0, n, chunk)], 1)
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


def farthest_point_sample(xyz: Tensor, k: int, start: int = 0) -> Tensor:
    """Indices of k farthest-point samples of xyz [M, 3], starting at index `start` (deterministic).

    With fewer than k points the sample cycles (queries then share positions, as Mask3D does with repeats)."""
    m = xyz.shape[0]
    if m == 0:
        raise ValueError("farthest point sampling of an empty point set")
    k_eff = min(k, m)
    idx = torch.zeros(k_eff, dtype=torch.long)
    dist = torch.full((m,), float("inf"))
    cur = int(start) % m
    for i in range(k_eff):
        idx[i] = cur
        dist = torch.minimum(dist, ((xyz - xyz[cur]) ** 2).sum(-1))
        cur = int(torch.argmax(dist))
    if k_eff < k:
        idx = idx[torch.arange(k) % k_eff]
    return idx


def random_sample(m: int, k: int, gen: torch.Generator) -> Tensor:
    """k distinct indices of range(m) drawn uniformly with `gen` (cycling when m < k, as farthest_point_sample)."""
    if m == 0:
        raise ValueError("sampling seeds from an empty set")
    idx = torch.randperm(m, generator=gen)[:k]
    return idx[torch.arange(k) % len(idx)] if len(idx) < k else idx


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
        queries: "learned" (learned query features and positions, the spec), "fps" (Segment3D/Mask3D's
            non-parametric queries: FPS-sampled voxel positions with Fourier encodings, features start at zero) or
            "superpoint" (OneFormer3D/SPFormer: seeded at FPS-sampled superpoint centroids, the query feature is
            the seed superpoint's pooled feature; needs a SuperpointPool).
    """

    def __init__(self, *, level_channels: list[int], mask_channels: int, hlevels: list[int], num_decoders: int,
                 hidden_dim: int, num_queries: int, num_heads: int, ffn_dim: int, dropout: float,
                 max_attn_voxels: int, queries: str = "learned", pos_seed: int = 0, test_queries: int | None = None,
                 seed_sampling: str = "fps", test_attn_voxels: int | None = None,
                 test_attn_mb: float | None = None, iou_head: bool = False):
        super().__init__()
        bad = [h for h in hlevels if not 0 <= h < len(level_channels)]
        if bad:
            raise ValueError(f"hlevels {bad} out of range for a backbone with {len(level_channels)} levels")
        self.hlevels = list(hlevels)
        self.num_decoders = num_decoders
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.max_attn_voxels = max_attn_voxels
        self.test_attn_voxels = test_attn_voxels  # None: every voxel of the level in eval mode (Mask3D is_eval)
        self.test_attn_mb = test_attn_mb  # None: every query at once in eval mode
        if queries not in ("learned", "fps", "superpoint"):
            raise ValueError(f"queries must be learned, fps or superpoint, got {queries!r}")
        self.queries = queries
        self.test_queries = test_queries
        if seed_sampling not in ("fps", "random"):
            raise ValueError(f"seed_sampling must be fps or random, got {seed_sampling!r}")
        self.seed_sampling = seed_sampling
        self.pos_enc = FourierPosEnc(hidden_dim, seed=pos_seed)
        if queries in ("fps", "superpoint"):
            self.query_projection = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        if queries == "superpoint":
            self.query_feat_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
            # per-query spatial extent: a seeded query's mask logit drops with the squared distance of a superpoint
            # from the seed, at a rate the query predicts (ISBNet/DyCo3D feed the mask head positions relative
            # to the instance's seed for the same reason: instances are compact around their seed)
            self.extent = nn.Linear(hidden_dim, 1)
        if queries == "learned":
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
        # created last: the other modules draw the same initial weights with and without it
        self.iou_embed = MLP(hidden_dim, hidden_dim, 1, 2) if iou_head else None  # SPFormer out_score

    @property
    def num_layers(self) -> int:
        return self.num_decoders * len(self.hlevels)

    def query_chunk(self, batch: int, keys: int, fine: int = 0) -> int | None:
        """Queries per attention call: in eval mode as many as keep one call's attention weights (batch x heads x
        chunk x keys float32) plus its previous masks pooled onto a scene's `fine` voxels (chunk x fine float32, the
        attention mask's source) under test_attn_mb; None = all at once (training: gradients need them anyway)."""
        if self.training or self.test_attn_mb is None:
            return None
        per_query = 4 * (batch * self.num_heads * max(keys, 1) + fine)
        return max(1, int(self.test_attn_mb * 2**20 // per_query))

    def _head(self, q: Tensor, mask_feats: list[Tensor], seed_sp: list[Tensor] | None,
              sq_dist: list[Tensor] | None = None) -> Prediction:
        qn = self.norm(q)
        emb = self.mask_embed(qn)
        masks = [emb[b] @ mf.T for b, mf in enumerate(mask_feats)]
        if sq_dist is not None:  # superpoint queries: [Q, S] squared distances from the seed
            rate = F.softplus(self.extent(qn))  # [B, Q, 1]
            masks = [m - rate[b] * sq_dist[b] for b, m in enumerate(masks)]
        iou = None if self.iou_embed is None else self.iou_embed(qn).squeeze(-1)
        return Prediction(self.class_embed(qn), masks, seed_sp, iou)

    def forward(self, levels: list[tuple[Tensor, Tensor]], strides: list[int], out: Tensor, coords: Tensor,
                seeds: list[int], sp: SuperpointPool | None = None, random_start: bool = False
                ) -> list[Prediction]:
        """Run the decoder.

        Arguments:
            levels: backbone levels (feats [V_l, C_l], coords [V_l, 4]) coarse -> fine.
            strides: tensor stride of every level (finest = 1) in the units of `coords`.
            out: full-resolution backbone features [V, C_out], rows aligned with `coords`.
            coords: the input voxels [V, 4] (batch, x, y, z); batch ids 0..B-1.
            seeds: one seed per scene for the key subsampling (and, with random_start, the FPS start).
            sp: superpoints of the batch: masks are then predicted per superpoint (required by "superpoint"
                queries; optional otherwise).
            random_start: start the superpoint FPS at a seeded random superpoint (training) instead of the first.
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
        dev = out.device
        if self.queries == "superpoint" and sp is None:
            raise ValueError("superpoint queries need the batch's superpoints")
        if sp is not None:
            if len(sp.num_sp) != nb:
                raise ValueError(f"superpoints for {len(sp.num_sp)} scenes, batch has {nb}")
            mask_feats = [sp.pool(b, mf_all[r]) for b, r in enumerate(rows)]
        else:
            mask_feats = [mf_all[r] for r in rows]
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]

        seed_sp: list[Tensor] | None = None
        sq_dist: list[Tensor] | None = None
        nq = self.num_queries
        if self.queries == "superpoint":
            assert sp is not None
            if not self.training and self.test_queries:
                # at most one query per superpoint: more would only repeat seeds (identical queries)
                nq = min(self.test_queries, min(int(n) for n in sp.num_sp))
            qpos, qfeat, seed_sp, sq_dist = [], [], [], []
            for b in range(nb):
                c01 = (sp.centroid[b] - lo[b]) / span[b]
                if self.seed_sampling == "random":
                    pidx = random_sample(sp.num_sp[b], nq, gens[b]).to(dev)
                else:
                    start = int(torch.randint(sp.num_sp[b], (1,), generator=gens[b])) if random_start else 0
                    pidx = farthest_point_sample(c01.detach().cpu(), nq, start).to(dev)
                seed_sp.append(pidx)
                sq_dist.append((torch.cdist(sp.centroid[b][pidx], sp.centroid[b]) / EXTENT_UNIT_VOXELS) ** 2)
                qpos.append(self.query_projection(self.pos_enc(c01[pidx])))
                qfeat.append(self.query_feat_proj(mask_feats[b][pidx]))
            query_pos, q = torch.stack(qpos), torch.stack(qfeat)
        elif self.queries == "fps":
            qpos = []
            for b, r in enumerate(rows):
                pidx = farthest_point_sample(norm01(coords[r]).cpu(), self.num_queries).to(dev)
                qpos.append(self.query_projection(self.pos_enc(norm01(coords[r][pidx]))))
            query_pos = torch.stack(qpos)
            q = torch.zeros_like(query_pos)
        else:
            query_pos = self.query_pos.weight.unsqueeze(0).expand(nb, -1, -1)
            q = self.query_feat.weight.unsqueeze(0).expand(nb, -1, -1)

        # keys per scene and level: a random subsample in training (cost); at inference every voxel unless capped,
        # as Mask3D evaluates: a full room has ~5x a training crop's voxels, so a training-sized subsample would
        # see its levels 2-40x sparser than training did, by level (measured: docs/model_study.md round 13)
        key_cap = self.max_attn_voxels if self.training else self.test_attn_voxels
        # per used level: padded key indices per scene and the fine->level parent map for mask pooling
        level_keys = []
        for li, h in enumerate(self.hlevels):
            lfeat, lcoord = levels[h]
            parent = _parent_index(coords.cpu(), lcoord.cpu(), strides[h]).to(dev)
            lrows = [torch.nonzero(lcoord[:, 0] == b).squeeze(1) for b in range(nb)]
            if len(parent) == len(lcoord) and torch.equal(parent, torch.arange(len(parent), device=dev)):
                parent = None  # the finest level is the input's voxels in the input's order: no pooling
            level_keys.append((lfeat, lcoord, parent, lrows))

        preds = [self._head(q, mask_feats, seed_sp, sq_dist)]
        for rep in range(self.num_decoders):
            for li, h in enumerate(self.hlevels):
                lfeat, lcoord, parent, lrows = level_keys[li]
                mem_all = self.level_proj[li](lfeat)
                sel = []
                for b in range(nb):
                    r = lrows[b]
                    if key_cap is not None and len(r) > key_cap:
                        r = r[torch.randperm(len(r), generator=gens[b])[:key_cap].to(dev)]
                    sel.append(r)
                smax = max(len(r) for r in sel)
                hd = mem_all.shape[1]
                memory = mem_all.new_zeros(nb, smax, hd)
                pos = mem_all.new_zeros(nb, smax, hd)
                for b, r in enumerate(sel):
                    memory[b, : len(r)] = mem_all[r]
                    pos[b, : len(r)] = self.pos_enc(norm01(lcoord[r]))
                prev = preds[-1].masks
                nq = q.shape[1]
                chunk = self.query_chunk(nb, smax, max(len(r) for r in rows)) or nq
                outs = []
                for s in range(0, nq, chunk):
                    e = min(s + chunk, nq)
                    amask = torch.ones(nb, e - s, smax, dtype=torch.bool, device=dev)  # True = may not attend
                    for b, r in enumerate(sel):
                        if parent is None:  # the level's rows are the fine rows: keys as positions among the scene's
                            par, keys, width = None, torch.searchsorted(rows[b], r), len(rows[b])
                        else:
                            par, keys, width = parent[rows[b]], r, len(lcoord)
                        amask[b, :, : len(r)] = self._blocked(prev[b][s:e], par, width, keys,
                                                              None if sp is None else sp.voxel_sp[b])
                    outs.append(self.cross[li](q[:, s:e], query_pos[:, s:e], memory, pos,
                                               self._head_mask(amask, q.dtype)))
                q = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
                q = self.selfa[li](q, query_pos, self.query_chunk(nb, nq))
                q = self.ffn[li](q)
                preds.append(self._head(q, mask_feats, seed_sp, sq_dist))
        return preds

    def _head_mask(self, blocked: Tensor, dtype: torch.dtype) -> Tensor:
        """bool [B, Q, S] (True = may not attend) -> the additive float mask nn.MultiheadAttention takes,
        [B * heads, Q, S]. Converted before the per-head copies (MultiheadAttention would convert each head's copy:
        9 of the 56 s the eval stage spent in the decoder), and with one scene every head shares one copy (a stride-0
        expand). Same values as passing the bool mask, so the same outputs bit for bit."""
        add = torch.zeros(blocked.shape, dtype=dtype, device=blocked.device).masked_fill_(blocked, float("-inf"))
        if add.shape[0] == 1:
            return add.expand(self.num_heads, -1, -1)
        return add.repeat_interleave(self.num_heads, dim=0)

    @staticmethod
    def _blocked(prev: Tensor, par: Tensor | None, width: int, keys: Tensor, voxel_sp: Tensor | None) -> Tensor:
        """Mask3D's attention mask of some queries (bool [Q, len(keys)], True = may not attend): their previous mask
        logits (per voxel, or per superpoint with `voxel_sp`) averaged over each level voxel (`par`: the scene's fine
        voxel -> level row, of `width` rows), attend where sigmoid >= 0.5. With `par` None the level is the scene's
        fine voxels (`width` of them), and `keys` index those.

        `keys` are either all of the scene's rows in ascending order or a random subsample (fewer), so as many keys
        as columns means every column in order. The mean's sign is the sum's (counts are positive): never divided,
        and pooled only under the keys (`_key_sums`)."""
        if par is None:  # no pooling: the sign per element, then spread to the keys (a bool gather, not a float one)
            blocked = prev.detach() < 0
            if voxel_sp is not None:
                blocked = blocked[:, voxel_sp if len(keys) == len(voxel_sp) else voxel_sp[keys]]
            elif len(keys) != blocked.shape[1]:
                blocked = blocked[:, keys]
        else:
            blocked = MaskDecoder._key_sums(prev.detach(), par, width, keys, voxel_sp) < 0
        blocked[blocked.all(1)] = False  # a query with an empty mask attends everywhere
        return blocked

    @staticmethod
    def _key_sums(prev: Tensor, par: Tensor, width: int, keys: Tensor, voxel_sp: Tensor | None) -> Tensor:
        """Sum of the logits `prev` (per voxel, or per superpoint with `voxel_sp`) over the fine voxels of each key's
        level row (`par`: fine voxel -> level row, of `width` rows) -> [Q, len(keys)]. With fewer keys than rows
        only the voxels under a key are gathered, each key's in their order: the sums of pooling every row, bit for
        bit (index_add_ adds a column's sources in index order)."""
        if len(keys) == width:  # every row a key, in order
            return prev.new_zeros(len(prev), width).index_add_(1, par, prev if voxel_sp is None else prev[:, voxel_sp])
        col = torch.full((width,), -1, dtype=torch.long, device=par.device)
        col[keys] = torch.arange(len(keys), device=par.device)
        dest = col[par]  # fine voxel -> its key's column, -1 under no key
        under = torch.nonzero(dest >= 0).squeeze(1)  # ascending: each key's voxels in their order
        vox = prev[:, under if voxel_sp is None else voxel_sp[under]]
        return prev.new_zeros(len(prev), len(keys)).index_add_(1, dest[under], vox)
