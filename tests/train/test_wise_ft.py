"""wise_ft: a fine-tuned model's final weights interpolate between its init and the trained weights (WiSE-FT),
before the BatchNorm statistics are recomputed for them; the validated snapshot is that same model."""

import pytest
import torch

from gcseg.errors import ConfigError
from gcseg.models.mask_model import load_model
from gcseg.train.loop import TrainConfig, train
from gcseg.train.toy import tiny_model_config, write_box_samples

MODEL = dict(hidden_dim=16, num_queries=4, ffn_dim=16, planes=(8,) * 8, max_attn_voxels=100)


def _files(tmp_path):
    return write_box_samples(tmp_path / "labels", scenes=1, samples_per_scene=2, seed=3, n_boxes=2,
                             points_per_box=80, floor_points=60)


@pytest.mark.parametrize("val_every", [0, 2])  # the final model: recomputed at the end / the validated snapshot
def test_final_weights_are_the_interpolation_of_init_and_trained(tmp_path, val_every):
    files = _files(tmp_path)
    torch.set_num_threads(1)
    mcfg = tiny_model_config(**MODEL)
    init = train(TrainConfig(epochs=1, lr=1.0e-3, batch_size=2, bn_recompute_batches=1), files, tmp_path / "init",
                 model_cfg=mcfg, seed=0, progress=False).model_path
    runs = {}
    for alpha in (1.0, 0.25):
        cfg = TrainConfig(epochs=2, lr=1.0e-3, batch_size=2, bn_recompute_batches=1, val_every=val_every,
                          wise_ft=alpha)
        res = train(cfg, files, tmp_path / f"ft{alpha}", model_cfg=mcfg, seed=0, progress=False,
                    init_checkpoint=init, val_fn=lambda model, epoch: {"x": 0.0})
        runs[alpha] = load_model(res.model_path)[0].state_dict()
    start = load_model(init)[0].state_dict()
    weights = [k for k in start if k.endswith("weight") and "bn" not in k and "norm" not in k]
    assert weights
    changed = 0
    for k in weights:  # learned weights: exactly the interpolation (BatchNorm statistics are recomputed after)
        expect = torch.lerp(start[k], runs[1.0][k], 0.25)
        torch.testing.assert_close(runs[0.25][k], expect, rtol=0, atol=1e-7)
        changed += not torch.equal(runs[1.0][k], start[k])
    assert changed  # training moved the weights, so the interpolation is a real third model
    # the statistics were recomputed for the interpolated weights, not interpolated
    bn = [k for k in start if k.endswith("running_mean")]
    assert any(not torch.allclose(runs[0.25][k], torch.lerp(start[k], runs[1.0][k], 0.25)) for k in bn)


def test_wise_ft_needs_an_init(tmp_path):
    with pytest.raises(ConfigError, match="wise_ft"):
        train(TrainConfig(epochs=1, batch_size=2, wise_ft=0.5), _files(tmp_path), tmp_path / "out",
              model_cfg=tiny_model_config(**MODEL), seed=0, progress=False)


def test_wise_ft_range():
    with pytest.raises(ValueError):
        TrainConfig(wise_ft=0.0)
    with pytest.raises(ValueError):
        TrainConfig(wise_ft=1.5)
