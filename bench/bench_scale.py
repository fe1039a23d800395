"""Scale: peak memory and time growth of tracking + lifting over long scans (the no-op `dvc repro` and the whole
default pipeline's time: bench_pipeline.py).

Long scans come from `gcseg.synth.stream` (frames ray-cast on demand: the scan is never in memory whole). Each
size runs in a fresh subprocess (reprojection propagation, Algorithm 1 policy, gt_sim keyframe proposals,
VoteAccumulator lifting onto the scene's reference cloud, id maps kept for the artifact) and reports its peak
RSS (the kernel's VmHWM of that process image; getrusage ru_maxrss where /proc is absent) and its CPU time with the
frame rendering subtracted (wall time too, as context).

Target: 5,000 frames at 640x480 within 6 GB for tracking and lifting; time linear in frames and points.
quick: 100, 200, 400 frames at 160x120 plus 20 frames at 640x480; the 5,000-frame 640x480 peak is extrapolated
from the 640x480 run plus the per-frame growth at 160x120 scaled by the pixel ratio (16: conservative, as if all
growth were per pixel). Default: 250, 500, 1000 frames at 640x480, then a least-squares line through them
extrapolated to 5,000 frames. Both are stated as extrapolations in `peak_rss_5000f_note`. GCSEG_BENCH_FULL=1 also runs the
5,000-frame 640x480 scan itself (long: an hour or more on 2 shared cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRIDE = 5  # keyframe every 5 frames (params.yaml sam2_track.keyframe_stride)
# the camera circles the room once per 100 frames (3.6 degrees per frame; the default synth data: 4.7), so every
# scan of >= 100 frames sees the whole room and longer scans only add frames: time and memory per frame are then
# comparable across lengths (a slow orbit would add new objects with every frame and confound length with content)
DEG_PER_FRAME = 3.6


def _peak_rss_mb() -> float:
    """Peak RSS of this process image: VmHWM (ru_maxrss would carry over a larger parent across exec)."""
    import resource

    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def scale_child(frames: int, height: int, width: int, spacing: float = 0.02) -> dict[str, float | int]:
    """In a fresh process: track + lift a lazily rendered scan of `frames` frames; peak RSS and times."""
    from gcseg.proposals.factory import build_proposer
    from gcseg.scene import Scene
    from gcseg.synth.stream import stream_scene
    from gcseg.tracking.policy import TrackingPolicy
    from gcseg.tracking.reprojection import ReprojectionPropagator
    from gcseg.tracking.run import LiftConfig, track_and_lift

    base = stream_scene(0, num_frames=frames, height=height, width=width, depth_noise=0.002, hole_fraction=0.02,
                        orbit_degrees=DEG_PER_FRAME * frames, point_spacing=spacing, max_furniture=8)
    ref = base.reference()
    render_s = [0.0, 0.0]  # wall, CPU

    def timed_frame(i: int):
        t, c = time.perf_counter(), time.process_time()
        f = base.load_frame(i)
        render_s[0] += time.perf_counter() - t
        render_s[1] += time.process_time() - c
        return f

    scene = Scene(scene_id="long", num_frames=frames, image_size=base.image_size, load_frame=timed_frame,
                  load_reference=lambda: ref, source="synth")
    scene.frame(0)
    render_s[:] = [0.0, 0.0]
    start_mb = _peak_rss_mb()
    min_area = max(10, height * width // 200)  # 0.5 % of the image, as params.yaml's 100 px at 160x120
    t0, c0 = time.perf_counter(), time.process_time()
    res, _, labels, _, _, _ = track_and_lift(
        scene, build_proposer("gt_sim", {"boundary_noise": 0.05, "min_area_frac": min_area / (height * width)},
                              seed=0),
        ReprojectionPropagator(), TrackingPolicy(min_new_area=min_area), keyframe_stride=STRIDE, tau_contain=0.8,
        min_area=min_area, lift=LiftConfig())
    wall = time.perf_counter() - t0
    return {"frames": frames, "height": height, "width": width, "reference_points": len(ref),
            "track_lift_s": round(wall - render_s[0], 2), "render_s": round(render_s[0], 2),
            # CPU seconds without rendering: the fairer figure on a shared machine
            "track_lift_cpu_s": round(time.process_time() - c0 - render_s[1], 2),
            "start_rss_mb": round(start_mb, 1), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "id_maps_compressed_mb": round(res.id_maps.nbytes_compressed() / 2**20, 2),
            "objects": int(res.stats["objects_created"]), "labelled_points": int((labels >= 0).sum())}


def _child(frames: int, height: int, width: int, spacing: float = 0.02) -> dict[str, float | int]:
    code = ("import json, sys; sys.path.insert(0, %r); from bench.bench_scale import scale_child; "
            "print(json.dumps(scale_child(%d, %d, %d, %r)))" % (str(ROOT), frames, height, width, spacing))
    # one thread: CPU seconds then measure work (waiting OpenMP threads spin, and count as CPU, on busy cores)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fit(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """Least-squares line y = a + b x and its R^2."""
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    pred = a + b * np.asarray(x, float)
    ss = float(((np.asarray(y) - np.mean(y)) ** 2).sum())
    r2 = 1.0 - float(((np.asarray(y) - pred) ** 2).sum()) / ss if ss > 0 else 1.0
    return float(a), float(b), r2


def _points_scaling(quick: bool) -> dict[str, float | int]:
    """Lifting time against reference-cloud size: the same frames voted onto the reference sampled at two
    spacings (time should grow at most linearly in points: KD-tree / voxel-cache build plus per-pixel lookups)."""
    from gcseg.lifting import VoteAccumulator
    from gcseg.synth.stream import stream_scene

    n, (h, w) = (10, (120, 160)) if quick else (30, (480, 640))
    out: dict[str, float | int] = {}
    for tag, spacing in (("coarse", 0.04), ("fine", 0.02)):
        scene = stream_scene(0, num_frames=n, height=h, width=w, orbit_degrees=DEG_PER_FRAME * n,
                             point_spacing=spacing)
        frames = [scene.frame(i) for i in range(n)]
        ref = scene.reference().coord
        t0 = time.process_time()
        acc = VoteAccumulator(ref, max_dist=0.05, voxel=0.01, association="pixel")
        for f in frames:
            acc.add(f, f.instance)
        acc.result(min_share=0.5, min_points=100)
        out[f"lift_points_{tag}"] = len(ref)
        out[f"lift_cpu_s_{tag}"] = round(time.process_time() - t0, 3)
    ratio_t = out["lift_cpu_s_fine"] / max(float(out["lift_cpu_s_coarse"]), 1e-9)
    ratio_p = out["lift_points_fine"] / max(int(out["lift_points_coarse"]), 1)
    out["lift_points_frames"] = n
    out["lift_time_ratio_over_points_ratio"] = round(ratio_t / ratio_p, 3)  # <= 1: at most linear in points
    return out


def run(quick: bool) -> dict[str, float | int | str]:
    h, w = (120, 160) if quick else (480, 640)
    sizes = [100, 200, 400] if quick else [250, 500, 1000]
    runs = [_child(n, h, w) for n in sizes]
    out: dict[str, float | int | str] = {"long_scan_size": f"{w}x{h}", "keyframe_stride": STRIDE,
                                         "degrees_per_frame": DEG_PER_FRAME,
                                         "reference_points": runs[0]["reference_points"]}
    for r in runs:
        n = r["frames"]
        out[f"frames_{n}_track_lift_s"] = r["track_lift_s"]
        out[f"frames_{n}_track_lift_cpu_s"] = r["track_lift_cpu_s"]
        out[f"frames_{n}_peak_rss_mb"] = r["peak_rss_mb"]
        out[f"frames_{n}_id_maps_mb"] = r["id_maps_compressed_mb"]
        out[f"frames_{n}_objects"] = r["objects"]
    x = [float(r["frames"]) for r in runs]
    a, b, r2 = _fit(x, [float(r["track_lift_cpu_s"]) for r in runs])
    _, br, _ = _fit(x, [float(r["peak_rss_mb"]) for r in runs])
    out["cpu_ms_per_frame_slope"] = round(1000 * b, 2)
    out["time_linear_fit_r2"] = round(r2, 4)
    # marginal CPU cost per added frame between consecutive lengths; last / first = 1.0 when time is linear in
    # frames (the intercept, e.g. a cheaper first loop round the room, does not enter it)
    marg = [(runs[i + 1]["track_lift_cpu_s"] - runs[i]["track_lift_cpu_s"]) / (runs[i + 1]["frames"] - runs[i]["frames"])
            for i in range(len(runs) - 1)]
    for i, m in enumerate(marg):
        out[f"marginal_cpu_ms_per_frame_{runs[i]['frames']}_to_{runs[i + 1]['frames']}"] = round(1000 * m, 2)
    out["marginal_cost_ratio_last_over_first"] = round(marg[-1] / max(marg[0], 1e-9), 3)
    out["rss_mb_per_1000_frames_slope"] = round(1000 * br, 1)
    n_target = 5000
    if os.environ.get("GCSEG_BENCH_FULL") == "1" and not quick:
        full = _child(n_target, 480, 640)
        out["peak_rss_gb_5000f_640x480"] = round(full["peak_rss_mb"] / 1024, 3)
        out["track_lift_cpu_s_5000f_640x480"] = full["track_lift_cpu_s"]
        out["peak_rss_5000f_note"] = "measured (GCSEG_BENCH_FULL=1)"
    elif quick:
        big = _child(20, 480, 640)
        scale = (480 * 640) / (h * w)
        out["frames_20_640x480_peak_rss_mb"] = big["peak_rss_mb"]
        out["frames_20_640x480_track_lift_cpu_s"] = big["track_lift_cpu_s"]
        rss = big["peak_rss_mb"] + max(br, 0.0) * scale * (n_target - 20)
        out["peak_rss_gb_5000f_640x480"] = round(rss / 1024, 3)
        out["track_lift_cpu_s_5000f_640x480"] = round(big["track_lift_cpu_s"] / 20 * n_target, 1)
        out["peak_rss_5000f_note"] = (
            f"EXTRAPOLATED: peak of a 20-frame 640x480 scan + {n_target - 20} frames x the per-frame RSS growth "
            f"fitted over {', '.join(str(int(v)) for v in x)} frames at {w}x{h} scaled by the pixel ratio {scale:g} "
            "(conservative); GCSEG_BENCH_FULL=1 without --quick measures it")
    else:
        ar = float(np.polyfit(x, [float(r["peak_rss_mb"]) for r in runs], 1)[1])
        out["peak_rss_gb_5000f_640x480"] = round((ar + br * n_target) / 1024, 3)
        out["track_lift_cpu_s_5000f_640x480"] = round(a + b * n_target, 1)
        out["peak_rss_5000f_note"] = (
            f"EXTRAPOLATED by least-squares lines through {', '.join(str(int(v)) for v in x)} frames at {w}x{h}; "
            "GCSEG_BENCH_FULL=1 measures it")
    out.update(_points_scaling(quick))
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
