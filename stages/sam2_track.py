"""DVC stage `sam2_track` (Stage 2 data): granularity-consistent 2D mask tracking (Algorithm 1 reconstruction)
over every scan, lifted to the reference cloud by voting; one HDF5 per scene (gcseg.io.samples layout plus
per-frame id maps, track tables and each point's vote share) and a metrics JSON with track statistics and the
temporal-consistency comparison against per-keyframe (Stage 1 style) labels.

On the scenes of ``sam2_track.diagnostics.split`` (the val scenes eval scores) it also writes, from the same
pass, the label-quality diagnostics (gcseg.eval.diagnostics: GT ceiling, proposals with perfect identity,
coverage before / after containment; scenes with per-frame GT only) and the "tracking without the policy" row
(gcseg.tracking.no_policy: a second propagation over the recorded proposals; the proposer runs once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import Field

from gcseg.lifting import LiftConfig  # the defaults of sam2_track.lift live there
from stages._common import (DataSection, Section, SplitName, clean_shard_temporaries, load_params, make_app,
                            parse_shard, run_config, run_module, scene_seed, split_scenes, user_errors)
from stages.sam_keyframes import SamKeyframesSection, backend_options, scene_proposer

app = make_app(__doc__ or "")


class ReprojectionSection(Section):
    """`sam2_track.reprojection`: gcseg.tracking.reprojection.ReprojectionPropagator."""

    voxel: float = Field(0.005, gt=0)
    tol_abs: float = Field(0.03, gt=0)
    tol_rel: float = Field(0.02, ge=0)
    fill_px: float = Field(1.5, ge=0)
    accumulate: bool = True
    known_voxel: float = Field(0.02, gt=0)
    reid_voxel: float = Field(0.01, gt=0)


class Sam2Section(Section):
    """`sam2_track.sam2`: the SAM2 video predictor."""

    config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"
    checkpoint: str = "data/weights/sam2.1_hiera_tiny.pt"
    image_size: int = Field(1024, ge=64)
    max_cond_frames: int = Field(4, ge=1)


class LiftSection(Section):
    """`sam2_track.lift`: voting of id maps onto the reference cloud (gcseg.lifting.VoteAccumulator)."""

    association: Literal["point", "pixel"] = LiftConfig.association  # type: ignore[assignment]
    max_dist: float = Field(LiftConfig.max_dist, gt=0)
    voxel: float | None = Field(LiftConfig.voxel, gt=0)
    min_share: float = Field(LiftConfig.min_share, gt=0, le=1)
    min_points: int = Field(LiftConfig.min_points, ge=1)
    every: int = Field(LiftConfig.every, ge=1)
    fine_share: float | None = Field(LiftConfig.fine_share, gt=0, le=1)


class DiagnosticsSection(Section):
    """`sam2_track.diagnostics`: label-quality diagnostics and the no-policy row (gcseg.eval.diagnostics,
    gcseg.tracking.no_policy) on the scenes eval scores."""

    split: Literal["train", "val", "all", "none"] = "val"
    match_iou: float = Field(0.5, gt=0, le=1)
    no_policy: bool = True


class MergeSection(Section):
    """`sam2_track.merge`: merge tracks that keyframe proposals join more often than they separate
    (gcseg.tracking.merge)."""

    enabled: bool = True
    min_joined: int = Field(2, ge=1)
    ratio: float = Field(1.0, gt=0)
    union_cover: float = Field(0.8, gt=0, le=1)
    separate_share: float = Field(0.1, ge=0, lt=1)


class Sam2TrackSection(Section):
    """`sam2_track:` in params.yaml. Pixel areas are fractions of the image area (gcseg.pixels)."""

    backend: Literal["reprojection", "sam2"] = "reprojection"
    split: SplitName = "train"
    keyframe_stride: int = Field(5, ge=1)
    gate_uncovered: float = Field(0.5, ge=0, lt=1)
    min_new_area_frac: float = Field(0.00026, ge=0, le=1)
    min_visible_area_frac: float = Field(0.0, ge=0, le=1)
    recondition: bool = True
    recondition_iou: float = Field(0.0, ge=0, le=1)
    part_share: float = Field(0.5, ge=0, lt=1)
    support_min: float = Field(0.5, ge=0, lt=1)
    contradict_min: float = Field(0.5, ge=0, lt=1)
    reid: bool = True
    save_every: int = Field(1, ge=1)
    consistency_iou: float = Field(0.5, gt=0, le=1)
    reprojection: ReprojectionSection = ReprojectionSection()
    sam2: Sam2Section = Sam2Section()
    lift: LiftSection = LiftSection()
    diagnostics: DiagnosticsSection = DiagnosticsSection()
    merge: MergeSection = MergeSection()

    def merge_settings(self) -> MergeSection | None:
        """The merge settings track_and_lift takes: None when the merge is off."""
        return self.merge if self.merge.enabled else None

    def min_new_area_px(self, hw: tuple[int, int]) -> int:
        from gcseg.pixels import area_px

        return area_px(self.min_new_area_frac, hw)

    def min_visible_area_px(self, hw: tuple[int, int]) -> int:
        from gcseg.pixels import area_px

        return area_px(self.min_visible_area_frac, hw)


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    seed: int
    tau_iou: float = Field(ge=0.0, lt=1.0)
    tau_dorm: int = Field(ge=0)
    tau_contain: float = Field(ge=0.0, le=1.0)
    data: DataSection
    sam_keyframes: SamKeyframesSection  # the keyframe proposer (backend + its options, min_area), as in Stage 1
    sam2_track: Sam2TrackSection


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


def build_propagator_from(cfg: Sam2TrackSection, seed: int) -> Any:
    from gcseg.tracking.propagators import build_propagator

    if cfg.backend == "reprojection":
        return build_propagator("reprojection", **cfg.reprojection.model_dump())
    from gcseg.tracking.reprojection import CarriedMasks
    from gcseg.tracking.sam2_backend import check_checkpoint

    check_checkpoint(cfg.sam2.checkpoint)  # before importing torch: a missing file fails in milliseconds
    import torch

    r = cfg.reprojection  # SAM2's re-identification masks are rendered with the reprojection settings
    carry = CarriedMasks(voxel=r.reid_voxel, tol_abs=r.tol_abs, tol_rel=r.tol_rel, fill_px=r.fill_px)
    return build_propagator("sam2", config=cfg.sam2.config, checkpoint=cfg.sam2.checkpoint,
                            image_size=cfg.sam2.image_size, max_cond_frames=cfg.sam2.max_cond_frames, carry=carry,
                            seed=seed, device="cuda" if torch.cuda.is_available() else "cpu")


def diagnosed_scenes(p: Params, scenes: Path) -> set[str]:
    """Scenes of ``sam2_track.diagnostics.split`` (none when the data has no such split)."""
    from gcseg.errors import InputError
    from gcseg.readers import list_scenes

    split = p.sam2_track.diagnostics.split
    if split == "none":
        return set()
    try:
        return set(list_scenes(p.data.source, scenes, split))
    except InputError:
        typer.echo(f"note: no {split!r} scenes: no diagnostics (sam2_track.diagnostics.split)", err=True)
        return set()


class ScenePass:
    """What sam2_track adds around its one tracking pass on a diagnosed scene: a diagnostics accumulator fed
    with the pass's keyframes (raw and filtered proposals; GT scenes only), a recording of the filtered
    proposals, and afterwards the no-policy pass over that recording (:meth:`finish`)."""

    def __init__(self, p: Params, scene: Any):
        from gcseg.eval.diagnostics import DiagnosticsAccumulator, LiftSettings
        from gcseg.tracking.no_policy import KeyframeProposals

        self.p, self.scene = p, scene
        cfg, sk, hw = p.sam2_track, p.sam_keyframes, scene.image_size
        self.cloud = scene.reference()  # GT lives on it; without one (fused later) only the no-policy row
        self.settings: dict[str, Any] = {
            "proposer": sk.backend, "propagator": cfg.backend, "keyframe_stride": cfg.keyframe_stride,
            "tau_contain": p.tau_contain, "min_area_px": sk.min_area_px(hw),
            "coverage_min_area_px": sk.coverage_min_area_px(hw), "coverage_iou": sk.coverage_iou,
            "match_iou": cfg.diagnostics.match_iou, "height": int(hw[0]), "width": int(hw[1])}
        self.acc = None
        if self.cloud is not None and len(self.cloud):
            lift = LiftSettings(**cfg.lift.model_dump())
            self.acc = DiagnosticsAccumulator(self.cloud.coord, min_area=sk.min_area_px(hw), lift=lift,
                                              coverage_min_area=sk.coverage_min_area_px(hw),
                                              coverage_iou=sk.coverage_iou, match_iou=cfg.diagnostics.match_iou,
                                              instance=self.cloud.instance)
        self.recorded = KeyframeProposals() if cfg.diagnostics.no_policy else None

    def observe(self, proposer: Any) -> Any:
        return self.acc.observe(proposer) if self.acc is not None else proposer

    def hooks(self) -> list[Any]:
        return ([self.acc.on_keyframe] if self.acc is not None else []) + \
            ([self.recorded.record] if self.recorded is not None else [])

    def finish(self, propagator: Any, cloud: Any) -> dict[str, Any]:
        """The artifact's diagnostics group; runs the no-policy pass (same propagator, reset) when enabled."""
        from gcseg.tracking.artifact import diagnostics_tree
        from gcseg.tracking.no_policy import track_without_policy
        from gcseg.tracking.run import MAX_ID

        cfg, sk = self.p.sam2_track, self.p.sam_keyframes
        rows = dict(self.acc.lifted()) if self.acc is not None else {}
        cov = self.acc.coverage if self.acc is not None else None
        settings = dict(self.settings, keyframes_with_gt=self.acc.keyframes if self.acc is not None else 0)
        if self.recorded is not None:
            if self.recorded.total_masks() > MAX_ID:  # each keyframe's proposals are new ids: uint16 maps overflow
                typer.echo(f"warning: {self.scene.scene_id}: no-policy row skipped ({self.recorded.total_masks()} "
                           f"proposals > {MAX_ID} ids)", err=True)
            else:
                labels, shares, votes, stats = track_without_policy(
                    self.scene, self.recorded, propagator, keyframe_stride=cfg.keyframe_stride,
                    tau_contain=self.p.tau_contain, min_area=sk.min_area_px(self.scene.image_size),
                    lift=cfg.lift, cloud=cloud)
                rows["no_policy"] = (labels, shares, votes)
                settings["no_policy_objects"] = int(stats["objects_created"])
        counts = {"gt_instances": cov.instances if cov else 0, "hits_proposals": cov.hits_proposals if cov else 0,
                  "hits_kept": cov.hits_kept if cov else 0}
        views = self.acc.view_counts if self.acc is not None else None
        return diagnostics_tree(rows, counts, settings, len(cloud), views)


