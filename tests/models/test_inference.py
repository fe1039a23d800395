"""Inference helpers: mask NMS (gcseg.models.inference)."""

import numpy as np
import pytest
import torch

from gcseg.models.inference import mask_nms


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
