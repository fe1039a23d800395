"""The `rgbd` proposer on a small rendered room: a table with things on it, a chair, the room shell around."""

from __future__ import annotations

import numpy as np
import pytest

from gcseg.errors import ConfigError, InputError
from gcseg.proposals.containment import containment_filter
from gcseg.proposals.factory import build_proposer
from gcseg.proposals.rgbd import RgbdConfig, RgbdProposer
from gcseg.scene import Frame

H, W = 120, 160


def _render_room(h: int = H, w: int = W, up_axis: str = "z", eye: tuple[float, float, float] = (-0.2, -1.6, 1.5),
                 target: tuple[float, float, float] = (0.1, 0.2, 0.6)) -> Frame:
    """A 4 x 3.5 m room with a table carrying a cup, a bottle and a box, a chair, seen from `eye` (by default
    1.5 m high, looking 26 degrees down). `up_axis` "y": the same frame with the world rotated so that +y is up
    (as the HoloLens capture)."""
    from gcseg.synth.camera import intrinsics, look_at
    from gcseg.synth.catalogue import Builder, Context, _build_item, build_furniture
    from gcseg.synth.layout import Room, _room_shell
    from gcseg.synth.primitives import pack
    from gcseg.synth.render import render_frame

    ctx = Context(np.random.default_rng(7))
    room = Room(4.0, 3.5, 2.7)
    _room_shell(ctx, room)
    ctx.rng = np.random.default_rng(3)
    table = build_furniture(ctx, "chair", (0.45, 0.45, 0.9), (0.9, 0.2, 0.0), np.pi / 2)
    table = Builder(ctx, "table", (0.0, 0.0, 0.0), 0.0)
    table.box("top", (0, 0, 0.73), (1.2, 0.8, 0.04), (0.6, 0.4, 0.2))
    for sx in (-1, 1):
        for sy in (-1, 1):
            table.box("leg", (sx * 0.54, sy * 0.34, 0.355), (0.05, 0.05, 0.71), (0.1, 0.1, 0.1))
    obj = table.finish((0.6, 0.4), 0.75)
    for kind, dims, x in (("cup", (0.1, 0.08, 0.1), -0.35), ("bottle", (0.08, 0.08, 0.26), 0.0),
                          ("small_box", (0.18, 0.14, 0.12), 0.3)):
        _build_item(ctx, kind, dims, (x, 0.05, 0.75), 0.0, obj.instance)
    packed = pack(ctx.primitives)
    k = intrinsics(h, w, 65.0)
    pose = look_at(np.array(eye, float), np.array(target, float))
    r = render_frame(packed, room, 6, k, pose, h, w)
    depth = r.depth.astype(np.float32) * (1 + 0.002 * np.random.default_rng(0).standard_normal((h, w)))
    depth = np.round(depth * 1000) / 1000
    if up_axis == "y":  # world (x, y, z) -> (x, z, -y): +z up becomes +y up
        rot = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])
        pose = rot @ pose
    return Frame(index=0, color=r.color, depth=depth.astype(np.float32), intrinsics=k, pose=pose,
                 instance=packed.instance[r.index].astype(np.int32), part=packed.part[r.index].astype(np.int32))


@pytest.fixture(scope="module")
def room_frame() -> Frame:
    return _render_room()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _best(masks: np.ndarray, gt: np.ndarray) -> tuple[int, float]:
    ious = [_iou(m, gt) for m in masks]
    j = int(np.argmax(ious))
    return j, ious[j]


def test_default_backend_is_registered():
    assert isinstance(build_proposer("rgbd", None), RgbdProposer)


def test_table_and_what_stands_on_it_are_separate_whole_objects(room_frame):
    props = RgbdProposer()(room_frame)
    assert props.masks.shape[1:] == room_frame.hw and props.scores.dtype == np.float32
    assert np.all((props.scores >= 0) & (props.scores <= 1))
    kept = props.masks[containment_filter(props.masks, props.scores, 0.8)]
    inst = room_frame.instance
    ids = [int(i) for i in np.unique(inst) if i > 0 and (inst == i).sum() >= 30]
    assert len(ids) >= 5  # chair, table, cup, bottle, box
    for i in ids:  # every object survives the containment filter as one mask of its own
        _, iou = _best(kept, inst == i)
        assert iou >= 0.6, (i, iou)


