"""DVC stage `stage3_train`: fine-tune the Stage 2 model on Stage 3 labels (full-scene pseudo-labels of the Stage 2
model above tau_conf, `full_scene_pseudolabel` output), and with `stage3_train.replay_tracked` on Stage 2's tracked
labels too (`--tracked`).

Writes `--out`/model.pt (final weights), `--out`/checkpoints/ (resumable state, a DVC `persist` out) and DVCLive
metrics under `--metrics` (metrics.json + plots/metrics/*.tsv)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages._common import load_params, make_app, param_keys, run_module, user_errors
from stages._train_common import Stage3Params as Params
from stages._train_common import run_training

app = make_app(__doc__ or "")
PARAMS_MODEL = Params  # the DVC contract test compares its fields with dvc.yaml's `params:`
PARAMS = param_keys(Params)


@app.command()
@user_errors
def main(
    labels: Annotated[list[Path], typer.Option(help="Folder of point-sample HDF5 files (the pseudo-labels); repeat "
                                                    "the option to train on several.")] = [Path("data/pseudolabel")],
    tracked: Annotated[Path | None, typer.Option(help="Stage 2's tracked labels (sam2_track's folder), trained on "
                                                      "too when stage3_train.replay_tracked is true.")] = None,
    out: Annotated[Path, typer.Option(help="Model folder: model.pt + checkpoints/.")] = Path("data/models/stage3"),
    metrics: Annotated[Path, typer.Option(help="DVCLive metrics folder.")] = Path("metrics/stage3_train"),
    init: Annotated[Path, typer.Option(help="Upstream model.pt to fine-tune.")] = Path("data/models/stage2/model.pt"),
    scenes: Annotated[Path | None, typer.Option(help="Data root (data.root): GT of its val split is scored during "
                                                     "training (monitoring only).")] = None,
    superpoints: Annotated[Path | None, typer.Option(help="Superpoints of the label files' clouds (a folder of "
                                                          "the superpoints stages); needed by superpoint models.")] = None,
    ref_superpoints: Annotated[Path | None, typer.Option(help="Superpoints of the reference clouds (the superpoints "
                                                              "stage's folder): for the GT val scores.")] = None,
    params: Annotated[Path, typer.Option(help="params.yaml to read.")] = Path("params.yaml"),
) -> None:
    """Train the Stage 3 model."""
    if tracked is not None and load_params(params, Params).stage3_train.replay_tracked:
        labels = [*labels, tracked]
    run_training("stage3_train", Params, params, labels, out, metrics, init, scenes, superpoints,
                 ref_superpoints)


if __name__ == "__main__":
    run_module(app)
