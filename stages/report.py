"""DVC stage `report` (last in the DAG, cheap to rerun): one self-contained HTML page with the ablation table and
the run's params, precision-recall and training curves, AP against swept thresholds, side-by-side interactive
3D views of every stage's labels on a few scenes, keyframe overlays and track statistics; plus static PNGs of
the same figures for the README (gcseg.report).

    python -m stages.report --params params.yaml --scenes data/scenes --out metrics/report/report.html \\
        --png-dir metrics/report/png
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import Field

from stages._common import DataSection, Section, load_params, make_app, run_module, user_errors
from stages._eval_params import EvalSection

app = make_app(__doc__ or "")


class ReportSection(Section):
    """`report:` in params.yaml (meanings commented there)."""

    num_scenes: int = Field(2, ge=0, le=50)
    max_points_per_view: int = Field(4000, ge=100, le=200_000)
    split: Literal["train", "val", "all"] = "val"


class Params(Section):
    """The top-level params.yaml keys this stage reads (= its `params:` in dvc.yaml)."""

    data: DataSection
    report: ReportSection
    eval: EvalSection  # matrix_nms: the final model's view ranks its masks as the eval's table does


PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`


@app.command()
@user_errors
def main(
    scenes: Annotated[Path, typer.Option("--scenes", help="Data root holding the scenes (data.root).")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read (also shown in the report).")] = Path("params.yaml"),
    keyframes: Annotated[Path, typer.Option("--keyframes", help="sam_keyframes output folder (<scene>.h5).")] = Path("data/sam_keyframes"),
    overlays: Annotated[Path, typer.Option("--overlays", help="sam_keyframes overlay PNG folder (<scene>.png).")] = Path("data/overlays/sam_keyframes"),
    tracks: Annotated[Path, typer.Option("--tracks", help="sam2_track output folder (<scene>.h5).")] = Path("data/sam2_track"),
    pseudolabels: Annotated[Path, typer.Option("--pseudolabels", help="full_scene_pseudolabel output folder.")] = Path("data/pseudolabel"),
    models: Annotated[Path, typer.Option("--models", help="Folder with stage1/, stage2/, stage3/ model.pt.")] = Path("data/models"),
    superpoints: Annotated[Path | None, typer.Option("--superpoints", help="superpoints stage folder (<scene>.h5): "
                                                     "the final model predicts on them, as eval does (else computed).")] = None,
    metrics_dir: Annotated[Path, typer.Option("--metrics-dir", help="Metrics folder (eval.json, eval/pr, stage*_train, sweeps).")] = Path("metrics"),
    out: Annotated[Path, typer.Option("--out", help="The HTML report.")] = Path("metrics/report/report.html"),
    png_dir: Annotated[Path, typer.Option("--png-dir", help="Folder of static PNGs (replaced as a whole).")] = Path("metrics/report/png"),
    scene: Annotated[list[str] | None, typer.Option("--scene", help="Scene id to show (repeatable; default: "
                                                    "report.num_scenes scenes chosen automatically).")] = None,
) -> None:
    """Write the HTML report with tables, curves and 3D views (and static PNGs)."""
    from gcseg.report import ReportInputs, build_report

    p = load_params(params, Params)
    inputs = ReportInputs(scenes=scenes, source=p.data.source, keyframes=keyframes, overlays=overlays, tracks=tracks,
                          pseudolabels=pseudolabels, models=models, superpoints=superpoints, metrics_dir=metrics_dir, params_file=params,
                          num_scenes=p.report.num_scenes, max_points_per_view=p.report.max_points_per_view,
                          split=p.report.split, scene_ids=tuple(scene) if scene else None,
                          matrix_nms=p.eval.matrix_nms)
    build_report(inputs, out, png_dir)
    typer.echo(f"report -> {out}; PNGs -> {png_dir}")


if __name__ == "__main__":
    run_module(app)
