"""MaskDecoder on random multi-level voxel inputs: shapes, batching, masked attention, determinism."""

import torch

from gcseg.models.decoder import MaskDecoder, _parent_index, farthest_point_sample, random_sample


def _inputs(sizes=(300, 200), strides=(8, 4, 2, 1), chans=(12, 10, 8, 6)):
    g = torch.Generator().manual_seed(0)
    fine = []
    for b, n in enumerate(sizes):
        xyz = torch.unique(torch.randint(0, 24, (n, 3), generator=g), dim=0)
        fine.append(torch.cat([torch.full((len(xyz), 1), b), xyz], 1))
    coords = torch.cat(fine)
    levels = []
    for s, c in zip(strides, chans):
        lc = coords.clone()
        lc[:, 1:] = torch.div(lc[:, 1:], s, rounding_mode="floor") * s
        lc = torch.unique(lc, dim=0)
        levels.append((torch.randn(len(lc), c, generator=g), lc))
    out = torch.randn(len(coords), 6, generator=g)
    return levels, list(strides), out, coords


def _decoder(**kw):
    args = dict(level_channels=[12, 10, 8, 6], mask_channels=6, hlevels=[0, 1, 2], num_decoders=2, hidden_dim=16,
                num_queries=5, num_heads=2, ffn_dim=32, dropout=0.0, max_attn_voxels=50)
    args.update(kw)
    torch.manual_seed(0)
    return MaskDecoder(**args)


def test_shapes_and_aux_predictions():
    levels, strides, out, coords = _inputs()
    dec = _decoder()
    preds = dec(levels, strides, out, coords, seeds=[1, 2])
    assert len(preds) == 1 + 2 * 3  # initial queries + num_decoders x len(hlevels)
    nv = [int((coords[:, 0] == b).sum()) for b in range(2)]
    for p in preds:
        assert p.logits.shape == (2, 5, 2)
        assert [tuple(m.shape) for m in p.masks] == [(5, nv[0]), (5, nv[1])]
        assert all(torch.isfinite(m).all() for m in p.masks)


def test_scene_prediction_independent_of_batch_partner():
    levels, strides, out, coords = _inputs()
    dec = _decoder().eval()
    both = dec(levels, strides, out, coords, seeds=[1, 2])[-1]
    keep = coords[:, 0] == 0
    lv = [(f[c[:, 0] == 0], c[c[:, 0] == 0]) for f, c in levels]
    alone = dec(lv, strides, out[keep], coords[keep], seeds=[1])[-1]
    torch.testing.assert_close(alone.masks[0], both.masks[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone.logits[0], both.logits[0], atol=1e-5, rtol=1e-5)


def test_same_seed_same_output_and_gradients_flow():
    levels, strides, out, coords = _inputs()
    dec = _decoder()
    a = dec(levels, strides, out, coords, seeds=[3, 4])[-1]
    b = dec(levels, strides, out, coords, seeds=[3, 4])[-1]
    assert torch.equal(a.masks[1], b.masks[1])
    out.requires_grad_(True)
    sum(m.sum() for m in dec(levels, strides, out, coords, seeds=[3, 4])[-1].masks).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert dec.query_feat.weight.grad is not None


def test_non_parametric_fps_queries():
    levels, strides, out, coords = _inputs()
    dec = _decoder(queries="fps")
    p = dec(levels, strides, out, coords, seeds=[0, 0])[-1]
    assert p.logits.shape == (2, 5, 2)
    assert not hasattr(dec, "query_feat")


def test_farthest_point_sample_spreads_and_cycles():
    xyz = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [1, 0, 0], [0.5, 0, 0]])
    assert farthest_point_sample(xyz, 3).tolist() == [0, 2, 3]
    assert farthest_point_sample(xyz[:2], 4).tolist() == [0, 1, 0, 1]


def test_random_sample_is_distinct_seeded_and_cycles():
    a = random_sample(50, 20, torch.Generator().manual_seed(3))
    assert len(set(a.tolist())) == 20 and a.min() >= 0 and a.max() < 50
    assert a.tolist() == random_sample(50, 20, torch.Generator().manual_seed(3)).tolist()
    assert a.tolist() != random_sample(50, 20, torch.Generator().manual_seed(4)).tolist()
    small = random_sample(3, 7, torch.Generator().manual_seed(0))
    assert sorted(small[:3].tolist()) == [0, 1, 2] and small.tolist() == small[:3].tolist() * 2 + small[:1].tolist()


