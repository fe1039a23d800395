"""The learner can fit: a tiny model overfits one toy scene (4 boxes as point clusters) to AP50 > 0.9."""

import numpy as np
import torch

from gcseg.io.samples import read_point_samples
from gcseg.models.inference import predict_points
from gcseg.models.mask_model import load_model
from gcseg.train.loop import TrainConfig, train
from gcseg.train.quick_metrics import average_precision
from gcseg.train.toy import tiny_model_config, write_box_samples


def test_overfits_one_toy_scene(tmp_path):
    torch.set_num_threads(1)
    files = write_box_samples(tmp_path / "labels", scenes=1, samples_per_scene=1, seed=0)
    cfg = TrainConfig(epochs=30, lr=1.0e-2, batch_size=1, checkpoint_every=1000,
                      augment=dict(rotate_z=False, flip=False, scale=0.0, color_jitter=0.0))
    res = train(cfg, files, tmp_path / "out", model_cfg=tiny_model_config(), seed=0, progress=False)
    losses = [h["train/loss"] for h in res.history]
    assert losses[-1] < 0.1 * losses[0]
    model, _ = load_model(res.model_path)
    _, s = next(read_point_samples(files[0]))
    masks, scores = predict_points(model, s["coord"], s["color"])
    ap50 = average_precision([(masks, scores, s["instance"])], 0.5)
    assert ap50 > 0.9, (ap50, scores)
    assert np.isfinite(scores).all()