def _weighted(summaries: list[dict[str, Any]], key: str) -> dict[str, float | int]:
    """Consistency summaries of several scenes pooled, each scene weighted by its number of GT instances."""
    rows = [s[key] for s in summaries if key in s and int(s[key].get("instances", 0)) > 0]
    n = sum(int(r["instances"]) for r in rows)
    if n == 0:
        return {"instances": 0}
    return {"instances": n, **{m: round(sum(float(r[m]) * int(r["instances"]) for r in rows) / n, 6)
                                for m in ("consistency", "purity", "ids_per_instance", "coverage")}}


def aggregate_metrics(summaries: dict[str, dict[str, Any]], p: Params) -> dict[str, Any]:
    stats = [s["track_stats"] for s in summaries.values()]
    total = {k: int(sum(int(s[k]) for s in stats)) for k in (
        "frames", "keyframes", "objects_created", "objects_terminated", "dormant_events", "reactivations",
        "proposals", "matched", "rejected_part_or_union", "rejected_small", "held", "extended", "contradicted",
        "reidentified", "revived_terminated", "labelled_points", "lifted_instances")} if stats else {}
    lengths = [float(s["mean_track_length_frames"]) * int(s["objects_created"]) for s in stats]
    created = total.get("objects_created", 0)
    cons = [s["consistency"] for s in summaries.values()]
    comparison = {k: _weighted(cons, k) for k in ("tracked", "tracked_keyframes", "stage1_keyframes")}
    a, b = comparison["tracked_keyframes"], comparison["stage1_keyframes"]
    if "consistency" in a and "consistency" in b:
        comparison["gain_over_stage1"] = round(float(a["consistency"]) - float(b["consistency"]), 6)
    return {
        "backend": p.sam2_track.backend,
        "scenes": len(summaries),
        "track_stats": {**total, "mean_track_length_frames": round(sum(lengths) / created, 4) if created else 0.0},
        "consistency": comparison,
        "per_scene": {sid: summaries[sid] for sid in sorted(summaries)},
    }


