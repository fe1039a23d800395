"""Training step time of the default CPU mask model (params.yaml `model:` defaults) on toy box scenes, per sparse
backend (torch always; minkowski if MinkowskiEngine imports), and the time to draw one training crop with and
without the dataset's cache of raw samples. Ratios are measured side by side in one run."""

from __future__ import annotations

import time

import numpy as np
import torch


def _batch(scale: int, batch_size: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Toy scenes (gcseg.train.toy) of 4 * scale boxes on a floor; voxel count grows ~linearly with scale."""
    from gcseg.train.dataset import make_batch
    from gcseg.train.toy import box_scene

    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(batch_size):
        s = box_scene(rng, n_boxes=4 * scale, points_per_box=600, floor_points=1500 * scale,
                      extent=2.0 * float(np.sqrt(scale)))
        s["instance"] = s["instance"].astype(np.int64)
        samples.append(s)
    return make_batch(samples, list(range(batch_size)), voxel_size=0.05, in_channels=3)


def _step_time(backend: str, batch, steps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median (wall, CPU) seconds of one training step (forward, loss with matching, backward, AdamW)."""
    from gcseg.models.loss import LossWeights, set_criterion
    from gcseg.models.mask_model import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(backend=backend))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times, cpu = [], []
    for _ in range(steps + 1):
        t, c = time.perf_counter(), time.process_time()
        preds = model(batch.coords, batch.feats, batch.seeds)
        loss = set_criterion(preds, batch.targets, LossWeights())["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(times[1:])), float(np.median(cpu[1:]))  # first step warms up allocators


def _sample_time(quick: bool) -> dict[str, float]:
    """Median ms to draw one augmented 3 m crop of a stored scene (PointSampleDataset.get, as Stages 2 and 3 do),
    with the in-memory cache of raw samples against re-reading the HDF5 file every visit (cache_bytes 0)."""
    import tempfile

    from gcseg.train.dataset import AugmentConfig, PointSampleDataset
    from gcseg.train.toy import write_box_samples

    visits = 3 if quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        files = write_box_samples(tmp, scenes=2, samples_per_scene=1, seed=0, n_boxes=32, points_per_box=600,
                                  floor_points=12000, extent=5.6)  # ~31 000 points, a default room's scale
        out = {}
        for name, cache in (("cached", None), ("uncached", 0)):
            kw = {} if cache is None else {"cache_bytes": cache}
            ds = PointSampleDataset(files, augment_cfg=AugmentConfig(), seed=0, crop_size=3.0, **kw)
            times = []
            for epoch in range(visits + 1):
                for i in range(len(ds)):
                    t = time.perf_counter()
                    ds.get(i, epoch)
                    times.append(time.perf_counter() - t)
            out[f"sample_ms_{name}"] = round(1e3 * float(np.median(times[len(ds):])), 3)  # first pass fills it
        out["uncached_over_cached"] = round(out["sample_ms_uncached"] / out["sample_ms_cached"], 3)
    return out


def run(quick: bool) -> dict[str, float | int | str]:
    from gcseg.sparse import available_backends

    steps = 2 if quick else 5
    batch = _batch(1 if quick else 8, 2)
    out: dict[str, float | int | str] = {"voxels_per_batch": int(len(batch.coords)), "batch_size": 2,
                                          "threads": torch.get_num_threads()}
    for b in available_backends():
        wall, cpu = _step_time(b, batch, steps)
        out[f"step_s_{b}"] = round(wall, 4)
        out[f"step_cpu_s_{b}"] = round(cpu, 4)  # CPU time: robust to other processes on a shared machine
    out.update(_sample_time(quick))
    if "step_s_minkowski" in out:
        out["torch_over_minkowski"] = round(float(out["step_cpu_s_torch"]) / float(out["step_cpu_s_minkowski"]), 3)
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
