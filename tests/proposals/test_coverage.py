"""gcseg.proposals.coverage: the per-instance best IoU both the coverage metric and the diagnostics read."""

import numpy as np

from gcseg.proposals.coverage import best_iou_per_instance, instance_best_iou


def _id_map() -> np.ndarray:
    inst = np.zeros((6, 8), np.int64)
    inst[0:2, 0:2] = 7  # 4 px
    inst[2:6, 0:4] = 3  # 16 px
    inst[0:3, 5:8] = 5  # 9 px
    return inst


def test_instance_best_iou_ids_areas_and_iou():
    inst = _id_map()
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 2:6, 0:4] = True  # exactly instance 3
    masks[1, 0:3, 4:8] = True  # instance 5 plus a 3-px column: IoU 9 / 12
    ids, areas, best = instance_best_iou(inst, masks)
    assert ids.tolist() == [3, 5, 7] and areas.tolist() == [16, 9, 4]
    np.testing.assert_allclose(best, [1.0, 0.75, 0.0])


def test_min_area_filters_the_same_result():
    inst = _id_map()
    masks = np.zeros((1, 6, 8), bool)
    masks[0, 0:2, 0:2] = True
    _, areas, best = instance_best_iou(inst, masks)
    for min_area in (1, 5, 10, 17):
        np.testing.assert_array_equal(best_iou_per_instance(inst, masks, min_area), best[areas >= min_area])


def test_no_masks_and_no_instances():
    inst = _id_map()
    ids, areas, best = instance_best_iou(inst, np.zeros((0, 6, 8), bool))
    assert best.tolist() == [0.0, 0.0, 0.0] and ids.tolist() == [3, 5, 7]
    ids, areas, best = instance_best_iou(np.zeros((6, 8), np.int64), np.ones((1, 6, 8), bool))
    assert len(ids) == len(areas) == len(best) == 0
