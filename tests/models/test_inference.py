"""Inference helpers: mask NMS and matrix NMS (gcseg.models.inference)."""

import numpy as np
import pytest
import torch

from gcseg.models.inference import mask_nms, matrix_nms


def _dense_greedy_nms(binary, scores, weight, iou):
    """The definition: visit by descending score (ties by index), keep a mask unless its IoU with a kept one > iou."""
    order = np.argsort(-scores.numpy(), kind="stable")
    m = binary.numpy()[order].astype(np.float64)
    inter = (m * weight.numpy()) @ m.T
    area = inter.diagonal()
    keep = []
    for i in range(len(order)):
        if all(inter[i, k] / max(area[i] + area[k] - inter[i, k], 1e-9) <= iou for k in keep):
            keep.append(i)
    return order[keep].tolist()


@pytest.mark.parametrize("iou", [0.0, 0.3, 0.5, 0.9])
def test_mask_nms_equals_dense_greedy_nms(iou):
    rng = np.random.default_rng(0)
    for _ in range(50):
        q, e = int(rng.integers(1, 30)), int(rng.integers(1, 25))
        binary = torch.from_numpy(rng.random((q, e)) < rng.random())
        scores = torch.from_numpy(rng.integers(0, 4, q).astype(np.float32))  # ties keep index order
        weight = torch.from_numpy(rng.integers(1, 9, e).astype(np.float32))
        assert mask_nms(binary, scores, weight, iou).tolist() == _dense_greedy_nms(binary, scores, weight, iou)


def test_mask_nms_drops_duplicates_and_keeps_masks_that_overlap_little():
    a = [1, 1, 0, 0, 0, 0]
    b = [0, 0, 1, 1, 0, 0]
    c = [1, 0, 0, 0, 1, 1]  # IoU with a: 1/4
    d = [1, 1, 1, 0, 0, 0]  # IoU with a: 2/3
    binary = torch.tensor([a, b, a, c, d], dtype=torch.bool)
    scores = torch.tensor([0.9, 0.5, 0.8, 0.7, 0.6])
    assert mask_nms(binary, scores, torch.ones(6), 0.5).tolist() == [0, 3, 1]
    # weights count points: d's extra element weighs 10 points, so d and a overlap at 2/12
    w = torch.tensor([1.0, 1.0, 10.0, 1.0, 1.0, 1.0])
    assert mask_nms(binary, scores, w, 0.5).tolist() == [0, 3, 4]


def _dense_matrix_nms(binary, scores, weight, kernel, sigma=2.0):
    """mmdet's mask_matrix_nms (OneFormer3D's copy) with one label and point weights: the decayed scores, in the
    input order."""
    order = np.argsort(-scores.numpy(), kind="stable")
    m = binary.numpy()[order].astype(np.float64)
    inter = (m * weight.numpy()) @ m.T
    area = inter.diagonal()
    iou = np.triu(inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9), k=1)
    comp = np.broadcast_to(iou.max(0)[:, None], iou.shape)  # row i: c_i
    if kernel == "linear":
        decay = ((1 - iou) / np.maximum(1 - comp, 1e-9)).min(0)
    else:
        decay = (np.exp(-sigma * iou ** 2) / np.exp(-sigma * comp ** 2)).min(0)
    out = scores.double().numpy().copy()
    out[order] *= decay
    return out


@pytest.mark.parametrize("kernel", ["linear", "gaussian"])
def test_matrix_nms_equals_the_dense_definition(kernel):
    rng = np.random.default_rng(1)
    for _ in range(50):
        q, e = int(rng.integers(1, 30)), int(rng.integers(1, 25))
        binary = torch.from_numpy(rng.random((q, e)) < rng.random())
        scores = torch.from_numpy(rng.random(q).astype(np.float32))
        weight = torch.from_numpy(rng.integers(1, 9, e).astype(np.float32))
        got = matrix_nms(binary, scores, weight, kernel)
        assert got.dtype == scores.dtype and got.shape == scores.shape
        np.testing.assert_allclose(got.numpy(), _dense_matrix_nms(binary, scores, weight, kernel), rtol=1e-6)


