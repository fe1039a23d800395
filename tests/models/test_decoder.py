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