def test_parent_index_maps_fine_to_coarse_voxel():
    fine = torch.tensor([[0, 0, 0, 0], [0, 3, 1, 1], [0, 4, 0, 0], [1, 0, 0, 0], [0, -1, 0, 0]])
    coarse = torch.tensor([[0, -4, 0, 0], [0, 0, 0, 0], [0, 4, 0, 0], [1, 0, 0, 0]])
    assert _parent_index(fine, coarse, 4).tolist() == [1, 1, 2, 3, 0]


def test_eval_attends_to_every_voxel_unless_capped():
    """Training subsamples max_attn_voxels keys per level; eval mode uses every voxel (Mask3D at evaluation),
    or a seeded subsample of test_attn_voxels."""
    levels, strides, out, coords = _inputs()
    assert max(len(c) for _, c in levels) > 50  # the fine levels hold more voxels than the training cap

    def last(dec, seeds=(1, 2)):
        return dec(levels, strides, out, coords, seeds=list(seeds))[-1].masks[0]

    few, many = _decoder(max_attn_voxels=20).eval(), _decoder(max_attn_voxels=10_000).eval()
    assert torch.equal(last(few), last(many))  # max_attn_voxels is a training setting only
    assert torch.equal(last(few, (1, 2)), last(few, (7, 2)))  # no key draw at eval: the seed does not matter
    capped = _decoder(max_attn_voxels=10_000, test_attn_voxels=20).eval()
    assert not torch.equal(last(capped), last(many))
    assert torch.equal(last(capped), last(_decoder(max_attn_voxels=20, test_attn_voxels=20).eval()))
    assert not torch.equal(last(few.train()), last(many.train()))  # training still subsamples


def test_eval_attention_in_query_chunks_matches_all_at_once():
    """test_attn_mb splits the eval attention into chunks of queries (memory); queries attend independently, so
    the predictions agree up to float rounding. Training never chunks (the gradients hold every query anyway)."""
    levels, strides, out, coords = _inputs()
    whole = _decoder(num_queries=7).eval()
    tiny = _decoder(num_queries=7, test_attn_mb=1e-4).eval()  # 1e-4 MB: a query or two per attention call
    smax = max(int((c[:, 0] == b).sum()) for _, c in levels for b in range(2))
    assert tiny.query_chunk(2, smax) < 7 and whole.query_chunk(2, smax) is None
    a = whole(levels, strides, out, coords, seeds=[1, 2])
    b = tiny(levels, strides, out, coords, seeds=[1, 2])
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pb.logits, pa.logits, rtol=1e-5, atol=1e-5)
        for ma, mb in zip(pa.masks, pb.masks):
            torch.testing.assert_close(mb, ma, rtol=1e-5, atol=1e-5)
    assert tiny.train().query_chunk(2, smax) is None


def test_query_chunk_bounds_attention_weights_and_pooled_masks():
    """One chunk's attention weights (batch x heads x keys per query) and its masks pooled onto a scene's fine
    voxels (the attention mask's source: fine voxels per query) together stay under test_attn_mb."""
    dec = _decoder(num_queries=7, test_attn_mb=1.0).eval()
    heads = dec.num_heads
    assert dec.query_chunk(2, 1000) == 2**20 // (4 * 2 * heads * 1000)
    # a coarse level has few keys but the pooling reads every fine voxel: the chunk shrinks with them
    assert dec.query_chunk(1, 100, 200_000) == 2**20 // (4 * (heads * 100 + 200_000))
    assert dec.query_chunk(1, 100, 200_000) < dec.query_chunk(1, 100)
    assert dec.query_chunk(1, 10, 10**9) == 1  # at least one query per call


def _mean_blocked(prev, par, nlev, keys):
    """The attention mask as Mask3D defines it: mean logit per level voxel < 0, empty rows attend everywhere."""
    summed = torch.zeros(len(prev), nlev).index_add_(1, par, prev)
    mean = summed / torch.bincount(par, minlength=nlev).clamp_min(1)
    blocked = mean[:, keys] < 0
    blocked[blocked.all(1)] = False
    return blocked


