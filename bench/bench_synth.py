"""Synthetic scene generation speed (gcseg.synth): a whole scene (layout, ray casting, reference cloud with
visibility, sensor noise) and, side by side on the same frames, the ray caster with screen-space culling vs
brute force (every primitive against every ray; both must give identical depth and ids).
Full: 100 frames at 320x240; quick: 20 frames at 160x120. Target: full scene < 10 s on 2 cores."""

from __future__ import annotations

import time

import numpy as np

from gcseg.synth import generate_scene
from gcseg.synth.camera import intrinsics
from gcseg.synth.generate import ROOM_PRIMITIVES
from gcseg.synth.primitives import pack
from gcseg.synth.render import camera_rays, render_frame


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run(quick: bool) -> dict[str, float | int | str]:
    frames, h, w = (20, 120, 160) if quick else (100, 240, 320)
    scene, wall, cpu = _timed(lambda: generate_scene(0, num_frames=frames, height=h, width=w, depth_noise=0.002,
                                                     hole_fraction=0.02))
    # culled vs brute-force ray casting on the same frames of the same layout
    packed_layout = scene.layout
    packed = pack(packed_layout.primitives)
    k = intrinsics(h, w, 65.0)
    rays = camera_rays(k, h, w)
    sample = np.linspace(0, frames - 1, 4 if quick else 6).round().astype(int)
    culled, _, c_cull = _timed(lambda: [render_frame(packed, packed_layout.room, ROOM_PRIMITIVES, k, scene.poses[i],
                                                     h, w, rays) for i in sample])
    brute, _, c_brute = _timed(lambda: [render_frame(packed, packed_layout.room, ROOM_PRIMITIVES, k, scene.poses[i],
                                                     h, w, rays, cull=False) for i in sample])
    same = all(np.array_equal(a.depth, b.depth) and np.array_equal(a.index, b.index) for a, b in zip(culled, brute))
    return {
        "frames": frames, "image": f"{w}x{h}", "primitives": len(packed), "objects": len(scene.layout.objects),
        "reference_points": len(scene.reference),
        "scene_wall_s": round(wall, 3), "scene_cpu_s": round(cpu, 3),
        "frames_per_cpu_s": round(frames / max(cpu, 1e-9), 1),
        "render_ms_per_frame_cpu": round(1000 * c_cull / len(sample), 2),
        "brute_force_over_culled_cpu": round(c_brute / max(c_cull, 1e-9), 2),
        "culled_equals_brute_force": "yes" if same else "NO",
        "target": "100 frames at 320x240 < 10 s on 2 cores (full mode)",
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1))
