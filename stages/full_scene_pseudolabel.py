"""DVC stage `full_scene_pseudolabel` (Stage 3 data): run the Stage 2 model on every full training scene, keep
masks with score > tau_conf (top-k queries, min size), split disconnected masks with DBSCAN, give each point to
the highest-scoring mask, and write one HDF5 per scene (gcseg.io.samples layout) plus a metrics JSON."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import Field

from gcseg.models.config import ModelConfig
from stages._common import (DataSection, Section, SplitName, clean_shard_temporaries, load_params, make_app,
                            parse_shard, run_config, run_module, scene_seed, split_scenes, user_errors)

app = make_app(__doc__ or "")


class DbscanSection(Section):
    """`full_scene_pseudolabel.dbscan`: split spatially disconnected masks (Mask3D / Segment3D inference)."""

    enabled: bool = True
    eps: float = Field(0.1, gt=0)  # metres
    min_samples: int = Field(5, ge=1)


class FullScenePseudolabelSection(Section):
    """`full_scene_pseudolabel:` in params.yaml."""

    top_k: int = Field(150, ge=0)  # 0 = every query
    dbscan: DbscanSection = DbscanSection()
    min_points: int = Field(100, ge=1)
    split: SplitName = "train"


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    seed: int
    tau_conf: float = Field(ge=0.0, le=1.0)
    data: DataSection
    model: ModelConfig
    full_scene_pseudolabel: FullScenePseudolabelSection


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


def aggregate_metrics(summaries: dict[str, dict[str, Any]], p: Params) -> dict[str, Any]:
    """Totals over scenes plus the per-scene summaries (sorted by scene id)."""
    n = len(summaries)
    kept = [s["num_kept"] for s in summaries.values()]
    hist = None
    for s in summaries.values():
        counts = s["score_histogram"]["counts"]
        hist = list(counts) if hist is None else [a + b for a, b in zip(hist, counts, strict=True)]
    first = next(iter(summaries.values()), None)
    return {
        "tau_conf": p.tau_conf,
        "scenes": n,
        "masks_kept": int(sum(kept)),
        "masks_per_scene": round(sum(kept) / n, 4) if n else 0.0,
        # scenes where nothing passed tau_conf / min_points: no Stage 3 supervision from them
        "scenes_without_instances": sorted(sid for sid, s in summaries.items() if s["num_kept"] == 0),
        "labelled_fraction": round(sum(s["labelled_fraction"] for s in summaries.values()) / n, 6) if n else 0.0,
        "score_histogram": {"edges": first["score_histogram"]["edges"] if first else [], "counts": hist or []},
        "per_scene": {sid: summaries[sid] for sid in sorted(summaries)},
    }


@app.command()
@user_errors
def main(
    scenes: Annotated[Path, typer.Option("--scenes", help="Data root holding the scenes (data.root).")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read.")] = Path("params.yaml"),
    model: Annotated[Path, typer.Option("--model", help="Stage 2 checkpoint.")] = Path("data/models/stage2/model.pt"),
    out: Annotated[Path, typer.Option("--out", help="Folder of per-scene HDF5 pseudo-labels.")] = Path("data/pseudolabel"),
    metrics: Annotated[Path, typer.Option("--metrics", help="Metrics JSON.")] = Path("metrics/full_scene_pseudolabel.json"),
    shard: Annotated[str | None, typer.Option("--shard", help="i/n: process scenes i, i+n, ... (default: torchrun RANK/WORLD_SIZE).")] = None,
    superpoints: Annotated[Path | None, typer.Option("--superpoints", help="superpoints stage folder (<scene>.h5): "
                                                     "superpoint models predict on them (else computed).")] = None,
) -> None:
    """Stage 3 data: full-scene pseudo-labels above tau_conf."""
    from gcseg.atomic import check_output

    p = load_params(params, Params)  # params and outputs checked before torch is even imported
    for path in (out, metrics):  # create nothing (the writers do, atomically)
        check_output(path)
    import numpy as np
    import torch
    from tqdm import tqdm

    from gcseg.atomic import write_text
    from gcseg.errors import InputError
    from gcseg.models.mask_model import load_model
    from gcseg.io.samples import is_finished
    from gcseg.pseudolabel.full_scene import SCHEMA, pseudolabel_scene, read_summary, write_scene_pseudolabel
    from gcseg.readers import open_scene
    from gcseg.determinism import configure_torch

    configure_torch()
    cfg = p.full_scene_pseudolabel
    rank, world = parse_shard(shard)
    scene_ids = split_scenes(p.data.source, scenes, cfg.split)
    net, _ = load_model(model, expected_cfg=p.model)
    if torch.cuda.is_available():  # one GPU per torchrun worker
        net = net.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    mine = scene_ids[rank::world]
    clean_shard_temporaries(out, [f"{s}.h5" for s in mine])  # only this worker's: others may be writing
    # the model's bytes too: a rerun after the model changed recomputes every scene
    config = run_config(p, model_sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    todo = [s for s in mine if not is_finished(out / f"{s}.h5", SCHEMA, config)]
    if len(todo) < len(mine):
        typer.echo(f"skipping {len(mine) - len(todo)} finished scene(s) in {out}")
    for sid in tqdm(todo, desc=f"pseudolabel {rank}/{world}", unit="scene", disable=None):
        s = scene_seed(p.seed, sid)
        torch.manual_seed(s)
        np.random.seed(s)
        cloud = open_scene(p.data.source, scenes, sid).reference()
        if cloud is None or len(cloud) == 0:
            raise InputError(f"scene {sid} has no reference points", path=scenes / sid,
                             fix="the scene needs a mesh, reference.ply or frames to fuse")
        sp = None
        if superpoints is not None:
            from gcseg.superpoints import REFERENCE, read_superpoints

            sp = read_superpoints(superpoints / f"{sid}.h5", REFERENCE, cloud.coord)
        labels, kept, scores, summary = pseudolabel_scene(
            net, cloud, superpoint=sp, top_k=cfg.top_k, tau_conf=p.tau_conf,
            dbscan_eps=cfg.dbscan.eps if cfg.dbscan.enabled else None, dbscan_min_samples=cfg.dbscan.min_samples,
            min_points=cfg.min_points)
        write_scene_pseudolabel(out / f"{sid}.h5", sid, cloud, labels, kept, scores, summary, config)

    # metrics from the files (every worker's): written by whichever worker sees every scene finished
    if not all(is_finished(out / f"{s}.h5", SCHEMA, config) for s in scene_ids):
        typer.echo(f"worker {rank}/{world} done; metrics are written by the last worker to finish")
        return
    summaries = {s: read_summary(out / f"{s}.h5") for s in scene_ids}
    agg = aggregate_metrics(summaries, p)
    write_text(metrics, json.dumps(agg, indent=2, sort_keys=True) + "\n")
    if agg["scenes_without_instances"]:
        typer.echo(f"warning: {len(agg['scenes_without_instances'])} scene(s) kept no instance above tau_conf "
                   f"{p.tau_conf} (listed in {metrics})", err=True)
    typer.echo(f"{len(scene_ids)} scenes pseudo-labelled -> {out}; metrics -> {metrics}")


if __name__ == "__main__":
    run_module(app)
