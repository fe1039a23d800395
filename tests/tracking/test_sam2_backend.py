"""The real SAM2 video-predictor code path with random weights at a small image size (masks are meaningless;
the plumbing, streaming windows, anchors and errors are what is tested), plus checkpoint errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sam2")

from gcseg.errors import ConfigError, InputError  # noqa: E402
from gcseg.tracking.policy import TrackingPolicy  # noqa: E402
from gcseg.tracking.propagators import build_propagator  # noqa: E402
from gcseg.tracking.run import track_scene  # noqa: E402
from gcseg.tracking.sam2_backend import RANDOM_INIT, Sam2Propagator, build_video_predictor  # noqa: E402

from .conftest import make_scene  # noqa: E402
from .test_run import gt_proposer  # noqa: E402

SIZE = 128  # SAM2's image size for tests (native 1024)


@pytest.fixture(scope="module")
def sam2_prop() -> Sam2Propagator:
    return Sam2Propagator(checkpoint=RANDOM_INIT, image_size=SIZE)


def test_windows_anchors_and_removal(sam2_prop):
    frames = list(make_scene(4).frames())
    sam2_prop.reset()
    sam2_prop.condition(frames[0], {2: frames[0].instance == 2, 3: frames[0].instance == 3})
    out = list(sam2_prop.propagate(frames[:3]))
    assert len(out) == 2
    for masks in out:
        assert set(masks) <= {2, 3}
        assert all(m.shape == (48, 64) and m.dtype == np.bool_ for m in masks.values())
    # next window: object 2 re-conditioned at frame 2, object 3 rides on its frame-0 anchor, 4 is new
    sam2_prop.condition(frames[2], {2: frames[2].instance == 2, 4: frames[2].instance == 4})
    assert sam2_prop.held_ids() == [2, 3, 4]
    out = list(sam2_prop.propagate(frames[2:4]))
    assert len(out) == 1 and set(out[0]) <= {2, 3, 4}
    sam2_prop.remove([3])
    assert sam2_prop.held_ids() == [2, 4] and sorted(sam2_prop._anchor_frames) == [2]  # frame 0 released


def test_track_scene_with_sam2_is_well_defined(sam2_prop):
    scene = make_scene(3)
    res = track_scene(scene, gt_proposer, sam2_prop, TrackingPolicy(min_new_area=5), keyframe_stride=2,
                      tau_contain=0.8)
    assert list(res.frames) == [0, 1, 2] and res.stats["objects_created"] >= 4
    assert res.id_maps[0].max() <= res.stats["objects_created"]


def test_missing_checkpoint_says_where_to_get_it(tmp_path):
    with pytest.raises(InputError) as err:
        build_propagator("sam2", checkpoint=str(tmp_path / "sam2.1_hiera_tiny.pt"))
    msg = str(err.value)
    assert "sam2.1_hiera_tiny.pt" in msg and "dvc add" in msg and "sam2_track.backend=reprojection" in msg


def test_bad_config_and_image_size():
    with pytest.raises(ConfigError, match="not found"):
        build_video_predictor("configs/sam2.1/no_such.yaml", RANDOM_INIT, SIZE)
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", RANDOM_INIT, 100)


def test_checkpoint_is_loaded_strictly(tmp_path, sam2_prop):
    import torch

    good = tmp_path / "tiny.pt"
    torch.save({"model": sam2_prop.predictor.state_dict()}, good)
    pred = build_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", str(good), SIZE)
    a = next(iter(pred.state_dict().values()))
    assert torch.equal(a, next(iter(sam2_prop.predictor.state_dict().values())))
    bad = tmp_path / "bad.pt"
    torch.save({"model": {"not_a_weight": torch.zeros(1)}}, bad)
    with pytest.raises(InputError, match="does not fit"):
        build_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", str(bad), SIZE)
