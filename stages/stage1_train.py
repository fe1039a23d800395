"""DVC stage `stage1_train`: train the sparse UNet + query decoder from scratch on Stage 1 labels (SAM keyframe
masks lifted to single-view partial clouds, `sam_keyframes` output).

Writes `--out`/model.pt (final weights), `--out`/checkpoints/ (resumable state, a DVC `persist` out) and DVCLive
metrics under `--metrics` (metrics.json + plots/metrics/*.tsv)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages._common import make_app, param_keys, run_module, user_errors
from stages._train_common import Stage1Params as Params
from stages._train_common import run_training

app = make_app(__doc__ or "")
PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`
PARAMS = param_keys(Params)


@app.command()
@user_errors
def main(
    labels: Annotated[Path, typer.Option(help="Folder of point-sample HDF5 files.")] = Path("data/sam_keyframes"),
    out: Annotated[Path, typer.Option(help="Model folder: model.pt + checkpoints/.")] = Path("data/models/stage1"),
    metrics: Annotated[Path, typer.Option(help="DVCLive metrics folder.")] = Path("metrics/stage1_train"),
    init: Annotated[Path | None, typer.Option(help="Optional model.pt to start from (default: random init).")] = None,
    scenes: Annotated[Path | None, typer.Option(help="Data root (data.root): GT of its val split is scored during "
                                                     "training (monitoring only).")] = None,
    superpoints: Annotated[Path | None, typer.Option(help="Superpoints of the label files' clouds (a folder of "
                                                          "the superpoints stages); needed by superpoint models.")] = None,
    ref_superpoints: Annotated[Path | None, typer.Option(help="Superpoints of the reference clouds (the superpoints "
                                                              "stage's folder): for the GT val scores.")] = None,
    params: Annotated[Path, typer.Option(help="params.yaml to read.")] = Path("params.yaml"),
) -> None:
    """Train the Stage 1 model."""
    run_training("stage1_train", Params, params, labels, out, metrics, init, scenes, superpoints,
                 ref_superpoints)


if __name__ == "__main__":
    run_module(app)