def test_matrix_nms_decays_overlaps_by_their_iou_and_leaves_apart_masks():
    a = [1, 1, 1, 1, 0, 0, 0, 0]
    part = [1, 0, 0, 0, 0, 0, 0, 0]  # IoU with a: 1/4
    apart = [0, 0, 0, 0, 0, 1, 1, 0]
    binary = torch.tensor([part, a, apart], dtype=torch.bool)
    scores = torch.tensor([0.8, 0.9, 0.5])
    got = matrix_nms(binary, scores, torch.ones(8), "linear")
    # the best mask and the one apart keep their scores; the part decays by 1 - 1/4
    np.testing.assert_allclose(got.numpy(), [0.8 * 0.75, 0.9, 0.5], rtol=1e-6)
    with pytest.raises(ValueError, match="kernel"):
        matrix_nms(binary, scores, torch.ones(8), "box")
    assert matrix_nms(binary[:0], scores[:0], torch.ones(8)).shape == (0,)


def test_predict_points_keeps_masks_of_min_points_sorted_by_score():
    """Masks are counted at the superpoint level and expanded to points once: every returned mask holds >=
    min_points points, the scores descend, and raising min_points drops exactly the smaller masks."""
    from gcseg.models.inference import predict_points
    from gcseg.models.mask_model import build_model
    from gcseg.superpoints import compute_superpoints
    from gcseg.train.toy import box_scene, tiny_model_config

    torch.manual_seed(0)
    cfg = tiny_model_config(queries="superpoint", mask_on="superpoint", num_queries=8, hidden_dim=16, ffn_dim=32)
    model = build_model(cfg).eval()
    s = box_scene(np.random.default_rng(0))
    sp = compute_superpoints(s["coord"], s["color"])
    masks, scores = predict_points(model, s["coord"], s["color"], superpoint=sp)
    assert len(masks) > 2 and masks.shape[1] == len(s["coord"])
    assert (np.diff(scores) <= 0).all()
    sizes = masks.sum(1)
    cut = int(np.median(sizes)) + 1
    big, big_scores = predict_points(model, s["coord"], s["color"], superpoint=sp, min_points=cut)
    assert np.array_equal(big, masks[sizes >= cut]) and np.array_equal(big_scores, scores[sizes >= cut])


def test_point_masks_with_fragments_adds_pieces_under_their_masks():
    """The masks without fragments come back unchanged and in order; a mask over two boxes adds each box as a
    piece scored score_factor x its score; a mask inside one box adds nothing."""
    from gcseg.models.config import FragmentConfig
    from gcseg.models.inference import point_masks
    from gcseg.models.mask_model import build_model
    from gcseg.superpoints import compute_superpoints
    from gcseg.train.toy import box_scene, tiny_model_config

    model = build_model(tiny_model_config(queries="superpoint", mask_on="superpoint", num_queries=4, hidden_dim=16,
                                          ffn_dim=32))
    s = box_scene(np.random.default_rng(0), floor_points=0)  # four boxes >= 0.5 m apart, nothing joining them
    sp = np.unique(compute_superpoints(s["coord"], s["color"]), return_inverse=True)[1]
    box_of_sp = np.array([np.bincount(s["instance"][sp == e]).argmax() for e in range(sp.max() + 1)])
    logits = torch.full((3, len(box_of_sp)), -5.0)
    logits[0, np.isin(box_of_sp, [0, 2])] = 5.0  # two boxes: two pieces
    logits[1, box_of_sp == 1] = 5.0  # one box
    logits[2, box_of_sp == 3] = 5.0
    obj = torch.tensor([[2.0, 0.0], [3.0, 0.0], [1.0, 0.0]])
    raw = (obj, logits, torch.from_numpy(sp))
    masks, scores = point_masks(model, *raw)
    frag = FragmentConfig(eps=0.15, min_points=5, score_factor=0.5)
    more, more_scores = point_masks(model, *raw, fragments=frag, coord=s["coord"])
    assert len(masks) == 3 and len(more) == 5 and (np.diff(more_scores) <= 0).all()
    is_whole = np.array([any(np.array_equal(m, w) for w in masks) for m in more])
    assert np.array_equal(more[is_whole], masks) and np.array_equal(more_scores[is_whole], scores)
    two_boxes = int(np.flatnonzero([set(np.unique(s["instance"][m])) == {0, 2} for m in masks])[0])
    pieces = more[~is_whole]
    assert sorted(np.unique(s["instance"][p]).tolist() for p in pieces) == [[0], [2]]
    np.testing.assert_allclose(more_scores[~is_whole], 0.5 * scores[two_boxes])
    with pytest.raises(ValueError, match="coord"):
        point_masks(model, *raw, fragments=frag)
