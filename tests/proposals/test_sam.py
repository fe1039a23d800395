"""SAM backend: the real segment-anything AMG code path with a small randomly initialised model (its masks
mean nothing; only shapes, dtypes, plumbing and errors are checked), checkpoint loading and clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gcseg.errors import ConfigError, InputError
from gcseg.proposals.factory import build_proposer

if importlib.util.find_spec("segment_anything") is None:  # not importorskip: the torchvision shim goes first
    pytest.skip("segment-anything is not installed", allow_module_level=True)

RANDOM = {"model_type": "vit_b", "checkpoint": "random-init-for-tests", "points_per_side": 4,
          "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "test_img_size": 256}


def test_random_sam_runs_the_real_amg(frame):
    proposer = build_proposer("sam", RANDOM, seed=0)
    assert proposer.random_weights
    props = proposer(frame)
    assert props.masks.dtype == np.bool_ and props.masks.shape[1:] == frame.hw
    assert props.scores.dtype == np.float32 and len(props) >= 1
    again = build_proposer("sam", RANDOM, seed=0)(frame)  # seeded init: same masks
    assert np.array_equal(again.masks, props.masks)


def test_missing_checkpoint_says_where_to_get_it(tmp_path):
    with pytest.raises(InputError) as err:
        build_proposer("sam", {"model_type": "vit_b", "checkpoint": str(tmp_path / "sam_vit_b_01ec64.pth")})
    msg = str(err.value)
    assert "sam_vit_b_01ec64.pth" in msg and "dvc add data/weights/" in msg
    assert "sam_keyframes.backend=classical" in msg


def test_wrong_model_type_lists_valid_ones():
    with pytest.raises(ConfigError, match="vit_b.*vit_l.*vit_h"):
        build_proposer("sam", {**RANDOM, "model_type": "vit_x"})
    with pytest.raises(ConfigError, match="unknown sam option"):
        build_proposer("sam", {**RANDOM, "points": 3})


def test_checkpoint_round_trip_through_the_loader(tmp_path: Path):
    import torch

    from gcseg.proposals.sam import build_sam_random, load_sam_checkpoint

    src = build_sam_random(256, seed=1)
    wrapped = tmp_path / "wrapped.pth"
    plain = tmp_path / "plain.pth"
    torch.save({"model": src.state_dict()}, wrapped)  # our own training format
    torch.save(src.state_dict(), plain)  # the official release format (plain state dict)
    for path in (wrapped, plain):
        dst = build_sam_random(256, seed=2)
        assert not torch.equal(dst.mask_decoder.iou_prediction_head.layers[0].weight,
                               src.mask_decoder.iou_prediction_head.layers[0].weight)
        load_sam_checkpoint(dst, path, "test")
        for (k, a), (_, b) in zip(sorted(src.state_dict().items()), sorted(dst.state_dict().items())):
            assert torch.equal(a, b), k
    # a checkpoint of another architecture is reported, not silently half-loaded
    other = build_sam_random(128, seed=0)
    with pytest.raises(InputError, match="does not fit SAM model_type"):
        load_sam_checkpoint(other, wrapped, "vit_b")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read SAM checkpoint"):
        load_sam_checkpoint(other, junk, "vit_b")


def test_real_build_path_rejects_a_foreign_checkpoint(tmp_path: Path):
    """The file path goes through segment-anything's registry builder, then our strict loader."""
    import torch

    from gcseg.proposals.sam import build_sam_random

    ckpt = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save({"model": build_sam_random(256).state_dict()}, ckpt)
    with pytest.raises(InputError, match="does not fit SAM model_type 'vit_b'"):
        build_proposer("sam", {"model_type": "vit_b", "checkpoint": str(ckpt)})


def test_checkpoint_file_through_the_real_build_path(tmp_path: Path, monkeypatch, frame):
    """A `{"model": sd}` file goes through build_proposer -> segment-anything's registry builder -> our strict
    loader -> AMG. The registry entry is swapped for the small architecture (a real vit_b file is 375 MB)."""
    import torch

    from gcseg.proposals import sam as sam_mod

    src = sam_mod.build_sam_random(256, seed=5)
    ckpt = tmp_path / "small.pth"
    torch.save({"model": src.state_dict()}, ckpt)
    registry = sam_mod._segment_anything().sam_model_registry
    monkeypatch.setitem(registry, "vit_b", lambda checkpoint=None: sam_mod.build_sam_random(256, seed=9))
    proposer = build_proposer("sam", {**RANDOM, "checkpoint": str(ckpt)})
    assert not proposer.random_weights
    for k, v in src.state_dict().items():
        assert torch.equal(proposer.model.state_dict()[k], v), k
    ref = build_proposer("sam", {**RANDOM}, seed=5)  # the same weights built directly
    a, b = proposer(frame), ref(frame)
    assert np.array_equal(a.masks, b.masks) and np.allclose(a.scores, b.scores)
