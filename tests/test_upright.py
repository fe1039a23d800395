"""gcseg.upright: the world's up from camera poses (pictures, and the rgbd proposer's scene-level up)."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import InputError
from gcseg.scene import Frame, Scene
from gcseg.synth.camera import look_at
from gcseg.upright import Z_UP, estimate_up, proposer_up, scene_up, up_from_poses

EYE = np.array([0.0, 0.0, 1.5])


def pitched(pitch_deg: float, headings_deg: np.ndarray, world: np.ndarray = np.eye(4)) -> list[np.ndarray]:
    """Camera-to-world poses at EYE looking `pitch_deg` down (z-up world) at each heading, then mapped by `world`."""
    p = np.radians(pitch_deg)
    out = []
    for h in np.radians(headings_deg):
        d = np.array([np.cos(h) * np.cos(p), np.sin(h) * np.cos(p), -np.sin(p)])
        out.append(world @ look_at(EYE, EYE + d))
    return out


def scene_of(poses: list[np.ndarray], fail: bool = False) -> Scene:
    def load(i: int) -> Frame:
        if fail:
            raise InputError("unreadable frame")
        return Frame(index=i, color=np.zeros((4, 4, 3), np.uint8), depth=np.ones((4, 4), np.float32),
                     intrinsics=np.eye(3), pose=poses[i])

    return Scene("s", len(poses), (4, 4), load)


@pytest.mark.parametrize("pitch", [20, 60, 70])
@pytest.mark.parametrize("sweep", [45, 90, 180, 360])
def test_steeply_pitched_sweeps_are_z_up(pitch, sweep):
    """The cameras' x axes are horizontal: a sweep of headings gives up however steeply they look down (the mean
    camera up alone is dragged towards where they look: for 60 degrees over 180 or less it is nearer x)."""
    poses = pitched(pitch, np.linspace(-sweep / 2, sweep / 2, 12, endpoint=sweep < 360))
    np.testing.assert_array_equal(estimate_up(poses, snap_deg=45), Z_UP)
    np.testing.assert_array_equal(up_from_poses(poses), Z_UP)
    if pitch >= 60 and sweep <= 180:
        mean_up = -np.mean([q[:3, 1] for q in poses], axis=0)
        assert abs(mean_up[0]) > abs(mean_up[2])  # what the mean alone would say


def test_y_up_world_and_fallbacks():
    to_y_up = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])  # +z up becomes +y up
    poses = pitched(65, np.linspace(-60, 60, 9), to_y_up)
    np.testing.assert_array_equal(proposer_up(scene_of(poses)), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(scene_up(scene_of(poses)), [0.0, 1.0, 0.0])
    lost = np.full((4, 4), np.nan)  # a pose lost by the tracker (ScanNet's -inf / NaN poses) is left out
    np.testing.assert_array_equal(estimate_up([lost, *poses], snap_deg=45), [0.0, 1.0, 0.0])
    # one heading, mildly pitched: the mean camera up, snapped within 45 degrees for the proposer
    one = pitched(35, np.zeros(5))
    np.testing.assert_array_equal(proposer_up(scene_of(one)), Z_UP)
    assert not np.array_equal(scene_up(scene_of(one)), Z_UP)  # 35 degrees off: not snapped at 25 for pictures
    # cameras every which way, no poses, unreadable frames: no evidence (the proposer keeps its per-frame rule)
    from scipy.spatial.transform import Rotation

    random = []
    for r in Rotation.random(200, random_state=0).as_matrix():
        m = np.eye(4)
        m[:3, :3] = r
        random.append(m)
    assert estimate_up(random) is None and proposer_up(scene_of(random)) is None
    np.testing.assert_array_equal(up_from_poses(random), Z_UP)
    assert proposer_up(scene_of([])) is None and proposer_up(scene_of(poses, fail=True)) is None
    np.testing.assert_array_equal(scene_up(scene_of(poses, fail=True)), Z_UP)
