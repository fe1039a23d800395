"""When the last epoch is validated, the final model takes the validation snapshot's recomputed BatchNorm
statistics instead of recomputing them: they must be exactly what a fresh recompute gives."""

import torch

from gcseg.models.mask_model import load_model
from gcseg.train.dataset import PointSampleDataset
from gcseg.train.loop import TrainConfig, recompute_bn_stats, train
from gcseg.train.toy import tiny_model_config, write_box_samples

MODEL = dict(hidden_dim=16, num_queries=4, ffn_dim=16, planes=(8,) * 8, max_attn_voxels=100)


def test_final_bn_statistics_equal_a_fresh_recompute(tmp_path, monkeypatch):
    files = write_box_samples(tmp_path / "labels", scenes=2, samples_per_scene=2, seed=3, n_boxes=3,
                              points_per_box=100, floor_points=80)
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=2, lr=1.0e-3, batch_size=2, bn_recompute_batches=2, val_every=2)
    calls = []
    import gcseg.train.loop as loop

    real = loop.recompute_bn_stats
    monkeypatch.setattr(loop, "recompute_bn_stats", lambda *a, **k: (calls.append(a[5]), real(*a, **k))[1])
    res = train(cfg, files, tmp_path / "out", model_cfg=tiny_model_config(**MODEL), seed=0, progress=False,
                val_fn=lambda model, epoch: {"x": 0.0})
    assert calls == [2]  # once, for the validated last epoch; the final model reuses it
    net, _ = load_model(res.model_path)
    stored = {k: v.clone() for k, v in net.state_dict().items()}
    ds = PointSampleDataset(files, augment_cfg=cfg.augment, seed=0, max_points=cfg.max_points)
    recompute_bn_stats(net, ds, cfg, tiny_model_config(**MODEL), 0, 2, 1, 0, torch.device("cpu"))
    assert any("running_mean" in k for k in stored)
    for k, v in net.state_dict().items():
        assert torch.equal(stored[k], v), k


def test_last_epoch_is_validated_when_val_every_does_not_divide_epochs(tmp_path):
    files = write_box_samples(tmp_path / "labels", scenes=1, samples_per_scene=2, seed=3, n_boxes=2,
                              points_per_box=80, floor_points=60)
    torch.set_num_threads(1)
    seen = []
    res = train(TrainConfig(epochs=3, lr=1.0e-3, batch_size=2, bn_recompute_batches=1, val_every=2), files,
                tmp_path / "out", model_cfg=tiny_model_config(**MODEL), seed=0, progress=False,
                val_fn=lambda model, epoch: (seen.append(epoch), {"x": float(epoch)})[1])
    assert seen == [2, 3]  # every 2 epochs, and the last one (the final model) whatever the period
    assert [r.get("val/x") for r in res.history] == [None, 2.0, 3.0]
