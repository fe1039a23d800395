"""GPU figures for BENCHMARKS.md, run by a GPU owner through bench/gpu_check.sh (never on the CPU machines):
the device, whether MinkowskiEngine runs on CUDA, SAM2 video propagation frames per second (random weights at
1024 px: the same network and cost as the real checkpoint), and the training step time of the paper's model
(Res16UNet34C backbone + Mask3D decoder, Segment3D conf/model/mask3d.yaml sizes) per sparse backend.

Writes {"areas": {"gpu": {"status", "quick", "wall_s", "figures"}}} (bench/__main__.py's layout) to
metrics/bench_gpu.json; `python -m bench report` merges that file into BENCHMARKS.md.

    python -m bench.gpu_check [--out metrics/bench_gpu.json] [--frames 40] [--voxels-scale 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

PAPER_MODEL = dict(voxel_size=0.02, planes=(32, 64, 128, 256, 256, 128, 96, 96), layers=(2, 3, 4, 6, 2, 2, 2, 2),
                   hidden_dim=128, num_queries=150, num_heads=8, ffn_dim=1024, hlevels=(0, 1, 2, 3), num_decoders=3,
                   max_attn_voxels=12800)


def _to(obj: Any, device: str) -> Any:
    """Move every tensor inside dataclasses / lists / dicts to `device`."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _to(getattr(obj, f.name), device)
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, list):
        return [_to(x, device) for x in obj]
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def minkowski_cuda() -> dict[str, Any]:
    try:
        import MinkowskiEngine as ME  # noqa: N817
    except Exception as exc:  # noqa: BLE001 - not installed / not built is a result
        return {"minkowski": f"not importable ({type(exc).__name__})"}
    out: dict[str, Any] = {"minkowski": ME.__version__, "minkowski_cuda": str(bool(ME.is_cuda_available()))}
    try:  # one 3x3x3 conv on the GPU against the CPU result
        coords = torch.randint(0, 40, (20000, 3))
        coords = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int64), coords], 1).unique(dim=0).int()
        feats = torch.rand(len(coords), 16)
        conv = ME.MinkowskiConvolution(16, 16, kernel_size=3, dimension=3)
        cpu = conv(ME.SparseTensor(feats, coords)).F
        conv = conv.cuda()
        gpu = conv(ME.SparseTensor(feats.cuda(), coords.cuda())).F.cpu()
        out["minkowski_cuda_conv_max_abs_diff_vs_cpu"] = float((gpu - cpu).abs().max())
    except Exception as exc:  # noqa: BLE001
        out["minkowski_cuda_conv"] = f"failed: {type(exc).__name__}: {exc}"
    return out


def sam2_fps(frames: int, image_size: int = 1024) -> dict[str, Any]:
    from gcseg.proposals.factory import build_proposer
    from gcseg.synth.stream import stream_scene
    from gcseg.tracking.policy import TrackingPolicy
    from gcseg.tracking.run import track_scene
    from gcseg.tracking.sam2_backend import RANDOM_INIT, Sam2Propagator

    scene = stream_scene(0, num_frames=frames, height=480, width=640, orbit_degrees=2.0 * frames)
    prop = Sam2Propagator(checkpoint=RANDOM_INIT, image_size=image_size, device="cuda")
    prop.predictor  # build outside the timed loop
    res = track_scene(scene, build_proposer("gt_sim", {"min_area_frac": 600 / (480 * 640)}, seed=0), prop,
                      TrackingPolicy(min_new_area=600), keyframe_stride=5, tau_contain=0.8, min_area=600)
    prop_s = float(res.timing["propagate_s"])
    return {"sam2_image_size": image_size, "sam2_frames": frames, "sam2_objects": int(res.stats["objects_created"]),
            "sam2_propagate_s": round(prop_s, 3), "sam2_fps": round(frames / max(prop_s, 1e-9), 2),
            "sam2_policy_pct": round(100 * float(res.timing["policy_s"]) / max(prop_s, 1e-9), 3)}


def train_step(scale: int, steps: int = 5) -> dict[str, Any]:
    from gcseg.models.loss import LossWeights, set_criterion
    from gcseg.models.mask_model import ModelConfig, build_model
    from gcseg.sparse import available_backends

    from gcseg.train.dataset import make_batch
    from gcseg.train.toy import box_scene

    out: dict[str, Any] = {}
    # toy box rooms (gcseg.train.toy) at the paper's 2 cm voxels, 2 scenes per batch (Segment3D: 2 per GPU)

    rng = np.random.default_rng(0)
    samples = []
    for _ in range(2):
        s = box_scene(rng, n_boxes=4 * scale, points_per_box=3000, floor_points=20000 * scale,
                      extent=2.0 * float(np.sqrt(scale)))
        s["instance"] = s["instance"].astype(np.int64)
        samples.append(s)
    batch = _to(make_batch(samples, [0, 1], voxel_size=PAPER_MODEL["voxel_size"], in_channels=3), "cuda")
    out["train_voxels_per_batch"] = int(len(batch.coords))
    for backend in available_backends():
        try:
            torch.manual_seed(0)
            model = build_model(ModelConfig(backend=backend, **PAPER_MODEL)).cuda()
            opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
            times = []
            for _ in range(steps + 1):
                torch.cuda.synchronize()
                t = time.perf_counter()
                preds = model(batch.coords, batch.feats, batch.seeds)
                loss = set_criterion(preds, batch.targets, LossWeights())["loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            out[f"train_step_s_res16unet34c_{backend}"] = round(float(np.median(times[1:])), 4)
            out[f"train_peak_gpu_mem_gb_{backend}"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.reset_peak_memory_stats()
        except Exception as exc:  # noqa: BLE001
            out[f"train_step_{backend}"] = f"failed: {type(exc).__name__}: {exc}"
    if "train_step_s_res16unet34c_minkowski" in out and "train_step_s_res16unet34c_torch" in out:
        out["train_torch_over_minkowski"] = round(out["train_step_s_res16unet34c_torch"]
                                                  / out["train_step_s_res16unet34c_minkowski"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("metrics/bench_gpu.json"))
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--voxels-scale", type=int, default=8)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device (install a CUDA build of torch 2.13.0)")
    t0 = time.perf_counter()
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                               "cuda": str(torch.version.cuda)}
    status = "ok"
    for name, fn in (("minkowski", minkowski_cuda), ("sam2", lambda: sam2_fps(a.frames)),
                     ("train", lambda: train_step(a.voxels_scale))):
        try:
            figures.update(fn())
        except Exception as exc:  # noqa: BLE001 - record and go on to the next figure
            traceback.print_exc()
            figures[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
            status = "failed"
    doc = {"areas": {"gpu": {"status": status, "quick": False, "wall_s": round(time.perf_counter() - t0, 1),
                             "figures": figures}}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
