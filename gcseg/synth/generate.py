"""`generate_scene`: one synthetic indoor scan (frames, intrinsics, poses, GT, reference cloud) from a seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from gcseg.errors import ConfigError
from gcseg.scene import Frame, PointCloud, Scene
from gcseg.synth.camera import camera_path, intrinsics
from gcseg.synth.layout import LABELS, Layout, make_layout
from gcseg.synth.primitives import pack
from gcseg.synth.reference import reference_cloud
from gcseg.synth.render import camera_rays, render_frame

ROOM_PRIMITIVES = 6  # floor, ceiling, 4 walls: the first primitives of every layout


@dataclass(frozen=True)
class SynthScene:
    """A generated scan held in memory. Depth is already quantised to millimetres (exactly what
    `depth/<i>.png` holds); colour is the lossless render (the written JPEG differs by compression only)."""

    scene_id: str
    seed: int
    color: np.ndarray  # uint8 (F, H, W, 3)
    depth: np.ndarray  # float32 (F, H, W) metres, 0 = invalid (hole)
    instance: np.ndarray  # int32 (F, H, W) GT object instance ids, 0 = void (room shell)
    part: np.ndarray  # int32 (F, H, W) GT part ids (unique in the scene), 0 = void
    intrinsics: np.ndarray  # float64 (3, 3)
    poses: np.ndarray  # float64 (F, 4, 4) camera-to-world, OpenCV axes, world +z up
    reference: PointCloud  # coord, color, instance, segment (semantic label; 0 = void)
    layout: Layout = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.depth.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.depth.shape[1]), int(self.depth.shape[2])

    def frame(self, i: int) -> Frame:
        return Frame(index=i, color=self.color[i], depth=self.depth[i], intrinsics=self.intrinsics,
                     pose=self.poses[i], instance=self.instance[i], part=self.part[i], name=str(i))

    def to_scene(self) -> Scene:
        """The in-memory scene as a `gcseg.scene.Scene` (for tests and stages that take scenes)."""
        return Scene(scene_id=self.scene_id, num_frames=self.num_frames, image_size=self.image_size,
                     load_frame=self.frame, load_reference=lambda: self.reference, source="synth")

    def meta(self) -> dict[str, Any]:
        """JSON-able description: seed, options, room, objects with their parts, label names."""
        room = self.layout.room
        return {
            "scene_id": self.scene_id,
            "seed": self.seed,
            "generator": "gcseg.synth",
            "options": self.options,
            "num_frames": self.num_frames,
            "image_size": list(self.image_size),
            "room": {"length": room.length, "width": room.width, "height": room.height},
            "labels": {str(k): v for k, v in LABELS.items()},
            "objects": [o.to_json() for o in self.layout.objects],
            "num_reference_points": len(self.reference),
        }


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{name} = {value} is out of range [{lo}, {hi}]", fix=f"pass {name} within [{lo}, {hi}]")


def _holes(rng: np.random.Generator, h: int, w: int, fraction: float) -> np.ndarray:
    """Blob-shaped invalid-depth mask covering about `fraction` of the pixels (sensor dropouts)."""
    if fraction <= 0:
        return np.zeros((h, w), dtype=bool)
    coarse = rng.uniform(size=(max(2, h // 6), max(2, w // 6)))
    field_ = ndimage.zoom(coarse, (h / coarse.shape[0], w / coarse.shape[1]), order=1)[:h, :w]
    field_ = field_ + 0.03 * rng.uniform(size=field_.shape)  # slightly ragged blob edges
    return field_ >= np.quantile(field_, 1.0 - fraction)


def check_options(*, num_frames: int, max_frames: int, height: int, width: int, hfov_deg: float,
                  depth_noise: float, hole_fraction: float, point_spacing: float, max_furniture: int) -> None:
    """Range checks shared by `generate_scene` and the streamed long scan (`gcseg.synth.stream`)."""
    _check("num_frames", num_frames, 1, max_frames)
    _check("height", height, 8, 4096)
    _check("width", width, 8, 4096)
    _check("hfov_deg", hfov_deg, 20, 140)
    _check("depth_noise", depth_noise, 0.0, 0.2)
    _check("hole_fraction", hole_fraction, 0.0, 0.9)
    _check("point_spacing", point_spacing, 0.002, 0.5)
    _check("max_furniture", max_furniture, 1, 64)


def generate_scene(seed: int, *, num_frames: int, height: int, width: int, hfov_deg: float = 65.0,
                   depth_noise: float = 0.0, hole_fraction: float = 0.0, point_spacing: float = 0.02,
                   max_furniture: int = 8, orbit_degrees: float = 330.0, camera_jitter: float = 1.0,
                   reference_visible_only: bool = True, min_instance_points: int = 100,
                   scene_id: str = "") -> SynthScene:
    """Generate one synthetic indoor scan, deterministically from `seed`.

    The layout, the camera path, the reference sampling and the sensor noise draw from independent child
    streams of `seed`, so e.g. changing `num_frames` or the resolution does not move the furniture.

    depth_noise: std (m) of Gaussian depth noise at 1 m, growing linearly with depth (0 = exact depth).
    hole_fraction: fraction of pixels per frame whose depth is set invalid (0), in blobs.
    point_spacing: reference-cloud sample spacing (m); small objects get denser sampling so every seen
        instance keeps >= `min_instance_points` points.
    """
    check_options(num_frames=num_frames, max_frames=100000, height=height, width=width, hfov_deg=hfov_deg,
                  depth_noise=depth_noise, hole_fraction=hole_fraction, point_spacing=point_spacing,
                  max_furniture=max_furniture)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4)]
    layout_rng, camera_rng, ref_rng, noise_rng = streams
    layout = make_layout(layout_rng, max_furniture=max_furniture)
    packed = pack(layout.primitives)
    k = intrinsics(height, width, hfov_deg)
    poses = camera_path(camera_rng, layout.ring, num_frames, orbit_degrees=orbit_degrees, jitter=camera_jitter)
    rays = camera_rays(k, height, width)
    color = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    depth = np.empty((num_frames, height, width), dtype=np.float32)
    index = np.empty((num_frames, height, width), dtype=np.int32)
    for f in range(num_frames):
        r = render_frame(packed, layout.room, ROOM_PRIMITIVES, k, poses[f], height, width, rays)
        color[f], depth[f], index[f] = r.color, r.depth, r.index
    instance = packed.instance[index]
    part = packed.part[index]
    reference = reference_cloud(packed, layout.room, ROOM_PRIMITIVES, point_spacing, ref_rng, depth=depth,
                                gt_instance=instance, k=k, poses=poses, visible_only=reference_visible_only,
                                min_points=min_instance_points)
    noisy = depth.astype(np.float64)
    for f in range(num_frames):
        if depth_noise > 0:
            noisy[f] += noise_rng.normal(size=(height, width)) * depth_noise * noisy[f]
        noisy[f][_holes(noise_rng, height, width, hole_fraction)] = 0.0
    # millimetre quantisation, as stored in depth/<i>.png (uint16: at most 65.535 m)
    depth_mm = np.clip(np.round(noisy * 1000.0), 0, 65535)
    options = {"num_frames": num_frames, "height": height, "width": width, "hfov_deg": hfov_deg,
               "depth_noise": depth_noise, "hole_fraction": hole_fraction, "point_spacing": point_spacing,
               "max_furniture": max_furniture, "orbit_degrees": orbit_degrees, "camera_jitter": camera_jitter,
               "reference_visible_only": reference_visible_only, "min_instance_points": min_instance_points}
    return SynthScene(scene_id=scene_id or f"synth_seed{int(seed)}", seed=int(seed), color=color,
                      depth=(depth_mm / 1000.0).astype(np.float32), instance=instance.astype(np.int32),
                      part=part.astype(np.int32), intrinsics=k, poses=poses, reference=reference, layout=layout,
                      options=options)
