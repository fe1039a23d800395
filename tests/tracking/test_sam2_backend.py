"""The real SAM2 video-predictor code path with random weights at a small image size (its masks are meaningless;
the plumbing is what is tested): one inference state per scan, so windows give exactly what one long video gives;
bounded memory; identity across an object leaving and re-entering; checkpoint errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sam2")

from gcseg.errors import ConfigError, InputError  # noqa: E402
from gcseg.tracking.consistency import ConsistencyMeter  # noqa: E402
from gcseg.tracking.policy import TrackingPolicy  # noqa: E402
from gcseg.tracking.propagators import build_propagator  # noqa: E402
from gcseg.tracking.run import track_scene, tracked_id_map  # noqa: E402
from gcseg.tracking.sam2_backend import RANDOM_INIT, Sam2Propagator, build_video_predictor  # noqa: E402

from .conftest import H, W, make_scene  # noqa: E402
from .test_run import gt_proposer  # noqa: E402
from .test_scripted import ids_of, pan_poses  # noqa: E402

SIZE = 128  # SAM2's image size for tests (native 1024)


@pytest.fixture(scope="module")
def sam2_prop() -> Sam2Propagator:
    return Sam2Propagator(checkpoint=RANDOM_INIT, image_size=SIZE)


def run_windows(prop: Sam2Propagator, frames, starts: list[int], cond: dict[int, dict[int, np.ndarray]]):
    """Propagate windows [starts[k], starts[k + 1]] (the last one to the end), conditioning `cond[frame]` on each
    window's first frame; returns the masks of frames 1.. in order."""
    prop.reset()
    out = []
    bounds = starts + [len(frames) - 1]
    for a, b in zip(bounds[:-1], bounds[1:]):
        prop.condition(frames[a], cond.get(a, {}))
        out += list(prop.propagate(frames[a:b + 1]))
    return out


def test_windows_give_exactly_what_one_long_video_gives(sam2_prop):
    """The memory bank survives window boundaries: tracking 7 frames in three windows equals tracking them in
    one (the old design rebuilt the state from anchor frames every window and could not)."""
    frames = list(make_scene(7).frames())
    cond = {0: {2: frames[0].instance == 2, 3: frames[0].instance == 3}}
    whole = run_windows(sam2_prop, frames, [0], cond)
    windows = run_windows(sam2_prop, frames, [0, 2, 4], cond)
    assert len(whole) == len(windows) == 6
    for a, b in zip(whole, windows):
        assert a.keys() == b.keys() and all(np.array_equal(a[i], b[i]) for i in a)
        assert all(m.shape == (H, W) and m.dtype == np.bool_ for m in a.values())
    # new objects join the running state and removed ones leave it, ids intact
    cond[2] = {4: frames[2].instance == 4}
    sam2_prop.reset()
    sam2_prop.condition(frames[0], cond[0])
    list(sam2_prop.propagate(frames[0:3]))
    sam2_prop.condition(frames[2], cond[2])
    sam2_prop.remove([3])
    assert sam2_prop.held_ids() == [2, 4]
    out = list(sam2_prop.propagate(frames[2:5]))
    assert all(set(m) <= {2, 4} for m in out) and sam2_prop._state["obj_ids"] == [2, 4]
    with pytest.raises(ValueError, match="window starts"):
        sam2_prop.condition(frames[4], {2: frames[4].instance == 2})
        list(sam2_prop.propagate(frames[5:7]))


def test_state_memory_stays_bounded():
    prop = Sam2Propagator(checkpoint=RANDOM_INIT, image_size=SIZE, max_cond_frames=2)
    frames = list(make_scene(12).frames())
    cond = {t: {2: frames[t].instance == 2} for t in range(0, 12, 2)}  # re-conditioned on every keyframe
    run_windows(prop, frames, list(range(0, 11, 2)), cond)
    state, pred = prop._state, prop.predictor
    out = state["output_dict_per_obj"][state["obj_id_to_idx"][2]]
    assert sorted(out["cond_frame_outputs"]) == [8, 10]  # the newest max_cond_frames conditioning frames
    keep_mem = pred.num_maskmem * pred.memory_temporal_stride_for_eval
    full = [t for t, o in out["non_cond_frame_outputs"].items() if o["maskmem_features"] is not None]
    assert min(full) >= 11 - keep_mem and all(o["obj_ptr"] is not None for o in out["non_cond_frame_outputs"].values())
    assert state["mask_inputs_per_obj"][0] == {} and prop._store.indices() == [10, 11]  # only the last window


def test_object_that_leaves_and_reenters_keeps_its_id_through_sam2():
    """Box 4 leaves the view for two keyframes and comes back. SAM2's random masks carry no information, so
    none is counted as visible (min_visible_area = the whole image): every keyframe's identity then rests on
    the backend's re-identification masks (last masks carried by pose), box 4 is TERMINATED (removed from the
    SAM2 state) while away and revived under its id, re-added to the running state."""
    ys = [0.2, 0.2, -0.4, -1.1, -1.3, -1.3, -1.3, -1.1, -0.4, 0.2, 0.2]
    scene = make_scene(poses=pan_poses(ys))
    prop = Sam2Propagator(checkpoint=RANDOM_INIT, image_size=SIZE)
    policy = TrackingPolicy(tau_iou=0.5, tau_dorm=0, min_new_area=5, min_visible_area=H * W)
    meter = ConsistencyMeter()
    removed: list[int] = []

    def on_keyframe(frame, props, step):
        meter.add(frame, tracked_id_map(step.masks, frame.hw))
        removed.extend(step.remove)

    res = track_scene(scene, gt_proposer, prop, policy, keyframe_stride=2, tau_contain=0.8, on_keyframe=[on_keyframe])
    assert res.stats["objects_created"] == 4 and res.stats["revived_terminated"] >= 1
    assert removed and all(policy.tracks[i].revivals >= 1 for i in set(removed))
    cov = meter.covers()
    assert all(len(ids_of(c)) == 1 for c in cov.values())  # one id per object over the whole scan
    assert cov[4][0] is not None and cov[4][-1] == cov[4][0]  # box 4 before leaving and after returning
    assert set(prop._state["obj_ids"]) == set(policy.live_ids())


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
    with pytest.raises(ConfigError, match="max_cond_frames"):
        Sam2Propagator(checkpoint=RANDOM_INIT, max_cond_frames=0)


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
