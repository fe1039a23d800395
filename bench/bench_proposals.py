"""Stage 1 mask proposals: time per keyframe of each backend on the same synthetic keyframes, side by side,
plus GT coverage (instances covering >= 0.1 % of the image, 77 px at 320x240, matched at IoU >= 0.5, before /
after the containment filter at 0.8 with masks under 0.026 % of the image, 20 px, dropped).

The `sam` row is segment-anything's real AMG code path with a SMALL RANDOMLY INITIALISED model
(`random-init-for-tests`: 2-block ViT at 256 px, not SAM ViT-B/H at 1024 px): its time is a lower bound on
the plumbing, its masks are meaningless and its coverage is not reported. Quick: 4 frames at 160x120 (the synth
default), 4x4 SAM prompts; full: 8 frames at 320x240, 8x8 prompts."""

from __future__ import annotations

import time

import numpy as np

from gcseg.proposals.containment import containment_filter
from gcseg.proposals.coverage import best_iou_per_instance
from gcseg.proposals.factory import build_proposer
from gcseg.synth import generate_scene


def _per_frame(proposer, frames) -> tuple[list, float]:
    proposer(frames[0])  # warm-up (imports, first-call allocations)
    t0 = time.process_time()
    props = [proposer(f) for f in frames]
    return props, (time.process_time() - t0) / len(frames)


def _coverage(frames, props) -> tuple[float, float]:
    hit = hit_kept = total = 0
    for f, p in zip(frames, props):
        h, w = f.hw
        gt_min, mask_min = max(1, round(0.001 * h * w)), max(1, round(0.00026 * h * w))
        best = best_iou_per_instance(f.instance, p.masks, gt_min)
        kept = containment_filter(p.masks, p.scores, 0.8, mask_min)
        best_kept = best_iou_per_instance(f.instance, p.masks[kept], gt_min)
        hit += int((best >= 0.5).sum())
        hit_kept += int((best_kept >= 0.5).sum())
        total += len(best)
    return (hit / total, hit_kept / total) if total else (float("nan"), float("nan"))


def run(quick: bool) -> dict[str, float | int | str]:
    n, h, w, pts = (4, 120, 160, 4) if quick else (8, 240, 320, 8)
    scene = generate_scene(3, num_frames=n * 5, height=h, width=w, depth_noise=0.002, hole_fraction=0.02)
    frames = [scene.frame(i) for i in range(0, n * 5, 5)]
    out: dict[str, float | int | str] = {"keyframes": n, "image": f"{w}x{h}"}
    backends = {
        "rgbd": ("rgbd", {}),
        "classical": ("classical", {}),
        "gt_sim": ("gt_sim", {}),
        "sam_random_small": ("sam", {"checkpoint": "random-init-for-tests", "points_per_side": pts,
                                     "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "test_img_size": 256}),
    }
    times = {}
    for label, (backend, cfg) in backends.items():
        props, cpu = _per_frame(build_proposer(backend, cfg), frames)
        times[label] = cpu
        out[f"{label}_cpu_ms_per_keyframe"] = round(1000 * cpu, 1)
        out[f"{label}_masks_per_keyframe"] = round(float(np.mean([len(p) for p in props])), 1)
        if backend != "sam":
            before, after = _coverage(frames, props)
            out[f"{label}_coverage"] = round(before, 3)
            out[f"{label}_coverage_after_containment"] = round(after, 3)
        if label == "classical":
            t0 = time.process_time()
            for p in props:
                containment_filter(p.masks, p.scores, 0.8)
            out["containment_filter_cpu_ms_per_keyframe"] = round(1000 * (time.process_time() - t0) / n, 2)
    out["sam_random_small_over_classical_time"] = round(times["sam_random_small"] / max(times["classical"], 1e-9), 2)
    out["rgbd_over_classical_time"] = round(times["rgbd"] / max(times["classical"], 1e-9), 2)
    out["sam_note"] = (f"sam_random_small = random-init 2-block ViT, 256 px input, {pts}x{pts} prompts: NOT real SAM; "
                       "real ViT-B at 1024 px, 32x32 prompts: ~25 s/image on 2 CPU cores (dependencies.md)")
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1))