def test_the_room_shell_is_not_a_mask(room_frame):
    props = RgbdProposer()(room_frame)
    shell = room_frame.instance == 0
    assert shell.mean() > 0.3
    covered = props.masks.any(0)
    assert (covered & shell).sum() < 0.05 * shell.sum()
    assert props.masks.mean((1, 2)).max() <= 0.5  # no giant region


def test_whole_objects_rank_above_their_parts(room_frame):
    props = RgbdProposer()(room_frame)
    inst = room_frame.instance
    for name_id in {int(inst[room_frame.part == p][0]) for p in np.unique(room_frame.part) if p > 0}:
        j, iou = _best(props.masks, inst == name_id)
        if iou < 0.6:
            continue
        whole = props.masks[j]
        inside = [i for i in range(len(props)) if i != j
                  and (props.masks[i] & whole).sum() > 0.8 * props.masks[i].sum()]
        assert all(props.scores[i] < props.scores[j] for i in inside)
    # and the table's legs / top come out as parts too
    table = max(np.unique(inst[inst > 0]), key=lambda i: (inst == i).sum())
    whole = props.masks[_best(props.masks, inst == table)[0]]
    parts = [m for m in props.masks if (m & whole).sum() > 0.8 * m.sum() and m.sum() < 0.95 * whole.sum()]
    assert len(parts) >= 2


def test_deterministic(room_frame):
    a = RgbdProposer()(room_frame)
    b = build_proposer("rgbd", {})(room_frame)
    assert a.masks.tobytes() == b.masks.tobytes() and a.scores.tobytes() == b.scores.tobytes()


def test_world_up_is_found_not_assumed(room_frame):
    """The same view in a y-up world (HoloLens convention) gives the same whole objects."""
    z_up = RgbdProposer()(room_frame)
    y_up = RgbdProposer()(_render_room(up_axis="y"))
    keep_z = z_up.masks[containment_filter(z_up.masks, z_up.scores, 0.8)]
    keep_y = y_up.masks[containment_filter(y_up.masks, y_up.scores, 0.8)]
    assert len(keep_z) == len(keep_y)
    for m in keep_z:
        assert _best(keep_y, m)[1] >= 0.9


def test_large_frames_are_segmented_at_the_working_size():
    frame = _render_room(240, 320)
    props = RgbdProposer({"work_pixels": H * W})(frame)
    assert props.masks.shape[1:] == (240, 320) and len(props) > 0


def test_no_valid_depth_gives_no_masks(room_frame):
    f = Frame(0, room_frame.color, np.zeros(room_frame.hw, np.float32), room_frame.intrinsics, room_frame.pose)
    props = RgbdProposer()(f)
    assert props.masks.shape == (0,) + room_frame.hw and props.scores.shape == (0,)


def test_constant_image_is_well_defined(room_frame):
    """A grey wall straight ahead: a plane, no object on it."""
    f = Frame(0, np.full(room_frame.hw + (3,), 128, np.uint8), np.full(room_frame.hw, 2.0, np.float32),
              room_frame.intrinsics, room_frame.pose)
    props = RgbdProposer()(f)
    assert props.masks.shape[1:] == room_frame.hw
    assert len(props) == 0 or props.masks.mean((1, 2)).max() <= 0.5


@pytest.mark.parametrize("what, match", [("nan", "non-finite"), ("negative", "negative"), ("size", "colour is"),
                                         ("dtype", "uint8"), ("pose", "pose")])
