"""Training-free baselines (stage `baselines`) against `sam2_track` on the same scenes, side by side.

Per scene, in one process: `sam2_track`'s work (keyframe proposals, Algorithm 1 with the reprojection
propagator, lifting: gcseg.tracking.run.track_and_lift with the default params) and then every baseline row as
the stage computes it (its own keyframe proposals and point association included; SAI3D rows also counted with
the superpoints computed from scratch, which the pipeline's `superpoints` stage computes once for the model and the
baselines alike). Wall and CPU seconds; the target is each row within 2x of sam2_track's time on the default.

full: the default's val scenes (synthetic, 320x240, 70 frames; scenes 4..7 of 8 at seed 0), default params with
the keyframe proposer's min_area at 20 px. quick: one 30-frame 96x128 scene.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn):  # type: ignore[no-untyped-def]
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _scene(i: int, quick: bool):  # type: ignore[no-untyped-def]
    from gcseg.synth.generate import generate_scene
    from gcseg.synth.writer import scene_seed

    if quick:
        return generate_scene(scene_seed(0, i), num_frames=30, height=96, width=128, depth_noise=0.002,
                              hole_fraction=0.02, max_furniture=4, point_spacing=0.04, scene_id=f"synth_{i:03d}")
    return generate_scene(scene_seed(0, i), num_frames=70, height=240, width=320, depth_noise=0.002,
                          hole_fraction=0.02, scene_id=f"synth_{i:03d}")


def run(quick: bool) -> dict[str, float | int | str]:
    import numpy as np
    import yaml

    from gcseg.baselines.run import keyframe_views, run_scene
    from gcseg.proposals.factory import build_proposer
    from gcseg.superpoints import compute_superpoints
    from gcseg.tracking.policy import TrackingPolicy
    from gcseg.tracking.run import IdMapStack, LiftConfig, keyframe_indices, track_and_lift
    from stages._common import load_params
    from stages.baselines import Params, baselines_config
    from stages.sam2_track import Params as TrackParams
    from stages.sam2_track import build_propagator_from, scene_seed
    from stages.superpoints import Params as SuperpointParams
    from stages.sam_keyframes import backend_options

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["sam_keyframes"]["min_area"] = 20
    tmp = ROOT / ".bench_baselines_params.yaml"
    tmp.write_text(yaml.safe_dump(raw))
    try:
        p = load_params(tmp, Params)
        tp = load_params(tmp, TrackParams)
        sp_cfg = load_params(tmp, SuperpointParams).superpoints.config()
    finally:
        tmp.unlink()
    cfg = baselines_config(p)
    sk, st = p.sam_keyframes, p.sam2_track
    # one-time costs of a process (scikit-learn import, numba compilation) stay out of the per-scene figures
    from sklearn.cluster import DBSCAN  # noqa: F401

    compute_superpoints(np.random.default_rng(0).random((64, 3)), None, sp_cfg)
    figures: dict[str, float | int | str] = {"scenes": "", "frame_size": ""}
    totals: dict[str, list[float]] = {}
    for i in ([4] if quick else [4, 5, 6, 7]):
        synth = _scene(i, quick)
        scene = synth.to_scene()
        sid = scene.scene_id
        seed = scene_seed(p.seed, sid)
        figures["scenes"] = f"{figures['scenes']} {sid}".strip()
        figures["frame_size"] = f"{scene.image_size[0]}x{scene.image_size[1]}"
        np.random.seed(seed)
        policy = TrackingPolicy(tau_iou=tp.tau_iou, tau_dorm=tp.tau_dorm,
                                gate_uncovered=st.gate_uncovered, min_new_area=st.min_new_area,
                                min_visible_area=st.min_visible_area, recondition=st.recondition,
                                recondition_iou=st.recondition_iou)
        (result, cloud, _, _), w, c = _timed(lambda: track_and_lift(
            scene, build_proposer(sk.backend, backend_options(sk), seed=seed), build_propagator_from(st, p.seed),
            policy, keyframe_stride=st.keyframe_stride, tau_contain=p.tau_contain, min_area=sk.min_area,
            save_every=st.save_every, lift=LiftConfig(**st.lift.model_dump())))
        totals.setdefault("sam2_track_wall_s", []).append(w)
        totals.setdefault("sam2_track_cpu_s", []).append(c)
        id_maps: IdMapStack = result.id_maps
        sp, sp_w, sp_c = _timed(lambda: compute_superpoints(cloud.coord, cloud.color, sp_cfg))
        totals.setdefault("superpoints_wall_s", []).append(sp_w)
        kf = keyframe_indices(scene.num_frames, st.keyframe_stride)
        for row in cfg.rows:
            one = type(cfg)(rows=(row,), max_dist=cfg.max_dist, tracked_stride=cfg.tracked_stride,
                            maskclustering=cfg.maskclustering, sai3d=cfg.sai3d)
            np.random.seed(seed)
            out, w, c = _timed(lambda: run_scene(
                cloud.coord, one,
                keyframes=lambda: keyframe_views(scene, build_proposer(sk.backend, backend_options(sk), seed=seed),
                                                 kf, tau_contain=p.tau_contain, min_area=sk.min_area),
                tracked=lambda: ((scene.frame(f), id_maps[j].astype(np.int64))
                                 for j, f in enumerate(id_maps.frames) if j % cfg.tracked_stride == 0),
                superpoints=lambda: sp))
            totals.setdefault(f"{row}_wall_s", []).append(w)
            totals.setdefault(f"{row}_cpu_s", []).append(c)
            totals.setdefault(f"{row}_instances", []).append(len(out.rows[row]))
    mean = {k: float(np.mean(v)) for k, v in totals.items()}
    for k, v in sorted(mean.items()):
        figures[f"mean_{k}"] = round(v, 2) if not k.endswith("_instances") else round(v, 1)
    worst = 0.0
    for row in cfg.rows:
        ratio = mean[f"{row}_wall_s"] / mean["sam2_track_wall_s"]
        figures[f"{row}_wall_ratio_over_sam2_track"] = round(ratio, 3)
        figures[f"{row}_cpu_ratio_over_sam2_track"] = round(mean[f"{row}_cpu_s"] / mean["sam2_track_cpu_s"], 3)
        if row.startswith("sai3d"):
            figures[f"{row}_with_superpoints_wall_ratio"] = round(
                (mean[f"{row}_wall_s"] + mean["superpoints_wall_s"]) / mean["sam2_track_wall_s"], 3)
        worst = max(worst, ratio)
    figures["worst_row_wall_ratio_over_sam2_track"] = round(worst, 3)
    figures["target_each_row_le_2x_sam2_track"] = "met" if worst <= 2.0 else "missed"
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
