"""The superpoint model (masks over superpoints, queries seeded at superpoints): pooling, targets, forward,
inference on points, and that it overfits a toy scene like the voxel model does."""

import numpy as np
import pytest
import torch

from gcseg.io.samples import read_point_samples
from gcseg.models.decoder import SuperpointPool
from gcseg.models.inference import predict_points, voxel_input
from gcseg.models.mask_model import ModelConfig, build_model, load_model
from gcseg.models.voxelize import superpoint_labels, superpoint_pool
from gcseg.superpoints import compute_superpoints, first_occurrence_ids, write_superpoints
from gcseg.train.loop import TrainConfig, train
from gcseg.train.quick_metrics import average_precision
from gcseg.train.toy import box_scene, tiny_model_config, write_box_samples


def test_pool_weights_centroids_and_majority_labels():
    # 5 points, 2 voxels, 2 superpoints (ids 7 and 3 compacted to 1 and 0)
    point_sp = np.array([7, 7, 3, 3, 3])
    inverse = np.array([0, 0, 0, 1, 1])
    coord = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [1, 1, 1], [1, 1, 1.2]], np.float32)
    (pair_sp, pair_vox, pair_w, s, centroid, voxel_sp), compact = superpoint_pool(point_sp, inverse, coord, 0.5, 2)
    assert s == 2 and compact.tolist() == [1, 1, 0, 0, 0]
    w = {(int(a), int(b)): float(c) for a, b, c in zip(pair_sp, pair_vox, pair_w)}
    assert w == pytest.approx({(0, 0): 1 / 3, (0, 1): 2 / 3, (1, 0): 1.0})
    assert voxel_sp.tolist() == [1, 0]  # voxel 0 holds 2 points of superpoint 1, 1 of superpoint 0
    assert np.allclose(centroid[1].numpy(), [0.1, 0, 0])  # mean of (0,0,0), (0.1,0,0) in 0.5 m voxel units
    assert superpoint_labels(compact, np.array([4, 4, -1, -1, 2])).tolist() == [-1, 4]
    with pytest.raises(Exception, match="superpoint ids"):
        superpoint_pool(point_sp[:4], inverse, coord, 0.5, 2)


def test_config_rejects_superpoint_queries_on_voxels():
    with pytest.raises(ValueError, match="mask_on"):
        ModelConfig(queries="superpoint", mask_on="voxel")


def test_predicts_on_points_through_superpoints():
    torch.manual_seed(0)
    cfg = tiny_model_config(queries="superpoint", mask_on="superpoint", num_queries=5, hidden_dim=16, ffn_dim=32)
    model = build_model(cfg).eval()
    s = box_scene(np.random.default_rng(0))
    sp = compute_superpoints(s["coord"], s["color"])
    masks, scores = predict_points(model, s["coord"], s["color"], superpoint=sp)
    assert masks.shape[1] == len(s["coord"]) and len(scores) == len(masks)
    # every mask is a union of whole superpoints
    for m in masks:
        for i in np.unique(sp[m]):
            assert m[sp == i].all()
    again = predict_points(model, s["coord"], s["color"])  # superpoints computed when not given
    assert np.array_equal(again[0], masks) and np.array_equal(again[1], scores)
    with pytest.raises(ValueError, match="superpoints"):
        model(torch.zeros((1, 4), dtype=torch.long), torch.zeros((1, cfg.in_channels)), seeds=[0])


def test_matrix_nms_rescores_the_same_masks(tmp_path):
    """model.matrix_nms changes no weight: from the same raw output the same masks come out, a part of a better
    mask ranks lower and a mask apart keeps its score; a checkpoint records the setting only when it is on (the
    default's bytes stay as they were)."""
    from types import SimpleNamespace

    from gcseg.models.inference import point_masks
    from gcseg.models.mask_model import load_model, save_checkpoint

    cfg = tiny_model_config(queries="superpoint", mask_on="superpoint", num_queries=8, hidden_dim=16, ffn_dim=32,
                            nms_iou=0.5, score="stability")
    on = cfg.model_copy(update={"matrix_nms": "linear"})
    obj = torch.tensor([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0]])  # objectness: whole > part > apart
    big, neg = 5.0, -5.0
    logits = torch.tensor([[big, big, big, big, neg, neg, neg, neg],   # a whole object
                           [big, big, neg, neg, neg, neg, neg, neg],   # its half: IoU 1/2, not dropped by NMS at 0.5
                           [neg, neg, neg, neg, neg, big, big, neg]])  # apart
    to_point = torch.arange(8).repeat_interleave(2)  # two points per element
    masks, scores = point_masks(SimpleNamespace(cfg=cfg), obj, logits, to_point)
    masks_on, scores_on = point_masks(SimpleNamespace(cfg=on), obj, logits, to_point)
    assert len(masks) == 3 and sorted(m.tobytes() for m in masks) == sorted(m.tobytes() for m in masks_on)
    by_mask = {m.tobytes(): x for m, x in zip(masks, scores)}
    got = {m.tobytes(): x for m, x in zip(masks_on, scores_on)}
    whole, half, apart = (m.tobytes() for m in (logits > 0).repeat_interleave(2, 1).numpy())
    assert got[whole] == pytest.approx(by_mask[whole]) and got[apart] == pytest.approx(by_mask[apart])
    assert got[half] == pytest.approx(by_mask[half] * 0.5)  # linear kernel: 1 - IoU
    assert np.all(np.diff(scores_on) <= 0)  # re-sorted after the decay

    torch.manual_seed(0)
    model = build_model(cfg)
    save_checkpoint(tmp_path / "on.pt", model, on, epoch=0)
    save_checkpoint(tmp_path / "off.pt", model, cfg, epoch=0)
    assert load_model(tmp_path / "on.pt")[1]["config"]["matrix_nms"] == "linear"
    assert "matrix_nms" not in load_model(tmp_path / "off.pt")[1]["config"]


