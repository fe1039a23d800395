"""DVC stage `keyframe_superpoints`: the oversegmentation (gcseg.superpoints, graph-based: keyframe clouds have no
mesh) of every Stage 1 sample, the single-view keyframe clouds written by `sam_keyframes`. One HDF5 per scene,
`<out>/<scene>.h5`, one sample per keyframe sample of the labels file; Stage 1 training reads it.

    python -m stages.keyframe_superpoints --params params.yaml --labels data/sam_keyframes --out data/superpoints_keyframes
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from stages._common import Section, clean_shard_temporaries, load_params, make_app, parse_shard, run_module, user_errors
from stages._jobs import JobsOption
from stages.superpoints import SuperpointsSection

app = make_app(__doc__ or "")


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    superpoints: SuperpointsSection


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


def _one_file(path: Path, out: Path, cfg: Any) -> int:
    """Write `<out>/<path.name>`: the superpoints of every keyframe cloud of one labels file; their number."""
    from gcseg.io.samples import read_point_samples
    from gcseg.superpoints import compute_superpoints, config_dict, write_superpoints

    samples = {name: (s["coord"], compute_superpoints(s["coord"], s["color"], cfg))
               for name, s in read_point_samples(path, ("gcseg.sam_keyframes",))}
    write_superpoints(out / path.name, path.stem, samples, method="felzenszwalb", config=config_dict(cfg))
    return len(samples)


@app.command()
@user_errors
def main(
    labels: Annotated[Path, typer.Option("--labels", help="sam_keyframes output folder (<scene>.h5).")],
    out: Annotated[Path, typer.Option("--out", help="Folder of per-scene superpoint files <scene>.h5.")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read.")] = Path("params.yaml"),
    shard: Annotated[str | None, typer.Option("--shard", help="i/n: process files i, i+n, ... (default: torchrun RANK/WORLD_SIZE).")] = None,
    jobs: JobsOption = 0,
) -> None:
    """Superpoints of every Stage 1 keyframe cloud."""
    from gcseg.atomic import check_output
    from gcseg.parallel import map_ordered
    from gcseg.train.dataset import list_sample_files

    p = load_params(params, Params)
    check_output(out)
    rank, world = parse_shard(shard)
    files = list_sample_files(labels)[rank::world]
    clean_shard_temporaries(out, [f.name for f in files])
    work = partial(_one_file, out=out, cfg=p.superpoints.config())
    total = sum(map_ordered(work, files, jobs=jobs, desc="keyframe superpoints"))
    typer.echo(f"{total} keyframe clouds of {len(files)} scenes -> {out}")


if __name__ == "__main__":
    run_module(app)
