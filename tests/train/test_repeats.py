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
