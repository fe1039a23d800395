"""The quick AP against training pseudo-labels: the project's one evaluator (gcseg.eval.ap) underneath."""

import numpy as np
import pytest

from gcseg.eval.ap import SceneEval, evaluate_scenes
from gcseg.masks import mask_iou
from gcseg.train.quick_metrics import average_precision


def test_perfect_and_empty_predictions():
    gt = np.array([0, 0, 1, 1, -1])
    perfect = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], bool)  # the unlabelled point is ignored
    assert average_precision([(perfect, np.array([0.9, 0.8]), gt)]) == 1.0
    assert average_precision([(np.zeros((0, 5), bool), np.zeros(0), gt)]) == 0.0
    assert np.isnan(average_precision([(perfect, np.array([0.9, 0.8]), np.full(5, -1))]))


def test_false_positive_ranked_first_lowers_ap_and_duplicates_do_not_count():
    gt = np.array([0, 0, 1, 1])
    masks = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], bool)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    ap = average_precision([(masks, scores, gt)])
    # ranks FP (IoU exactly 0.5 is not > 0.5), TP, FP (duplicate), TP: ScanNet's step-integrated AP = 1/3
    assert abs(ap - 1 / 3) < 1e-9
    direct = evaluate_scenes([SceneEval(scene_id="s", gt_ids=1001 + gt, pred_masks=masks, pred_scores=scores)],
                             min_region_size=1)
    assert ap == direct.ap50
    assert np.allclose(mask_iou(masks[:2], masks[1:2]), [[0.5], [1.0]])
    with pytest.raises(ValueError, match="iou_thr"):
        average_precision([(masks, scores, gt)], iou_thr=0.3)


def test_fit_check_reads_the_model_at_the_training_key_subsample(tmp_path, monkeypatch):
    import gcseg.models.inference as inference
    from gcseg.models.mask_model import build_model
    from gcseg.train.quick_metrics import labels_ap_fn
    from gcseg.train.toy import tiny_model_config, write_box_samples

    files = write_box_samples(tmp_path, scenes=1, samples_per_scene=1, seed=0, n_boxes=2, points_per_box=60,
                              floor_points=40)
    model = build_model(tiny_model_config(hidden_dim=16, num_queries=4, ffn_dim=16, planes=(8,) * 8,
                                          max_attn_voxels=37)).eval()
    seen = []
    real = inference.predict_points
    monkeypatch.setattr(inference, "predict_points",
                        lambda m, *a, **k: (seen.append(m.decoder.test_attn_voxels), real(m, *a, **k))[1])
    out = labels_ap_fn(files, 1)(model, 1)
    assert 0.0 <= out["labels_AP50"] <= 1.0
    assert seen == [37] and model.decoder.test_attn_voxels is None  # training's cap inside, restored after