def test_matrix_nms_override_where_models_are_used():
    """eval.matrix_nms / --matrix-nms: `checkpoint` keeps the checkpoint's setting, anything else replaces it."""
    from gcseg.models.config import matrix_nms_override

    cfg = tiny_model_config()
    on = cfg.model_copy(update={"matrix_nms": "gaussian"})
    assert matrix_nms_override(on, "checkpoint") is on and matrix_nms_override(cfg, "checkpoint") is cfg
    assert matrix_nms_override(cfg, "linear").matrix_nms == "linear"
    assert matrix_nms_override(on, "off").matrix_nms is None
    assert matrix_nms_override(on, "linear").model_copy(update={"matrix_nms": None}) == cfg  # nothing else
    with pytest.raises(ValueError, match="checkpoint"):
        matrix_nms_override(cfg, "soft")


def test_with_matrix_nms_copies_only_when_the_setting_changes_the_model():
    from gcseg.models.config import with_matrix_nms

    model = build_model(tiny_model_config())
    assert with_matrix_nms(model, "checkpoint") is model and with_matrix_nms(model, "off") is model
    ranked = with_matrix_nms(model, "linear")
    assert ranked is not model and ranked.cfg.matrix_nms == "linear" and model.cfg.matrix_nms is None
    assert ranked.decoder is model.decoder  # a shallow copy: the same weights


def test_test_queries_seed_each_superpoint_at_most_once():
    torch.manual_seed(0)
    cfg = tiny_model_config(queries="superpoint", mask_on="superpoint", num_queries=5, hidden_dim=16, ffn_dim=32,
                            test_queries=100000)
    model = build_model(cfg).eval()
    s = box_scene(np.random.default_rng(0))
    sp = compute_superpoints(s["coord"], s["color"]).astype(np.int64)
    coords, feats, inverse = voxel_input(model, s["coord"], s["color"])
    part, _ = superpoint_pool(sp, inverse.numpy(), s["coord"] - s["coord"].mean(0), cfg.voxel_size, len(coords))
    pool = SuperpointPool(*[[x] for x in part])
    with torch.no_grad():
        pred = model(coords, feats, seeds=[0], sp=pool)[-1]
    n_sp = int(sp.max()) + 1
    assert pred.logits.shape[1] == n_sp  # one query per superpoint, not 100000 repeating them
    assert sorted(pred.seeds[0].tolist()) == list(range(n_sp))


@pytest.mark.parametrize("matcher,topk", [("hungarian", 1), ("seeded", 0)])
def test_superpoint_model_overfits_one_toy_scene(tmp_path, matcher, topk):
    torch.set_num_threads(1)
    files = write_box_samples(tmp_path / "labels", scenes=1, samples_per_scene=1, seed=0)
    _, s = next(read_point_samples(files[0]))
    # the toy's box bottoms lie 2 cm above its floor: split superpoints at the labels so that only learning is
    # tested here (superpoint quality has its own tests)
    sp = first_occurrence_ids(compute_superpoints(s["coord"], s["color"]).astype(np.int64) * 64 + s["instance"] + 1)
    write_superpoints(tmp_path / "sp" / files[0].name, files[0].stem, {"000000": (s["coord"], sp)},
                      method="felzenszwalb", config={})
    cfg = TrainConfig(epochs=30, lr=1.0e-2, batch_size=1, checkpoint_every=1000,
                      loss=dict(matcher=matcher, seeded_topk=topk),
                      augment=dict(rotate_z=False, flip=False, scale=0.0, color_jitter=0.0))
    mcfg = tiny_model_config(queries="superpoint", mask_on="superpoint", num_queries=32 if topk == 0 else 16,
                             nms_iou=0.5)
    res = train(cfg, files, tmp_path / "out", model_cfg=mcfg, seed=0, progress=False, superpoints=tmp_path / "sp")
    model, _ = load_model(res.model_path)
    masks, scores = predict_points(model, s["coord"], s["color"], superpoint=sp)
    ap50 = average_precision([(masks, scores, s["instance"])], 0.5)
    assert ap50 > 0.9, (ap50, scores)
