"""TrainConfig.repeats / crop_size: several (cropped, differently augmented) visits of every sample per epoch."""

import torch

from gcseg.train.loop import TrainConfig, train
from gcseg.train.toy import tiny_model_config, write_box_samples

MODEL = dict(hidden_dim=16, num_queries=4, ffn_dim=16, planes=(8,) * 8, max_attn_voxels=100)


def test_repeats_multiply_the_optimisation_steps(tmp_path):
    torch.set_num_threads(1)
    files = write_box_samples(tmp_path / "labels", scenes=1, samples_per_scene=2, seed=1, n_boxes=3,
                              points_per_box=80, floor_points=60)
    cfg = TrainConfig(epochs=1, lr=1.0e-3, batch_size=2, repeats=3, crop_size=0.6, bn_recompute_batches=1)
    res = train(cfg, files, tmp_path / "out", model_cfg=tiny_model_config(**MODEL), seed=0, progress=False)
    ck = torch.load(tmp_path / "out" / "checkpoints" / "last.pt", weights_only=False)
    assert ck["scheduler"]["last_epoch"] == 3  # 2 samples x 3 visits / batch 2
    assert res.model_path.is_file() and res.epochs_done == 1


def test_mix3d_trains_on_one_mixed_scene_per_pair(tmp_path):
    """With mix3d a step of two samples is one scene holding both (Mix3D): the same steps, and a seeded rerun
    writes the same weights."""
    from gcseg.train.dataset import PointSampleDataset
    from gcseg.train.loop import _batch

    torch.set_num_threads(1)
    files = write_box_samples(tmp_path / "labels", scenes=1, samples_per_scene=2, seed=1, n_boxes=3,
                              points_per_box=80, floor_points=60)
    model_cfg = tiny_model_config(**MODEL)
    ds = PointSampleDataset(files, augment_cfg=None, seed=0)
    plain, mixed = _batch(ds, [0, 1], 0, 0, model_cfg), _batch(ds, [0, 1], 0, 0, model_cfg, mix3d=True)
    assert len(plain.targets) == 2 and len(mixed.targets) == 1
    assert mixed.targets[0].num_instances == sum(t.num_instances for t in plain.targets)
    cfg = TrainConfig(epochs=1, lr=1.0e-3, batch_size=2, repeats=2, bn_recompute_batches=1, mix3d=True)
    runs = [train(cfg, files, tmp_path / f"out{i}", model_cfg=model_cfg, seed=0, progress=False) for i in range(2)]
    ck = torch.load(tmp_path / "out0" / "checkpoints" / "last.pt", weights_only=False)
    assert ck["scheduler"]["last_epoch"] == 2
    a, b = (torch.load(r.model_path, weights_only=False)["model"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
