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
) -> None:
    """Segment a scan or point cloud with a trained model (no DVC needed)."""
    from gcseg.predict import predict_scan

    summary = predict_scan(input, checkpoint, out, source=source, tau_conf=tau_conf, scene_id=scene_id)
    typer.echo(f"{summary['scene_id']}: {summary['num_masks']} masks on {summary['num_points']} points "
               f"({summary['source']}) -> {out}")


if __name__ == "__main__":
    run_module(app)
