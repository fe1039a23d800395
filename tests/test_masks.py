"""gcseg.masks: the one IoU and id-map painter shared by proposals, tracking, lifting and training metrics."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.masks import mask_intersections, mask_iou, masks_to_id_map

H, W = 24, 32


def test_mask_iou_and_intersections():
    a = np.zeros((3, H, W), bool)
    a[0, :10, :10] = True
    a[1, :10, 5:15] = True  # overlaps a[0] by 50 px: IoU 50 / 150
    b = a[:2].copy()
    inter = mask_intersections(a, b)
    assert inter.dtype == np.int64 and inter.tolist() == [[100, 50], [50, 100], [0, 0]]
    iou = mask_iou(a, b)
    np.testing.assert_allclose(iou, [[1.0, 1 / 3], [1 / 3, 1.0], [0.0, 0.0]])  # empty mask: 0, not NaN
    pts = a.reshape(3, -1)  # point sets (K, N) work the same way (training metrics)
    np.testing.assert_allclose(mask_iou(pts, pts[:2]), iou)
    with pytest.raises(ValueError, match="different sizes"):
        mask_intersections(a, np.zeros((1, H, W + 1), bool))


def test_masks_to_id_map_small_on_top_and_deterministic():
    masks = np.zeros((3, H, W), bool)
    masks[0, :, :] = True  # large
    masks[1, 5:10, 5:10] = True  # small, inside
    masks[2, 4:12, 4:12] = True  # medium, contains mask 1
    m = masks_to_id_map(masks)
    assert m.dtype == np.int32 and m[0, 0] == 1 and m[7, 7] == 2 and m[4, 4] == 3
    np.testing.assert_array_equal(m, masks_to_id_map(masks))
    assert masks_to_id_map(masks, order=[1, 2, 0])[7, 7] == 1  # explicit paint order: last painted wins
    assert masks_to_id_map(np.zeros((0, H, W), bool)).sum() == 0


def test_masks_to_id_map_from_a_mapping():
    a = np.zeros((4, 5), bool)
    a[:, :4] = True
    b = np.zeros((4, 5), bool)
    b[1:3, 1:3] = True
    m = masks_to_id_map({7: a, 9: b}, (4, 5), dtype=np.uint16)
    assert m.dtype == np.uint16 and m[1, 1] == 9 and m[0, 0] == 7 and m[0, 4] == 0
    same = masks_to_id_map({9: b, 7: a}, (4, 5), dtype=np.uint16)  # insertion order does not matter
    np.testing.assert_array_equal(m, same)
    assert masks_to_id_map({7: a, 9: b}, (4, 5), order=[9, 7])[1, 1] == 7
    assert masks_to_id_map({}, (4, 5)).shape == (4, 5)
    with pytest.raises(ValueError, match="does not fit"):
        masks_to_id_map({70000: a}, (4, 5), dtype=np.uint16)
    with pytest.raises(ValueError, match="hw"):
        masks_to_id_map({7: a})
