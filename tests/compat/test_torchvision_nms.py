"""The torchvision NMS shim: idempotent, and the reference kernel is greedy NMS by descending score."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from gcseg.compat.torchvision_nms import ensure_torchvision_ops, nms_reference


def test_reference_nms_hand_case():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.5, 0.9, 0.1, 0.95])
    # 3 (0.95) suppresses 0 (IoU 0.9) and 1 (IoU 72/99); 2 is disjoint
    keep = nms_reference(boxes, scores, 0.5)
    assert keep.tolist() == [3, 2] and keep.dtype == torch.long
    assert nms_reference(boxes, scores, 0.95).tolist() == [3, 1, 0, 2]
    assert nms_reference(torch.zeros((0, 4)), torch.zeros(0), 0.5).tolist() == []


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision not installed")
def test_torchvision_ops_usable_after_shim():
    ensure_torchvision_ops()
    ensure_torchvision_ops()  # idempotent
    from torchvision.ops import batched_nms, nms

    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        xy = torch.rand((30, 2), generator=g) * 50
        wh = torch.rand((30, 2), generator=g) * 20 + 1
        boxes = torch.cat([xy, xy + wh], 1)
        scores = torch.rand(30, generator=g)
        assert nms(boxes, scores, 0.4).tolist() == nms_reference(boxes, scores, 0.4).tolist()
    idx = torch.tensor([0, 0, 1, 1])
    b = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60.0]])
    assert sorted(batched_nms(b, torch.tensor([0.9, 0.8, 0.7, 0.6]), idx, 0.5).tolist()) == [0, 2, 3]
