"""run_config: what a per-scene artifact stores of its run (gcseg.io.samples.is_finished). The model's config is
stored as checkpoints store it, so that a field added later at its off value changes no artifact's bytes."""

from stages._common import run_config
from stages.full_scene_pseudolabel import Params

from gcseg.models.config import ADDED_FIELDS, ModelConfig


def _params(**model):
    return Params(seed=0, tau_conf=0.6, data={"source": "synth", "root": "data/scenes"}, model=ModelConfig(**model),
                  full_scene_pseudolabel={})


def test_added_model_fields_at_their_off_value_are_left_out():
    cfg = run_config(_params(), model_sha256="abc")
    assert "data" not in cfg and cfg["model_sha256"] == "abc" and cfg["seed"] == 0
    assert not set(ADDED_FIELDS) & set(cfg["model"])  # as before those fields existed
    assert cfg["model"] == ModelConfig().checkpoint_dict()


def test_added_model_fields_set_otherwise_are_kept():
    cfg = run_config(_params(matrix_nms="linear", iou_head=True))
    assert cfg["model"]["matrix_nms"] == "linear" and cfg["model"]["iou_head"] is True
    assert cfg != run_config(_params())  # a finished scene of the other config is not reused
