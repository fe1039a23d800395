"""Synthetic scene generation speed (gcseg.synth): a whole scene (layout, ray casting, reference cloud with
visibility, sensor noise) and, side by side on the same frames, the ray caster with screen-space culling vs
brute force (every primitive against every ray; both must give identical depth and ids); and a dataset written
by one process and by a worker process per core (gcseg.parallel, the stage's --jobs), side by side: the wall-time
ratio and whether the bytes are the same.
Full: 100 frames at 320x240 (dataset: 4 scenes of 40 frames); quick: 20 frames at 160x120 (2 scenes of 10).
Target: full scene < 10 s on 2 cores."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from gcseg.parallel import available_cores
from gcseg.synth import generate_scene, write_dataset
from gcseg.synth.camera import intrinsics
from gcseg.synth.generate import ROOM_PRIMITIVES
from gcseg.synth.primitives import pack
from gcseg.synth.render import camera_rays, render_frame


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def _tree_md5(root: Path) -> str:
    h = hashlib.md5()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def _dataset_jobs(quick: bool) -> dict[str, float | int | str]:
    """The same dataset by 1 process and by a worker per core, timed one after the other."""
    n, frames, h, w = (2, 10, 120, 160) if quick else (4, 40, 240, 320)
    jobs = min(available_cores(), n)
    with tempfile.TemporaryDirectory() as tmp:
        walls, digests = {}, {}
        for j in (1, jobs):
            root = Path(tmp) / f"jobs{j}"
            _, walls[j], _ = _timed(lambda root=root, j=j: write_dataset(
                root, num_scenes=n, num_val=1, seed=0, progress=False, jobs=j, num_frames=frames, height=h, width=w))
            digests[j] = _tree_md5(root)
    return {"dataset_scenes": n, "dataset_jobs": jobs, "dataset_wall_s_1_job": round(walls[1], 3),
            "dataset_wall_s_jobs": round(walls[jobs], 3),
            "dataset_1_job_over_jobs_wall": round(walls[1] / max(walls[jobs], 1e-9), 2),
            "dataset_same_bytes": "yes" if digests[1] == digests[jobs] else "NO"}


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
        **_dataset_jobs(quick),
        "target": "100 frames at 320x240 < 10 s on 2 cores (full mode)",
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1))