def test_bad_input_is_a_clear_error(room_frame, what, match):
    depth, color, pose = room_frame.depth.copy(), room_frame.color, room_frame.pose
    if what == "nan":
        depth[5, 5] = np.nan
    elif what == "negative":
        depth[5, 5] = -1.0
    elif what == "size":
        color = color[:-1]
    elif what == "dtype":
        color = color.astype(np.float32)
    elif what == "pose":
        pose = pose.copy()
        pose[0, 3] = np.inf
    with pytest.raises(InputError, match=match):
        RgbdProposer()(Frame(0, color, depth, room_frame.intrinsics, pose))


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown rgbd option"):
        build_proposer("rgbd", {"scale": 3})
    with pytest.raises(ConfigError, match="median_px"):
        RgbdConfig(median_px=0)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def test_scene_up_fixes_a_camera_pitched_steeply_down():
    """Looking 65 degrees down at the table (a hand-held scan of a table top): the frame alone takes the world
    axis nearest the camera's up, the horizontal y (the floor and the table top become walls, objects are lost);
    the scene's up (RgbdProposer.for_scene) starts it at z, refined to the horizontal surfaces as before."""
    frame = _render_room(eye=(0.0, -0.6, 1.7), target=(0.0, 0.0, 0.4))
    forward = frame.pose[:3, 2]
    assert 60 <= np.degrees(np.arcsin(-forward[2])) <= 70
    inst = frame.instance
    ids = [int(i) for i in np.unique(inst) if i > 0 and (inst == i).sum() >= 30]

    def run(proposer: RgbdProposer) -> tuple[np.ndarray, int]:
        view, _ = proposer.segment(frame)
        props = proposer(frame)
        kept = props.masks[containment_filter(props.masks, props.scores, 0.8)]
        return view.up_world, sum(_best(kept, inst == i)[1] >= 0.6 for i in ids)

    alone_up, alone_hits = run(RgbdProposer())
    scene_up, scene_hits = run(RgbdProposer().for_scene([0.0, 0.0, 1.0]))
    assert _angle(alone_up, np.array([0.0, 1.0, 0.0])) < 5  # what the frame alone gets: horizontal
    assert _angle(scene_up, np.array([0.0, 0.0, 1.0])) < 2  # with the scene's up: the real up
    assert len(ids) >= 5 and scene_hits >= len(ids) - 1 and scene_hits > alone_hits + 1, (alone_hits, scene_hits)
    # the default view (26 degrees down): the scene's up changes nothing, byte for byte
    default = _render_room()
    a, b = RgbdProposer()(default), RgbdProposer(up=(0, 0, 2))(default)
    assert a.masks.tobytes() == b.masks.tobytes() and a.scores.tobytes() == b.scores.tobytes()


def test_for_scene_binds_the_up_from_the_scene_poses():
    """gcseg.proposals.factory.for_scene: rgbd gets the scene's up from its poses (cameras pitched 65 degrees
    down over a 90 degree sweep: z, where the mean camera up would be the horizontal x); other backends are
    returned as they are."""
    from gcseg.proposals.factory import for_scene
    from gcseg.scene import Scene
    from gcseg.synth.camera import look_at

    poses = []
    for h in np.radians(np.linspace(-45, 45, 10)):
        d = np.array([np.cos(h) * np.cos(np.radians(65)), np.sin(h) * np.cos(np.radians(65)), -np.sin(np.radians(65))])
        poses.append(look_at(np.array([0.0, 0.0, 1.5]), np.array([0.0, 0.0, 1.5]) + d))

    def load(i: int) -> Frame:
        return Frame(index=i, color=np.zeros((8, 8, 3), np.uint8), depth=np.ones((8, 8), np.float32),
                     intrinsics=np.array([[8.0, 0, 4], [0, 8, 4], [0, 0, 1]]), pose=poses[i])

    scene = Scene("pitched", len(poses), (8, 8), load)
    base = RgbdProposer()
    bound = for_scene(base, scene)
    assert isinstance(bound, RgbdProposer) and bound is not base and base.up is None
    np.testing.assert_array_equal(bound.up, [0.0, 0.0, 1.0])
    assert for_scene(bound, scene) is bound  # bound once; an up given by the caller is kept too
    classical = build_proposer("classical", {})
    assert for_scene(classical, scene) is classical
    assert RgbdProposer(up=[0, 3, 4]).up.tolist() == [0.0, 0.6, 0.8]
    for bad in ([0, 0, 0], [0, 0, np.nan], [0, 1]):
        with pytest.raises(ConfigError, match="scene up"):
            RgbdProposer(up=bad)
