"""The params.yaml `eval:` section, read by the eval stage and by the commands that score or show the models as it
does (`gcseg unseen`, the report's view of the final model); a module of its own so that those do not import the
eval stage and its dependencies."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gcseg.models.config import FragmentConfig, MatrixNmsSetting
from stages._common import Section


class EvalSection(Section):
    """`eval:` in params.yaml."""

    gt_classes: Literal["synthetic", "scannet200", "scannetv2_18", "scannetpp_84"] = "synthetic"
    min_region_size: int = Field(100, ge=1)
    use_scores: bool = True
    split: Literal["train", "val", "all"] = "val"
    own_labels: bool = False
    fragments: FragmentConfig | None = FragmentConfig()  # model rows: masks plus their connected pieces (None = off)
    matrix_nms: MatrixNmsSetting = "linear"  # model rows: the checkpoint's model.matrix_nms ("checkpoint") or this
