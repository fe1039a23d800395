"""DVC stage `sam_keyframes` (Stage 1 data): class-agnostic 2D mask proposals on keyframes, the containment
filter (tau_contain), lifting to each keyframe's partial cloud; one HDF5 per scene (gcseg.io.samples layout,
schema gcseg.sam_keyframes), an overlay PNG per scene and a metrics JSON.

    python -m stages.sam_keyframes --params params.yaml --scenes data/scenes --out data/sam_keyframes \\
        --overlays data/sam_keyframes_overlays --metrics metrics/sam_keyframes.json [--shard i/n]
"""

from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import Field, create_model, field_validator, model_validator

from stages._common import (DataSection, Section, clean_shard_temporaries, load_params, make_app, parse_shard,
                            run_config, run_module, scene_seed, split_scenes, user_errors)
from stages._jobs import SamJobsOption

app = make_app(__doc__ or "")


class ClassicalSection(Section):
    """`sam_keyframes.classical`: gcseg.proposals.classical.ClassicalConfig (meanings there and in params.yaml)."""

    felzenszwalb_scale: float = Field(60.0, gt=0)
    felzenszwalb_sigma: float = Field(0.5, ge=0)
    feature_normal_weight: float = Field(0.1, ge=0)
    feature_depth_weight: float = Field(2.0, ge=0)
    superpixel_min_frac: float = Field(0.00016, ge=0, le=1)
    w_color: float = Field(1.0, ge=0)
    w_depth: float = Field(1.0, ge=0)
    w_crease: float = Field(0.1, ge=0)
    convex_factor: float = Field(0.0, ge=0, le=1)
    depth_edge_rel: float = Field(0.05, gt=0)
    median_px: int = Field(3, ge=1, le=15)
    max_area_frac: float = Field(0.6, gt=0, le=1)
    min_area_frac: float = Field(0.001, ge=0, le=1)
    max_masks: int = Field(80, ge=1)
    min_persistence: float = Field(0.02, ge=0)
    compactness_ref: float = Field(0.25, gt=0, le=1)

    @field_validator("median_px")
    @classmethod
    def _odd_median(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"median_px must be odd (a centred median window), got {v}: e.g. 3; 1 = no filter")
        return v


def _rgbd_section() -> type[Section]:
    """`sam_keyframes.rgbd`: gcseg.proposals.rgbd.RgbdConfig, field for field (defaults and range checks are the
    dataclass's, defined once; meanings in params.yaml)."""
    import dataclasses
    import typing

    from gcseg.errors import ConfigError
    from gcseg.proposals.rgbd.config import RgbdConfig

    hints = typing.get_type_hints(RgbdConfig)

    def check(self: Any) -> Any:
        try:
            RgbdConfig(**self.model_dump())
        except ConfigError as e:
            raise ValueError(e.message) from None
        return self

    fields = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(RgbdConfig)}
    return create_model("RgbdSection", __base__=Section, __doc__=_rgbd_section.__doc__,
                        __validators__={"ranges": model_validator(mode="after")(check)}, **fields)


RgbdSection = _rgbd_section()


class SamSection(Section):
    """`sam_keyframes.sam`: gcseg.proposals.sam.SamConfig (SAM AMG; defaults = segment-anything's)."""

    model_type: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    checkpoint: str = "data/weights/sam_vit_b_01ec64.pth"
    points_per_side: int = Field(32, ge=1)
    points_per_batch: int = Field(64, ge=1)
    pred_iou_thresh: float = Field(0.88, ge=0, le=1)
    stability_score_thresh: float = Field(0.95, ge=0, le=1)
    box_nms_thresh: float = Field(0.7, ge=0, le=1)
    min_mask_region_area: int = Field(0, ge=0)
    device: Literal["cpu", "cuda", "auto"] = "auto"
    test_img_size: int = Field(256, ge=64, multiple_of=16)


class GtSimSection(Section):
    """`sam_keyframes.gt_sim`: gcseg.proposals.gt_sim.GtSimConfig (needs GT: synthetic scenes only)."""

    p_part: float = Field(0.2, ge=0, le=1)
    p_merge: float = Field(0.1, ge=0, le=1)
    p_drop: float = Field(0.05, ge=0, le=1)
    boundary_noise: float = Field(0.05, ge=0, le=1)
    noise_smoothness: float = Field(0.5, gt=0)
    min_area_frac: float = Field(0.00026, ge=0, le=1)


