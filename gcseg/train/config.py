"""Training settings (params.yaml `stage1_train:`, `stage2_train:`, `stage3_train:`), importable without torch.

Every field is documented where params.yaml sets it; defaults are the small CPU configuration."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gcseg.models.config import without_added


class AugmentConfig(BaseModel):
    """Training augmentation (Mask3D/Segment3D: scale +-10 %, z rotation +-pi, flips, elastic distortion,
    colour jitter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rotate_z: bool = True
    flip: bool = True
    scale: float = Field(0.1, ge=0, lt=1)
    elastic: tuple[tuple[float, float], ...] = ()
    color_jitter: float = Field(0.05, ge=0)


class LossConfig(BaseModel):
    """Loss weights = Hungarian matcher costs (Mask3D `set_criterion.yaml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ce: float = Field(2.0, ge=0)
    bce: float = Field(5.0, ge=0)
    dice: float = Field(2.0, ge=0)
    eos_coef: float = Field(0.1, ge=0)
    num_points: int = Field(4096, gt=0)
    targets: Literal["all", "labelled"] = "all"  # all: unlabelled = negatives of every mask (Mask3D/Segment3D)
    matcher: Literal["hungarian", "seeded"] = "hungarian"  # seeded: OneFormer3D (queries seeded inside a target)
    seeded_topk: int = Field(1, ge=0)  # seeded: queries matched per target (OneFormer3D 1; 0 = all seeded inside)
    # mask terms averaged per target, then over targets (True), instead of over matched queries: with several
    # queries per target, a table holding 40 seeds would otherwise outweigh the cup holding one 40 to 1
    balance_targets: bool = False
    # which matched queries the objectness learns as objects: matched (every matched query, Mask3D; with the seeded
    # matcher at topk 0 that is every query seeded inside a target, whatever its mask) | quality (only those whose
    # mask, thresholded at 0, reaches IoU 0.5 with their target on the sampled elements; the rest learn no-object,
    # their mask terms unchanged) | iou (soft: a matched query's target is its mask's IoU, SPFormer's IoU score
    # folded into the objectness) | best (one object per target, as DETR's one-to-one matching has it: of the queries
    # matched to a target only the one whose mask has the highest IoU with it), so that the objectness ranks masks
    # (docs/model_study.md "Rounds 22-23", 27) | confidence (soft: quality's positives, each with its label's
    # confidence as the target, a pseudo-label's score or a tracked label's lift-only confidence, so that the
    # objectness learns the labels' order, which costs them half what the models' costs; Stages 2 and 3 only)
    objectness: Literal["matched", "quality", "iou", "best", "confidence"] = "matched"
    # objectness positives weigh 1 per target, shared by its positive queries (as balance_targets does for the mask
    # terms), their total unchanged: with every query seeded inside a target an object, a table holding 40 seeds
    # otherwise teaches "object" 40 times for a cup's once. matched | quality only (docs/model_study.md round 25)
    balance_objectness: bool = False
    # the IoU head's loss (models with model.iou_head; no term without the head), SPFormer's score loss: weight
    # (SPFormer 0.5) of the mean squared error between the head's sigmoid and the IoU of the query's mask,
    # thresholded at 0, with its target on the sampled elements, over matched queries whose IoU exceeds iou_score_min
    # (SPFormer 0.5: the head ranks good masks; poorer ones are the objectness's to reject)
    iou_score: float = Field(0.5, ge=0)
    iou_score_min: float = Field(0.5, ge=0, lt=1)

    @model_validator(mode="after")
    def _hard_objectness_balanced(self) -> "LossConfig":
        if self.balance_objectness and self.objectness in ("iou", "confidence"):
            raise ValueError("loss.balance_objectness weighs hard objectness targets (objectness: matched | quality), "
                             "not the soft iou or confidence targets; set one of them off")
        return self

    def weights(self) -> Any:
        """As gcseg.models.loss.LossWeights (imports torch)."""
        from gcseg.models.loss import LossWeights

        return LossWeights(**self.model_dump())


# loss fields added after checkpoints of the default existed, with the value that changes nothing: the resume
# fingerprint leaves them out at that value, so that those checkpoints (and the lock's) keep their bytes
ADDED_LOSS_FIELDS: dict[str, Any] = {"objectness": "matched", "iou_score": 0.5, "iou_score_min": 0.5,
                                     "balance_objectness": False}

# the same for TrainConfig's own fields
ADDED_TRAIN_FIELDS: dict[str, Any] = {"mix3d": False}


class TrainConfig(BaseModel):
    """One training stage's settings (params.yaml `stage1_train:`, `stage2_train:`, `stage3_train:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(20, ge=1)
    lr: float = Field(2.0e-4, gt=0)
    batch_size: int = Field(2, ge=1)
    weight_decay: float = Field(0.01, ge=0)  # AdamW's default (Mask3D inherits it)
    grad_clip: float | None = Field(10.0, gt=0)  # max gradient norm (OneFormer3D 10; None = off)
    pct_start: float = Field(0.3, gt=0, lt=1)
    max_points: int | None = Field(None, gt=0)
    # visits of every sample per epoch, each with its own crop / augmentation (1 = one pass, the old behaviour)
    repeats: int = Field(1, ge=1)
    # random xy box crop (metres) around a labelled point before augmentation; None = whole samples
    crop_size: float | None = Field(None, gt=0)
    loss: LossConfig = LossConfig()
    augment: AugmentConfig = AugmentConfig()
    time_budget_s: float | None = Field(None, gt=0)
    val_every: int = Field(0, ge=0)
    # the val check also scores the GT of the val split (val/AP*), besides the fit to the training labels; the eval
    # stage scores the same final models on the same scenes, so the default pipeline leaves it to eval
    val_gt: bool = True
    checkpoint_every: int = Field(1, ge=1)
    bn_recompute_batches: int = Field(16, ge=0)
    val_samples: int = Field(8, ge=1)
    # final weights = init + wise_ft x (trained - init), before the BatchNorm recompute (WiSE-FT, Wortsman et al.,
    # CVPR 2022: weight-space ensemble of a fine-tuned model and its init); 1.0 = the trained weights. Needs an init
    wise_ft: float = Field(1.0, gt=0, le=1)
    # Mix3D (Nekrasov et al., 3DV 2021; Mask3D's VoxelizeCollateMerge): every pair of a step's samples (on one
    # rank) becomes one scene, the two augmented crops overlaid about the origin with their labels and superpoints
    # kept apart, so that objects must be told by their own shape rather than their room's context. The same
    # points per step, half the scenes; the BatchNorm recompute sees unmixed samples, as inference does
    mix3d: bool = False

    def fingerprint_dict(self) -> dict[str, Any]:
        """The settings as the resume fingerprint reads them: without the budget and the val cadence (they change
        when training stops, not what an epoch computes) and without ADDED_LOSS_FIELDS / ADDED_TRAIN_FIELDS at
        their off value."""
        d = self.model_dump(mode="json")
        d.pop("time_budget_s")
        d.pop("val_every")
        d["loss"] = without_added(d["loss"], ADDED_LOSS_FIELDS)
        return without_added(d, ADDED_TRAIN_FIELDS)


class Stage3TrainConfig(TrainConfig):
    """Stage 3's settings: TrainConfig plus what it trains on besides the full-scene pseudo-labels."""

    # also train on Stage 2's tracked labels of the same scenes (replay): the pseudo-labels hold only the objects
    # the model is sure of, and trained on them alone it unlearns the rest (docs/model_study.md, round 4)
    replay_tracked: bool = True
