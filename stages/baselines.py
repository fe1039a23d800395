"""DVC stage `baselines`: training-free lifting of the same 2D masks, as ablation rows beside the method.
MaskClustering (view-consensus clustering) on the keyframe proposals, SAI3D (superpoint region growing) on the
keyframe proposals and on the Stage 2 tracked id maps; one HDF5 per scored scene (gcseg.baselines.artifact) that
`eval` turns into rows. Prints each row's seconds per scene (the per-row timings live in bench/, not in the
artifacts, which stay byte-deterministic)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import Field

from stages._common import (DataSection, Section, load_params, make_app, run_module, scene_files, split_scenes,
                            user_errors)
from stages._jobs import SamJobsOption
from stages.sam2_track import Sam2TrackSection, scene_seed
from stages.sam_keyframes import SamKeyframesSection, backend_options, scene_proposer

app = make_app(__doc__ or "")

RowName = Literal["maskclustering", "sai3d_keyframes", "sai3d_tracked"]


class MaskClusteringSection(Section):
    """`baselines.maskclustering` (gcseg.baselines.maskclustering.MaskClusteringConfig; provenance in params.yaml)."""

    mask_visible_threshold: float = Field(0.3, ge=0, le=1)
    mask_visible_points: int = Field(500, ge=1)
    contained_threshold: float = Field(0.8, ge=0, le=1)
    undersegment_filter_threshold: float = Field(0.3, ge=0, le=1)
    view_consensus_threshold: float = Field(0.9, ge=0, le=1)
    point_filter_threshold: float = Field(0.5, ge=0, le=1)
    min_mask_points: int = Field(25, ge=1)
    boundary_px: int = Field(1, ge=0)
    min_masks: int = Field(2, ge=1)
    dbscan_eps: float = Field(0.1, gt=0)
    dbscan_min_samples: int = Field(4, ge=1)
    overlap_merge: float = Field(0.8, ge=0, le=1)


class Sai3dSection(Section):
    """`baselines.sai3d` (gcseg.baselines.sai3d.Sai3dConfig; provenance in params.yaml)."""

    thresholds: list[float] = Field(default_factory=lambda: [0.9, 0.8, 0.7, 0.6, 0.5], min_length=1)
    max_neighbor_distance: int = Field(2, ge=1)
    distance_decay: float = Field(0.5, gt=0, le=1)
    k_graph: int = Field(8, ge=2)
    merge_points: int = Field(200, ge=0)
    merge_max_primitives: int = Field(2, ge=1)


class BaselinesSection(Section):
    """`baselines:` in params.yaml."""

    split: Literal["train", "val", "all"] = "val"
    rows: list[RowName] = Field(default_factory=lambda: ["maskclustering", "sai3d_keyframes", "sai3d_tracked"],
                                min_length=1)
    tracked_stride: int = Field(1, ge=1)
    maskclustering: MaskClusteringSection = MaskClusteringSection()
    sai3d: Sai3dSection = Sai3dSection()


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    seed: int
    tau_contain: float = Field(ge=0.0, le=1.0)
    data: DataSection
    sam_keyframes: SamKeyframesSection  # the keyframe proposer, exactly as sam2_track runs it
    sam2_track: Sam2TrackSection  # its keyframe stride and lifting distance
    baselines: BaselinesSection


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


def baselines_config(p: Params):  # type: ignore[no-untyped-def]
    from gcseg.baselines.maskclustering import MaskClusteringConfig
    from gcseg.baselines.run import BaselinesConfig
    from gcseg.baselines.sai3d import Sai3dConfig

    b = p.baselines
    if len(set(b.rows)) != len(b.rows):
        from gcseg.errors import ConfigError

        raise ConfigError(f"baselines.rows lists a row twice: {b.rows}", fix="name each row once")
    sai = b.sai3d.model_dump()
    sai["thresholds"] = tuple(sai["thresholds"])
    return BaselinesConfig(rows=tuple(b.rows), max_dist=p.sam2_track.lift.max_dist, tracked_stride=b.tracked_stride,
                           maskclustering=MaskClusteringConfig(**b.maskclustering.model_dump()),
                           sai3d=Sai3dConfig(**sai))


def _one_scene(item: tuple[str, Path, Path | None], p: Params, scenes: Path, out: Path, shared: Any = None) -> str:
    """The baselines of one scene (item: scene id, its tracked labels, its superpoints) -> `<out>/<sid>.h5`;
    returns the line reporting its rows. `shared`: a proposer loaded once (SAM's weights), else built here."""
    import numpy as np

    from gcseg.baselines.artifact import write_baselines
    from gcseg.baselines.run import keyframe_views, run_scene, track_cloud, tracked_views
    from gcseg.readers import open_scene
    from gcseg.tracking.run import keyframe_indices

    sid, track_file, sp_file = item
    cfg, sk = baselines_config(p), p.sam_keyframes
    s = scene_seed(p.seed, sid)  # the same per-scene seed and proposer as sam2_track: the same masks
    np.random.seed(s)
    scene = open_scene(p.data.source, scenes, sid)
    coord = track_cloud(track_file)
    proposer = scene_proposer(sk, scene, s, shared)
    keyframes = keyframe_indices(scene.num_frames, p.sam2_track.keyframe_stride)

    def superpoint_ids() -> np.ndarray:
        from gcseg.superpoints import REFERENCE, read_superpoints

        return read_superpoints(sp_file, REFERENCE, coord)

    result = run_scene(
        coord, cfg,
        keyframes=lambda: keyframe_views(scene, proposer, keyframes, tau_contain=p.tau_contain,
                                         min_area=sk.min_area_px(scene.image_size)),
        tracked=lambda: tracked_views(scene, track_file, cfg.tracked_stride),
        superpoints=superpoint_ids)
    write_baselines(out / f"{sid}.h5", sid, coord, result.rows)
    seconds = result.row_seconds()
    return f"{sid}: " + ", ".join(f"{r} {len(result.rows[r])} instances in {seconds[r]:.1f} s" for r in result.rows)


@app.command()
@user_errors
def main(
    scenes: Annotated[Path, typer.Option("--scenes", help="Data root holding the scenes (data.root).")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read.")] = Path("params.yaml"),
    tracks: Annotated[Path, typer.Option("--tracks", help="sam2_track output folder (<scene>.h5).")] = Path("data/sam2_track"),
    superpoints: Annotated[Path, typer.Option("--superpoints", help="superpoints output folder (<scene>.h5), for the SAI3D rows.")] = Path("data/superpoints"),
    out: Annotated[Path, typer.Option("--out", help="Folder of per-scene baseline predictions (<scene>.h5).")] = Path("data/baselines"),
    jobs: SamJobsOption = 0,
) -> None:
    """Training-free baselines (MaskClustering, SAI3D) on the scored scenes, for the ablation."""
    from gcseg.atomic import check_output
    from gcseg.parallel import map_ordered
    from gcseg.proposals.factory import build_proposer

    p = load_params(params, Params)
    cfg = baselines_config(p)
    scene_ids = split_scenes(p.data.source, scenes, p.baselines.split)
    check_output(out)
    track_files = scene_files(tracks, scene_ids, "tracked labels",
                         "track these scenes too: sam2_track.split must cover baselines.split, then "
                         "`dvc repro sam2_track`")
    sp_files = (scene_files(superpoints, scene_ids, "superpoints", "run `dvc repro superpoints` on these scenes")
                if cfg.needs_superpoints else {})
    sk = p.sam_keyframes
    # SAM's weights are loaded once, in this process (one model per worker would not fit a GPU)
    shared = build_proposer("sam", backend_options(sk), seed=p.seed) if sk.backend == "sam" else None
    items = [(sid, track_files[sid], sp_files.get(sid)) for sid in scene_ids]
    lines = map_ordered(partial(_one_scene, p=p, scenes=scenes, out=out, shared=shared), items,
                        jobs=1 if shared is not None else jobs, desc="baselines")
    for line in lines:
        typer.echo(line)
    typer.echo(f"{len(scene_ids)} scene(s) -> {out}")


if __name__ == "__main__":
    run_module(app)