class SamKeyframesSection(Section):
    """`sam_keyframes:` in params.yaml (meanings commented there). Pixel areas are fractions of the image area
    (`*_frac`, gcseg.pixels); :meth:`min_area_px` / :meth:`coverage_min_area_px` convert them for a scene."""

    backend: Literal["rgbd", "classical", "sam", "gt_sim"] = "rgbd"
    split: Literal["train", "val", "all"] = "train"
    keyframe_stride: int = Field(10, ge=1)
    min_valid_depth: float = Field(0.3, ge=0, le=1)
    min_area_frac: float = Field(0.00026, ge=0, le=1)
    min_points: int = Field(100, ge=1)
    voxel_size: float = Field(0.0, ge=0)
    coverage_min_area_frac: float = Field(0.001, ge=0, le=1)
    coverage_iou: float = Field(0.5, gt=0, le=1)
    coverage_val: bool = True
    rgbd: RgbdSection = RgbdSection()  # type: ignore[valid-type]
    classical: ClassicalSection = ClassicalSection()
    sam: SamSection = SamSection()
    gt_sim: GtSimSection = GtSimSection()

    def min_area_px(self, hw: tuple[int, int]) -> int:
        from gcseg.pixels import area_px

        return area_px(self.min_area_frac, hw)

    def coverage_min_area_px(self, hw: tuple[int, int]) -> int:
        from gcseg.pixels import area_px

        return area_px(self.coverage_min_area_frac, hw)


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    seed: int
    tau_contain: float = Field(ge=0.0, le=1.0)
    data: DataSection
    sam_keyframes: SamKeyframesSection


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


def backend_options(cfg: SamKeyframesSection) -> dict[str, Any]:
    return getattr(cfg, cfg.backend).model_dump()


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6) if values else 0.0


def aggregate_metrics(summaries: dict[str, dict[str, Any]], val: dict[str, tuple[int, int, int]], p: Params,
                      note: str | None = None) -> dict[str, Any]:
    """Masks per keyframe before/after the containment filter, and GT coverage on val scenes.
    `val`: scene -> (GT instances, matched by a proposal, matched after the filter); `note`: why the coverage
    is empty (e.g. no val scenes), written as coverage_val.note when given."""
    stats = [s for sid in sorted(summaries) for s in summaries[sid]["stats"]]
    gt = sum(v[0] for v in val.values())
    points = sum(s["points"] for s in stats)
    c = p.sam_keyframes
    return {
        "backend": c.backend,
        "scenes": len(summaries),
        "keyframes": len(stats),
        "empty_scenes": sum(1 for s in summaries.values() if not any(k["instances"] for k in s["stats"])),
        "masks_per_keyframe": {
            "proposed": _mean([s["proposals"] for s in stats]),
            "after_containment": _mean([s["kept"] for s in stats]),
            "instances_after_min_points": _mean([s["instances"] for s in stats]),
        },
        "labelled_point_fraction": round(sum(s["labelled_points"] for s in stats) / points, 6) if points else 0.0,
        "coverage_val": {
            "scenes": len(val),
            "gt_instances": gt,
            "min_area_frac": c.coverage_min_area_frac,
            "iou": c.coverage_iou,
            # fraction of GT instances matched by some mask; None when the val scenes have no GT
            "proposals": round(sum(v[1] for v in val.values()) / gt, 6) if gt else None,
            "after_containment": round(sum(v[2] for v in val.values()) / gt, 6) if gt else None,
            **({"note": note} if note else {}),
        },
        "per_scene": {sid: {"keyframes": len(summaries[sid]["keyframes"]),
                            "instances": sum(k["instances"] for k in summaries[sid]["stats"])}
                      for sid in sorted(summaries)},
    }


def scene_proposer(sk: SamKeyframesSection, scene: Any, seed: int, shared: Any = None) -> Any:
    """One scene's keyframe proposer, as every stage that proposes builds it (sam_keyframes, sam2_track,
    baselines: the same masks): `shared` (SAM, its weights loaded once) or the backend built with the scene's
    seed, bound to the scene (rgbd: its world up)."""
    from gcseg.proposals.factory import build_proposer, for_scene

    return for_scene(shared or build_proposer(sk.backend, backend_options(sk), seed=seed), scene)


def _proposer(sid: str, p: Params, scenes: Path, shared: Any):  # type: ignore[no-untyped-def]
    """The scene and its proposer (scene_proposer with the scene's seed)."""
    from gcseg.readers import open_scene

    scene = open_scene(p.data.source, scenes, sid)
    return scene, scene_proposer(p.sam_keyframes, scene, scene_seed(p.seed, sid), shared)


def _one_scene(sid: str, p: Params, scenes: Path, out: Path, overlays: Path, config: dict[str, Any],
               shared: Any = None) -> list[str]:
    """Proposals, containment, lifting of one scene -> `<out>/<sid>.h5`, `<overlays>/<sid>.png`; returns the
    messages of its RuntimeWarnings (the caller prints them as gcseg's one-line warnings, in scene order, also
    when a worker process ran the scene)."""
    from gcseg.proposals.pipeline import run_sam_keyframes

    cfg = p.sam_keyframes
    scene, proposer = _proposer(sid, p, scenes, shared)
    hw = scene.image_size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        run_sam_keyframes(scene, proposer, stride=cfg.keyframe_stride, min_valid_depth=cfg.min_valid_depth,
                          tau_contain=p.tau_contain, min_area=cfg.min_area_px(hw), min_points=cfg.min_points,
                          out_h5=out / f"{sid}.h5", overlay_png=overlays / f"{sid}.png",
                          voxel_size=cfg.voxel_size, coverage_min_area=cfg.coverage_min_area_px(hw),
                          coverage_iou=cfg.coverage_iou, config=config)
    return [str(w.message) for w in caught]


