"""DVC stage `superpoints`: the oversegmentation of every scene's reference cloud (gcseg.superpoints), computed
once: ScanNet's own segs.json where the scene ships it, else Felzenszwalb-Huttenlocher on a kNN graph (normals
+ colour). One HDF5 per scene, `<out>/<scene>.h5`, sample `reference`. Stage 2 and 3 training, the Stage 3
pseudo-labels, the evaluation and the SAI3D baseline read it.

    python -m stages.superpoints --params params.yaml --scenes data/scenes --out data/superpoints
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import Field

from stages._common import (DataSection, Section, clean_shard_temporaries, load_params, make_app, parse_shard,
                            run_module, split_scenes, user_errors)
from stages._jobs import JobsOption

app = make_app(__doc__ or "")


class SuperpointsSection(Section):
    """`superpoints:` in params.yaml = gcseg.superpoints.SuperpointConfig (meanings commented there)."""

    voxel: float = Field(0.01, ge=0)
    k_neighbors: int = Field(10, ge=1)
    max_edge: float = Field(0.06, gt=0)
    k_thresh: float = Field(0.05, ge=0)
    color_weight: float = Field(2.0, ge=0)
    min_size: int = Field(10, ge=1)

    def config(self):  # type: ignore[no-untyped-def]
        from gcseg.superpoints import SuperpointConfig

        return SuperpointConfig(**self.model_dump())


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    data: DataSection
    superpoints: SuperpointsSection


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


def scannet_segs_file(root: Path, scene_id: str) -> Path:
    from gcseg.readers.scannet import scans_dir

    return scans_dir(root) / scene_id / f"{scene_id}_vh_clean_2.0.010000.segs.json"


def _one_scene(sid: str, source: str, scenes: Path, out: Path, cfg: Any) -> bool:
    """Write `<out>/<sid>.h5`; True when taken from ScanNet's segs.json."""
    from gcseg.errors import InputError
    from gcseg.readers import open_scene
    from gcseg.readers._gt import read_seg_indices
    from gcseg.superpoints import compute_superpoints, config_dict, scannet_segments, write_superpoints

    cloud = open_scene(source, scenes, sid).reference()
    if cloud is None or len(cloud) == 0:
        raise InputError(f"scene {sid} has no reference points", path=scenes / sid,
                         fix="the scene needs a mesh, reference.ply or frames to fuse")
    segs = scannet_segs_file(scenes, sid) if source == "scannet" else None
    if segs is not None and segs.is_file():
        sp, method, conf = scannet_segments(read_seg_indices(segs, len(cloud))), "scannet_segs", {}
    else:
        sp, method, conf = compute_superpoints(cloud.coord, cloud.color, cfg), "felzenszwalb", config_dict(cfg)
    write_superpoints(out / f"{sid}.h5", sid, {"reference": (cloud.coord, sp)}, method=method, config=conf)
    return method == "scannet_segs"


@app.command()
@user_errors
def main(
    scenes: Annotated[Path, typer.Option("--scenes", help="Data root holding the scenes (data.root).")],
    out: Annotated[Path, typer.Option("--out", help="Folder of per-scene superpoint files <scene>.h5.")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read.")] = Path("params.yaml"),
    shard: Annotated[str | None, typer.Option("--shard", help="i/n: process scenes i, i+n, ... (default: torchrun RANK/WORLD_SIZE).")] = None,
    jobs: JobsOption = 0,
) -> None:
    """Superpoints of every scene's reference cloud (segs.json or graph-based oversegmentation)."""
    from gcseg.atomic import check_output
    from gcseg.parallel import map_ordered

    p = load_params(params, Params)
    check_output(out)
    rank, world = parse_shard(shard)
    mine = split_scenes(p.data.source, scenes, "all")[rank::world]
    clean_shard_temporaries(out, [f"{s}.h5" for s in mine])
    work = partial(_one_scene, source=p.data.source, scenes=scenes, out=out, cfg=p.superpoints.config())
    n_segs = sum(map_ordered(work, mine, jobs=jobs, desc="superpoints"))
    typer.echo(f"{len(mine)} scenes -> {out}" + (f" ({n_segs} from ScanNet segs.json)" if n_segs else ""))


if __name__ == "__main__":
    run_module(app)