@app.command()
@user_errors
def main(
    scenes: Annotated[Path, typer.Option("--scenes", help="Data root holding the scenes (data.root).")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read.")] = Path("params.yaml"),
    out: Annotated[Path, typer.Option("--out", help="Folder of per-scene HDF5 tracks.")] = Path("data/sam2_track"),
    metrics: Annotated[Path, typer.Option("--metrics", help="Metrics JSON.")] = Path("metrics/sam2_track.json"),
    shard: Annotated[str | None, typer.Option("--shard", help="i/n: process scenes i, i+n, ... (default: torchrun RANK/WORLD_SIZE).")] = None,
) -> None:
    """Stage 2 data: granularity-consistent tracking (Algorithm 1) and lifting (plus, on the diagnosed scenes,
    the label-quality diagnostics and the no-policy row)."""
    import numpy as np
    from tqdm import tqdm

    from gcseg.atomic import check_output, write_text
    from gcseg.proposals.factory import build_proposer
    from gcseg.readers import open_scene
    from gcseg.tracking.artifact import is_finished, read_summary, write_track_artifact
    from gcseg.tracking.policy import TrackingPolicy
    from gcseg.tracking.run import LiftConfig, track_and_lift

    p = load_params(params, Params)
    cfg = p.sam2_track
    rank, world = parse_shard(shard)
    scene_ids = split_scenes(p.data.source, scenes, cfg.split)
    for path in (out, metrics):  # fail before any work; create nothing (the writers do, atomically)
        check_output(path)
    mine = scene_ids[rank::world]
    clean_shard_temporaries(out, [f"{s}.h5" for s in mine])  # only this worker's: others may be writing
    config = run_config(p)
    diagnosed = diagnosed_scenes(p, scenes)
    todo = [s for s in mine if not is_finished(out / f"{s}.h5", config, diagnosed=s in diagnosed)]
    if len(todo) < len(mine):
        typer.echo(f"skipping {len(mine) - len(todo)} finished scene(s) in {out}")
    propagator = build_propagator_from(cfg, p.seed) if todo else None  # checks the checkpoint up front
    sk = p.sam_keyframes  # Stage 1's proposer settings: the same masks per keyframe, now tracked
    shared = build_proposer("sam", backend_options(sk), seed=p.seed) if sk.backend == "sam" and todo else None
    lift = LiftConfig(**cfg.lift.model_dump())
    for sid in tqdm(todo, desc=f"sam2_track {rank}/{world}", unit="scene", disable=None):
        s = scene_seed(p.seed, sid)
        np.random.seed(s)
        scene = open_scene(p.data.source, scenes, sid)
        hw = scene.image_size
        proposer = scene_proposer(sk, scene, s, shared)
        policy = TrackingPolicy(tau_iou=p.tau_iou, tau_dorm=p.tau_dorm, gate_uncovered=cfg.gate_uncovered,
                                min_new_area=cfg.min_new_area_px(hw), min_visible_area=cfg.min_visible_area_px(hw),
                                recondition=cfg.recondition, recondition_iou=cfg.recondition_iou,
                                part_share=cfg.part_share, support_min=cfg.support_min,
                                contradict_min=cfg.contradict_min, reid=cfg.reid)
        probe = ScenePass(p, scene) if sid in diagnosed else None
        result, cloud, labels, shares, votes, consistency = track_and_lift(
            scene, probe.observe(proposer) if probe else proposer, propagator, policy,
            keyframe_stride=cfg.keyframe_stride, tau_contain=p.tau_contain, min_area=sk.min_area_px(hw),
            save_every=cfg.save_every, lift=lift, consistency_iou=cfg.consistency_iou,
            cloud=probe.cloud if probe else None, keyframe_hooks=probe.hooks() if probe else (),
            merge=cfg.merge_settings())
        diagnostics = probe.finish(propagator, cloud) if probe else None
        write_track_artifact(out / f"{sid}.h5", result, policy, cloud, labels, shares, votes, consistency,
                             diagnostics,
                             config=config)

    if not all(is_finished(out / f"{s}.h5", config, diagnosed=s in diagnosed) for s in scene_ids):
        typer.echo(f"worker {rank}/{world} done; metrics are written by the last worker to finish")
        return
    summaries = {s: read_summary(out / f"{s}.h5") for s in scene_ids}
    write_text(metrics, json.dumps(aggregate_metrics(summaries, p), indent=2, sort_keys=True) + "\n")
    typer.echo(f"{len(scene_ids)} scenes tracked -> {out}; metrics -> {metrics}")


if __name__ == "__main__":
    run_module(app)