def _summary_coverage(summary: dict[str, Any]) -> tuple[int, int, int]:
    """A processed scene's coverage counts, from its keyframe stats."""
    st = summary["stats"]
    return (sum(k["gt_instances"] for k in st), sum(k["gt_hits_proposals"] for k in st),
            sum(k["gt_hits_kept"] for k in st))


def _val_coverage(sid: str, p: Params, scenes: Path, shared: Any = None) -> tuple[int, int, int]:
    """GT coverage of a val scene the stage does not write: propose on its keyframes, write nothing."""
    from gcseg.proposals.pipeline import scene_coverage

    cfg = p.sam_keyframes
    scene, proposer = _proposer(sid, p, scenes, shared)
    hw = scene.image_size
    return scene_coverage(scene, proposer, stride=cfg.keyframe_stride, min_valid_depth=cfg.min_valid_depth,
                          tau_contain=p.tau_contain, min_area=cfg.min_area_px(hw),
                          coverage_min_area=cfg.coverage_min_area_px(hw), coverage_iou=cfg.coverage_iou)


@app.command()
@user_errors
def main(
    scenes: Annotated[Path, typer.Option("--scenes", help="Data root holding the scenes (data.root).")],
    out: Annotated[Path, typer.Option("--out", help="Folder of per-scene HDF5 files <scene>.h5.")],
    overlays: Annotated[Path, typer.Option("--overlays", help="Folder of per-scene overlay PNGs <scene>.png.")],
    metrics: Annotated[Path, typer.Option("--metrics", help="Metrics JSON (written when every scene is done).")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read.")] = Path("params.yaml"),
    shard: Annotated[str | None, typer.Option(
        "--shard", help="i/n: process scenes i, i+n, ... (default: torchrun RANK/WORLD_SIZE).")] = None,
    jobs: SamJobsOption = 0,
) -> None:
    """Stage 1 data: keyframe mask proposals, containment filter, lifting to partial clouds."""
    from gcseg.atomic import check_output, write_text
    from gcseg.errors import InputError
    from gcseg.io.samples import is_finished
    from gcseg.parallel import map_ordered
    from gcseg.proposals.factory import build_proposer
    from gcseg.proposals.pipeline import SCHEMA, read_summary
    from gcseg.readers import list_scenes

    p = load_params(params, Params)  # validated before any work
    cfg = p.sam_keyframes
    rank, world = parse_shard(shard)
    scene_ids = split_scenes(p.data.source, scenes, cfg.split)
    config = run_config(p)
    mine = scene_ids[rank::world]
    todo = [s for s in mine if not (is_finished(out / f"{s}.h5", SCHEMA, config) and (overlays / f"{s}.png").is_file())]
    # the sam backend loads its weights once, in this process (and fails on a missing checkpoint before any scene
    # is read); the weight-free backends are built per scene, in one worker process per core
    shared = build_proposer("sam", backend_options(cfg), seed=p.seed) if cfg.backend == "sam" else None
    jobs = 1 if shared is not None else jobs
    for path in (out, overlays, metrics):  # fail before any work; create nothing (the writers do, atomically)
        check_output(path)
    clean_shard_temporaries(out, [f"{s}.h5" for s in mine])  # only this worker's: others may be writing
    clean_shard_temporaries(overlays, [f"{s}.png" for s in mine])
    if len(todo) < len(mine):
        typer.echo(f"skipping {len(mine) - len(todo)} finished scene(s) in {out}")
    caught = map_ordered(partial(_one_scene, p=p, scenes=scenes, out=out, overlays=overlays, config=config,
                                 shared=shared), todo, jobs=jobs, desc=f"sam_keyframes {rank}/{world}")
    for message in (m for scene_warnings in caught for m in scene_warnings):
        typer.echo(f"warning: {message}", err=True)

    if not all(is_finished(out / f"{s}.h5", SCHEMA, config) for s in scene_ids):
        typer.echo(f"worker {rank}/{world} done; metrics are written by the worker that finishes last")
        return
    summaries = {s: read_summary(out / f"{s}.h5") for s in scene_ids}
    val_ids: list[str] = []
    note = None
    if cfg.coverage_val:
        try:
            val_ids = sorted(list_scenes(p.data.source, scenes, "val"))
        except InputError:  # e.g. synth.num_val: 0; the metrics are still written, without coverage
            note = "no val scenes: coverage not measured"
            typer.echo(f"note: {note} (sam_keyframes.coverage_val)", err=True)
    unseen = [sid for sid in val_ids if sid not in summaries]  # val scenes Stage 1 does not train on: measured
    measured = dict(zip(unseen, map_ordered(partial(_val_coverage, p=p, scenes=scenes, shared=shared), unseen,
                                            jobs=jobs, desc="val coverage"), strict=True))
    val = {sid: measured[sid] if sid in measured else _summary_coverage(summaries[sid]) for sid in val_ids}
    write_text(metrics, json.dumps(aggregate_metrics(summaries, val, p, note=note), indent=2, sort_keys=True) + "\n")
    typer.echo(f"{len(scene_ids)} scenes -> {out}; overlays -> {overlays}; metrics -> {metrics}")


if __name__ == "__main__":
    run_module(app)