def test_attention_mask_is_the_mean_logit_sign_on_every_level():
    """_blocked skips the division (same sign) and, on the finest level, the pooling; both shortcuts must give
    exactly Mask3D's mask, for all keys and a subsample, with and without superpoints."""
    g = torch.Generator().manual_seed(0)
    prev = torch.randn(6, 40, generator=g)
    prev[0] = torch.rand(40, generator=g) + 0.1  # a query whose mask covers everything
    prev[1] = -torch.rand(40, generator=g) - 0.1  # an empty mask: attends everywhere
    par = torch.randint(0, 15, (40,), generator=g)
    sub = torch.tensor([9, 2, 14, 5])
    for keys in (torch.arange(15), sub):
        assert torch.equal(MaskDecoder._blocked(prev, par, 15, keys, None), _mean_blocked(prev, par, 15, keys))
    rows = torch.arange(40, 80)  # the scene's fine rows in a batch; the level is those voxels themselves
    for level_keys in (rows, rows[torch.tensor([7, 3, 30])]):
        local = torch.searchsorted(rows, level_keys)
        assert torch.equal(MaskDecoder._blocked(prev, None, 40, local, None),
                           _mean_blocked(prev, torch.arange(40), 40, local))
    voxel_sp = torch.randint(0, 6, (40,), generator=g)
    sp_logits = torch.randn(6, 6, generator=g)
    assert torch.equal(MaskDecoder._blocked(sp_logits, par, 15, sub, voxel_sp),
                       _mean_blocked(sp_logits[:, voxel_sp], par, 15, sub))


def test_key_sums_pool_only_under_the_keys_with_every_rows_sums_bit_for_bit():
    """Training subsamples the keys: pooling only the fine voxels under them must give exactly the sums of pooling
    every row (then taking the keys' columns), with and without superpoints, and for a batch's second scene."""
    g = torch.Generator().manual_seed(3)
    for sp in (False, True):
        # many voxels per row, magnitudes spread over 1e-3..1e3: a sum in another order would differ in its bits
        prev = torch.randn(9, 300 if sp else 5_000, generator=g) * 10 ** (torch.rand(9, 300 if sp else 5_000,
                                                                                      generator=g) * 6 - 3)
        voxel_sp = torch.randint(0, 300, (5_000,), generator=g) if sp else None
        vox = prev if voxel_sp is None else prev[:, voxel_sp]
        par = 60 + torch.randint(0, 40, (5_000,), generator=g)  # the second scene's rows 60..99 of 100
        every = torch.zeros(9, 100).index_add_(1, par, vox)
        for keys in (torch.randperm(40, generator=g)[:13] + 60, torch.arange(60, 100), torch.tensor([99, 61])):
            got = MaskDecoder._key_sums(prev, par, 100, keys, voxel_sp)
            assert torch.equal(got, every[:, keys])
        assert torch.equal(MaskDecoder._key_sums(prev, par - 60, 40, torch.arange(40), voxel_sp), every[:, 60:])


def test_float_head_mask_gives_the_bool_masks_attention_bit_for_bit():
    """The additive mask built once (shared by the heads for one scene) attends exactly as the bool mask."""
    dec = _decoder(hidden_dim=16, num_heads=2).eval()
    attn = dec.cross[0].attn
    g = torch.Generator().manual_seed(1)
    for nb in (1, 2):
        q, kv = torch.randn(nb, 5, 16, generator=g), torch.randn(nb, 30, 16, generator=g)
        blocked = torch.rand(nb, 5, 30, generator=g) < 0.6
        blocked[:, :, 0] = False
        ref = attn(q, kv, kv, attn_mask=blocked.repeat_interleave(2, 0), need_weights=False)[0]
        got = attn(q, kv, kv, attn_mask=dec._head_mask(blocked, q.dtype), need_weights=False)[0]
        assert torch.equal(got, ref)


def test_finest_level_attention_in_training_batches():
    """With the finest level (stride 1) among hlevels the pooling is skipped; a scene's prediction must still not
    depend on its batch partner, and training (key subsample) must run on it."""
    levels, strides, out, coords = _inputs()
    assert torch.equal(_parent_index(coords, levels[3][1], 1), torch.arange(len(coords)))  # the shortcut's case
    dec = _decoder(hlevels=[1, 3]).eval()
    both = dec(levels, strides, out, coords, seeds=[1, 2])[-1]
    keep = coords[:, 0] == 1
    lv = [(f[c[:, 0] == 1], c[c[:, 0] == 1]) for f, c in levels]
    one = coords[keep].clone()
    one[:, 0] = 0
    lv = [(f, torch.cat([torch.zeros(len(c), 1, dtype=c.dtype), c[:, 1:]], 1)) for f, c in lv]
    alone = dec(lv, strides, out[keep], one, seeds=[2])[-1]
    torch.testing.assert_close(alone.masks[0], both.masks[1], atol=1e-5, rtol=1e-5)
    train = dec.train()(levels, strides, out, coords, seeds=[1, 2])[-1]
    assert all(torch.isfinite(m).all() for m in train.masks)
