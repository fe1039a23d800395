"""`gcseg predict`: segment a new scan (posed RGB-D folder, ScanNet / ScanNet++ scene, or point-cloud PLY) with
a trained checkpoint and write ScanNet benchmark-format predictions. No DVC, no params.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages._common import make_app, run_module, user_errors

app = make_app(__doc__ or "")


@app.command()
@user_errors
def main(
    input: Annotated[Path, typer.Option("--input", help="Scan folder or point-cloud .ply file.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Trained model.pt (e.g. data/models/stage3/model.pt).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created; several scenes may share it).")],
    source: Annotated[str, typer.Option("--source", help="auto | posed_rgbd | scannet | scannetpp | ply.")] = "auto",
    tau_conf: Annotated[float, typer.Option("--tau-conf", help="Keep masks with score > tau-conf.")] = 0.0,
    scene_id: Annotated[str | None, typer.Option("--scene-id", help="Name of the outputs (default: folder or file name).")] = None,
    fragment_eps: Annotated[float, typer.Option("--fragment-eps", help="Also output the connected pieces of a mask "
                                                "that falls apart, points this many metres apart counting as "
                                                "connected (as the eval stage's eval.fragments); 0 = masks only.")] = 0.05,
    fragment_score: Annotated[float, typer.Option("--fragment-score", help="A piece's score as a fraction of its "
                                                  "mask's (0 < x <= 1).")] = 0.5,
    matrix_nms: Annotated[str, typer.Option("--matrix-nms", help="Rescore the masks by their overlap with "
                                            "better-scored ones: checkpoint (its model.matrix_nms) | linear | "
                                            "gaussian | off (the eval stage's default, eval.matrix_nms).")] = "linear",
) -> None:
    """Segment a scan or point cloud with a trained model (no DVC needed)."""
    from pydantic import ValidationError

    from gcseg.errors import InputError
    from gcseg.models.config import MATRIX_NMS_SETTINGS, FragmentConfig
    from gcseg.predict import predict_scan

    if fragment_eps < 0:
        raise InputError(f"--fragment-eps must be >= 0, got {fragment_eps}", fix="e.g. --fragment-eps 0.05 (0 = off)")
    try:
        fragments = FragmentConfig(eps=fragment_eps, score_factor=fragment_score) if fragment_eps > 0 else None
    except ValidationError as exc:
        raise InputError(f"--fragment-score must be in (0, 1], got {fragment_score}",
                         fix="e.g. --fragment-score 0.5") from exc
    if matrix_nms not in MATRIX_NMS_SETTINGS:
        raise InputError(f"--matrix-nms must be one of {', '.join(MATRIX_NMS_SETTINGS)}, got {matrix_nms!r}",
                         fix="e.g. --matrix-nms linear")
    summary = predict_scan(input, checkpoint, out, source=source, tau_conf=tau_conf, scene_id=scene_id,
                           fragments=fragments, matrix_nms=matrix_nms)
    typer.echo(f"{summary['scene_id']}: {summary['num_masks']} masks on {summary['num_points']} points "
               f"({summary['source']}) -> {out}")


if __name__ == "__main__":
    run_module(app)
