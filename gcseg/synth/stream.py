"""A lazily rendered synthetic scan: frame i is ray-cast on demand from the layout and the camera path, so a
5,000-frame 640x480 scan never sits in memory (what the memory and scaling benchmarks need).

`generate_scene` renders every frame up front (the reference cloud keeps only points some frame sees); here
only the layout, the poses and the reference cloud are held. With the same seed and options the layout and the
poses equal `generate_scene`'s, and so do the noise-free frames; the sensor noise (depth noise, holes) is drawn
per frame from (seed, frame index) so that any frame can be rendered alone, in any order. The reference cloud
samples every surface of the room (there are no rendered frames to test visibility against).
"""

from __future__ import annotations

import numpy as np

from gcseg.scene import Frame, PointCloud, Scene
from gcseg.synth.camera import camera_path, intrinsics
from gcseg.synth.generate import ROOM_PRIMITIVES, _holes, check_options
from gcseg.synth.layout import make_layout
from gcseg.synth.primitives import pack
from gcseg.synth.reference import reference_cloud
from gcseg.synth.render import camera_rays, render_frame


def stream_scene(seed: int, *, num_frames: int, height: int, width: int, hfov_deg: float = 65.0,
                 depth_noise: float = 0.0, hole_fraction: float = 0.0, point_spacing: float = 0.02,
                 max_furniture: int = 8, orbit_degrees: float = 330.0, camera_jitter: float = 1.0,
                 min_instance_points: int = 100, scene_id: str = "") -> Scene:
    """A `gcseg.scene.Scene` whose `load_frame(i)` renders frame i when asked (nothing is cached).

    Same options as `gcseg.synth.generate_scene` (a long scan walks several times around the room: e.g.
    orbit_degrees = 0.5 * num_frames). Memory: the packed layout, `num_frames` poses (128 B each), one ray
    grid and the reference cloud; each loaded frame is built fresh and freed by the caller."""
    check_options(num_frames=num_frames, max_frames=10_000_000, height=height, width=width, hfov_deg=hfov_deg,
                  depth_noise=depth_noise, hole_fraction=hole_fraction, point_spacing=point_spacing,
                  max_furniture=max_furniture)
    # the same child streams as generate_scene: equal layout and camera path for equal options
    layout_ss, camera_ss, ref_ss, noise_ss = np.random.SeedSequence(int(seed)).spawn(4)
    layout = make_layout(np.random.default_rng(layout_ss), max_furniture=max_furniture)
    packed = pack(layout.primitives)
    k = intrinsics(height, width, hfov_deg)
    poses = camera_path(np.random.default_rng(camera_ss), layout.ring, num_frames, orbit_degrees=orbit_degrees,
                        jitter=camera_jitter)
    rays = camera_rays(k, height, width)
    noise_key = int(noise_ss.generate_state(1, np.uint32)[0])
    reference: list[PointCloud] = []  # sampled on first use (tracking-only callers never pay for it)

    def load_frame(i: int) -> Frame:
        r = render_frame(packed, layout.room, ROOM_PRIMITIVES, k, poses[i], height, width, rays)
        depth = r.depth.astype(np.float64)
        if depth_noise > 0 or hole_fraction > 0:
            rng = np.random.default_rng([noise_key, int(i)])  # per frame: any frame renders alone
            if depth_noise > 0:
                depth += rng.normal(size=(height, width)) * depth_noise * depth
            depth[_holes(rng, height, width, hole_fraction)] = 0.0
        depth_mm = np.clip(np.round(depth * 1000.0), 0, 65535)  # as depth/<i>.png stores it
        return Frame(index=int(i), color=r.color, depth=(depth_mm / 1000.0).astype(np.float32), intrinsics=k,
                     pose=poses[i], instance=packed.instance[r.index].astype(np.int32),
                     part=packed.part[r.index].astype(np.int32), name=str(i))

    def load_reference() -> PointCloud:
        if not reference:
            empty = np.zeros((0, height, width), np.float32)
            reference.append(reference_cloud(
                packed, layout.room, ROOM_PRIMITIVES, point_spacing, np.random.default_rng(ref_ss), depth=empty,
                gt_instance=empty.astype(np.int32), k=k, poses=poses[:0], visible_only=False,
                min_points=min_instance_points))
        return reference[0]

    return Scene(scene_id=scene_id or f"synth_stream_seed{int(seed)}", num_frames=int(num_frames),
                 image_size=(int(height), int(width)), load_frame=load_frame, load_reference=load_reference,
                 source="synth")
