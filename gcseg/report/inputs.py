"""What the report reads: the artifact locations (`ReportInputs`) and small, tolerant loaders for the metrics files.

Every loader raises `ArtifactError` (naming the file and the stage that writes it) for a missing or unreadable
file; the report turns that into a notice in the section instead of failing, so a partial pipeline still gets a
report.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcseg.errors import ArtifactError
from gcseg.models.config import MatrixNmsSetting

ROWS: tuple[str, ...] = ("lift_only", "stage1", "stage2", "stage3")  # ablation rows in the order of the paper
ROW_TITLES: dict[str, str] = {"lift_only": "Lift-only (Stage 2 tracked labels)", "stage1": "Stage 1",
                              "stage2": "Stage 1 + 2", "stage3": "Stage 1 + 2 + 3",
                              # training-free baselines (stage baselines, gcseg.baselines)
                              "maskclustering": "MaskClustering (training-free, keyframe proposals)",
                              "sai3d_keyframes": "SAI3D (training-free, keyframe proposals)",
                              "sai3d_tracked": "SAI3D (training-free, Stage 2 tracked masks)"}
# the train-room rows `make study` adds with eval.own_labels (gcseg.study; the report's study table)
OWN_TITLES: dict[str, str] = {"own_lift_only": "Their training labels (tracked, lifted)", "own_stage2": "Stage 1 + 2",
                              "own_stage3": "Stage 1 + 2 + 3"}
# ... and the eval stage's perfect-ranking diagnostic of each row (gcseg.eval.ranking), the same masks in GT order
PERFECT_TITLES: dict[str, str] = {f"perfect_{r}": f"{t}, perfect order (uses GT)" for r, t in ROW_TITLES.items()
                                  if r in ("lift_only", "stage1", "stage2", "stage3")}
# metrics/eval.json's diagnostics block (gcseg.eval.diagnostics): GT ceiling and perfect identity (use the GT),
# then the no-policy tracking row (the policy ablation)
DIAGNOSTIC_ORDER: tuple[str, ...] = ("ceiling", "perfect_identity", "no_policy")
DIAGNOSTIC_TITLES: dict[str, str] = {"ceiling": "Ceiling: GT 2D masks on the keyframes, lifted",
                                     "perfect_identity": "Proposals with perfect identity, lifted",
                                     "no_policy": "Tracking without the policy, lifted"}
TRAIN_STAGES: tuple[str, ...] = ("stage1", "stage2", "stage3")


@dataclass(frozen=True)
class ReportInputs:
    """Where the pipeline's artifacts are (paths as dvc.yaml names them; shown in the report as given).

    scenes/source: the data root and reader (gcseg.readers); keyframes: sam_keyframes HDF5 folder; overlays:
    its overlay PNG folder; tracks: sam2_track folder; pseudolabels: full_scene_pseudolabel folder; models:
    folder with stage{1,2,3}/model.pt; superpoints: the superpoints stage's folder (the final model predicts on
    them; None: computed); metrics_dir: the `metrics/` folder (eval.json, eval/pr/*.csv,
    stage*_train/, sam2_track.json, sweeps/*/sweep.json); params_file: params.yaml rendered in the report
    (None: not shown); matrix_nms: the eval stage's eval.matrix_nms, so that the final model's view ranks its
    masks as the eval's table does. num_scenes scenes get 3D views (preferring `split`; scene_ids overrides the choice),
    each view subsampled to max_points_per_view points.
    """

    scenes: Path
    source: str = "synth"
    keyframes: Path = Path("data/sam_keyframes")
    overlays: Path = Path("data/overlays/sam_keyframes")
    tracks: Path = Path("data/sam2_track")
    pseudolabels: Path = Path("data/pseudolabel")
    models: Path = Path("data/models")
    superpoints: Path | None = None
    metrics_dir: Path = Path("metrics")
    params_file: Path | None = Path("params.yaml")
    matrix_nms: MatrixNmsSetting = "linear"  # the final model's masks ranked as the eval stage ranks them (eval.matrix_nms)
    num_scenes: int = 2
    max_points_per_view: int = 4000
    split: str = "val"
    scene_ids: tuple[str, ...] | None = None


def require_file(path: Path, fix: str) -> Path:
    """`path` if it is a file, else ArtifactError with `fix`."""
    if not Path(path).is_file():
        raise ArtifactError("not found", path=path, fix=fix)
    return Path(path)


def load_json(path: Path, fix: str) -> Any:
    """Parsed JSON of `path` (ArtifactError if absent or not JSON)."""
    require_file(path, fix)
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"not valid JSON ({exc})", path=path, fix=fix) from exc


def finite(x: Any) -> float | None:
    """A finite float or None (metrics may hold null / NaN for rows without GT)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def read_columns(path: Path, fix: str, delimiter: str = ",") -> dict[str, list[float]]:
    """Numeric columns of a CSV / TSV with a header row (ArtifactError if absent, empty or not numeric)."""
    require_file(path, fix)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter=delimiter))
    if not rows:
        raise ArtifactError("empty file (no header)", path=path, fix=fix)
    head, body = rows[0], [r for r in rows[1:] if r]
    try:
        cols = {h: [float(r[i]) for r in body] for i, h in enumerate(head)}
    except (ValueError, IndexError) as exc:
        raise ArtifactError(f"non-numeric or short row ({exc})", path=path, fix=fix) from exc
    return cols
