"""The paper's ablation on the val scenes: Stage 1 / +2 / +3 models and the Stage 2 tracked labels used directly.

Rows (``ROWS``):

* ``lift_only``: the `sam2_track` labels of a val scene (the tracked 2D masks voted onto the reference cloud) taken
  as the prediction, without any 3D model: one mask per track id. Its confidence is the id's **vote share**: the
  mean, over the points carrying the id, of the fraction of that point's votes (every voted frame, "no object"
  pixels included) that went to the id; `sam2_track` stores each point's share beside its label (computed in
  the same vote, `gcseg.lifting.VoteAccumulator.label_shares`) and :func:`lift_only_predictions` averages them.
  A track that several views agree on ranks above one that barely won the majority vote; nothing is a tuned
  constant. The diagnostics (gcseg.eval.diagnostics) and the no-policy tracking row are lifted rows of the same
  form.
* ``stage1``, ``stage2``, ``stage3``: each model's :func:`gcseg.models.inference.predict_points` on the val
  scene's reference cloud (masks sorted by score, Mask3D scores).

GT per point = ``segment * 1000 + instance`` from the reference cloud (:func:`gt_ids_from_cloud`); points with
instance 0 or segment 0 are void (synthetic walls / floor / ceiling), so every labelled object counts in the
``synthetic`` GT mode. Scoring is :func:`gcseg.eval.ap.evaluate_scenes` (ScanNet protocol), all rows on the same
points with the same GT.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.atomic import write_text
from gcseg.errors import InputError
from gcseg.eval.ap import EvalResult, SceneEval, evaluate_scenes
from gcseg.scene import PointCloud

ROWS: tuple[str, ...] = ("lift_only", "stage1", "stage2", "stage3")
ROW_TITLES: dict[str, str] = {
    "lift_only": "Stage 2 tracked labels, lifted (no 3D model)",
    "stage1": "Stage 1",
    "stage2": "Stage 1 + 2",
    "stage3": "Stage 1 + 2 + 3",
}
# Paper (arXiv 2511.00785) ablation on ScanNet++, class-agnostic AP: quoted in a note, never in our table.
PAPER_SCANNETPP_AP: dict[str, float] = {"stage1": 11.4, "stage3": 16.3}


@dataclass(frozen=True)
class ValScene:
    """One val scene: its reference points and GT ids (``segment * 1000 + instance``, < 1000 = void)."""

    scene_id: str
    coord: np.ndarray  # float32 (N, 3)
    color: np.ndarray  # uint8 (N, 3)
    gt_ids: np.ndarray  # int64 (N,)
    valid: np.ndarray | None = None  # bool (N,); False = left out (ScanNet++ ignore mask)
    superpoint: np.ndarray | None = None  # int (N,) superpoints of the cloud (superpoint models; gcseg.superpoints)


@dataclass(frozen=True)
class RowPrediction:
    """One row's masks on one scene: bool [K, N] (scene order of points) and float [K] confidences; lifted rows
    also carry each mask's mean vote share [K] (the GT-free vote-share statistic; None for models)."""

    masks: np.ndarray
    scores: np.ndarray
    vote_share: np.ndarray | None = None


@dataclass(frozen=True)
class RowResult:
    """A row's AP figures, PR curves (inside `result`) and mean number of predicted masks per scene."""

    result: EvalResult
    masks_per_scene: float

    def metrics(self) -> dict[str, Any]:
        """``{"AP", "AP50", "AP25", "masks_per_scene"}`` (+ ``subsets: {head: {AP, AP50, AP25}, ...}`` for
        ScanNet200), NaN -> None (valid JSON)."""

        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        out: dict[str, Any] = {"AP": num(self.result.ap), "AP50": num(self.result.ap50),
                               "AP25": num(self.result.ap25), "masks_per_scene": round(float(self.masks_per_scene), 4)}
        if self.result.subsets:
            out["subsets"] = {k: {"AP": num(v.ap), "AP50": num(v.ap50), "AP25": num(v.ap25)}
                              for k, v in sorted(self.result.subsets.items())}
        return out


def gt_ids_from_cloud(cloud: PointCloud, scene_id: str) -> np.ndarray:
    """``segment * 1000 + instance`` per point; void (0) where instance or segment is 0.

    A cloud without ``segment`` (e.g. a posed_rgbd capture with instance labels only) gets label 1 for every
    instance (class-agnostic). Instance ids >= 1000 are renumbered 1..n in ascending order so that the
    ``*1000`` encoding cannot mix two objects."""
    if cloud.instance is None:
        raise InputError(f"scene {scene_id} has no GT instance labels on its reference cloud",
                         fix="evaluate on scenes with GT (synth, ScanNet, ScanNet++, or a labelled reference.ply)")
    inst = np.asarray(cloud.instance, dtype=np.int64)
    seg = np.ones_like(inst) if cloud.segment is None else np.asarray(cloud.segment, dtype=np.int64)
    if inst.shape != (len(cloud),) or seg.shape != inst.shape:
        raise InputError(f"scene {scene_id}: GT arrays do not match the {len(cloud)} reference points")
    counted = (inst > 0) & (seg > 0)
    if counted.any() and inst[counted].max() >= 1000:
        _, rank = np.unique(inst[counted], return_inverse=True)
        inst = inst.copy()
        inst[counted] = rank + 1
        if rank.max() + 1 >= 1000:
            raise InputError(f"scene {scene_id} has >= 1000 GT instances: the label*1000+instance encoding "
                             "cannot hold them", fix="split the scene")
    return np.where(counted, seg * 1000 + inst, 0).astype(np.int64)


def val_scene_from_cloud(scene_id: str, cloud: PointCloud, valid: np.ndarray | None = None) -> ValScene:
    """A ValScene from a reference cloud with GT (colour zeros when the cloud has none)."""
    n = len(cloud)
    color = cloud.color if cloud.color is not None else np.zeros((n, 3), np.uint8)
    return ValScene(scene_id=scene_id, coord=np.asarray(cloud.coord, np.float32), color=np.asarray(color, np.uint8),
                    gt_ids=gt_ids_from_cloud(cloud, scene_id), valid=valid)


def lift_only_predictions(labels: np.ndarray, shares: np.ndarray, votes: np.ndarray | None = None
                          ) -> RowPrediction:
    """One mask per label id >= 1, in descending confidence. Confidence = the mean over the id's points of the
    lower Wilson bound of each point's vote share given its number of `votes` (gcseg.lifting.wilson_lower), or
    the mean vote share where `votes` is None."""
    from gcseg.lifting import label_confidence, label_means

    labels = np.asarray(labels, dtype=np.int64)
    shares = np.asarray(shares, dtype=np.float64)
    if shares.shape != labels.shape:
        raise InputError(f"{labels.shape[0]} labels but {shares.shape[0]} vote shares")
    if votes is not None and np.shape(votes) != labels.shape:
        raise InputError(f"{labels.shape[0]} labels but {np.shape(votes)[0]} vote counts")
    ids = np.unique(labels[labels > 0])
    masks = labels[None, :] == ids[:, None]
    mean_share = label_means(shares, labels, ids)
    scores = label_confidence(labels, shares, votes, ids)
    order = np.argsort(-scores, kind="stable")  # file order = descending confidence, as model predictions
    return RowPrediction(masks=masks[order], scores=scores[order].astype(np.float32),
                         vote_share=mean_share[order].astype(np.float32))


def model_predictions(model: Any, scene: ValScene, fragments: Any = None) -> RowPrediction:
    """A mask model's class-agnostic masks on the scene's reference cloud (gcseg.models.inference), with the
    connected pieces of masks that fall apart added where `fragments` (a gcseg.models.config.FragmentConfig)
    is given."""
    from gcseg.models.inference import predict_points

    masks, scores = predict_points(model, scene.coord, scene.color, superpoint=scene.superpoint, fragments=fragments)
    return RowPrediction(masks=masks, scores=scores)


def scene_evals(val_scenes: Sequence[ValScene], preds: Mapping[str, RowPrediction]) -> list[SceneEval]:
    """One row's predictions (scene id -> RowPrediction) as the AP code's SceneEval of each val scene."""
    out = []
    for s in val_scenes:
        p = preds[s.scene_id]
        masks = np.asarray(p.masks, dtype=bool).reshape(-1, s.gt_ids.shape[0])
        out.append(SceneEval(scene_id=s.scene_id, gt_ids=s.gt_ids, valid=s.valid, pred_masks=masks,
                             pred_scores=np.asarray(p.scores, np.float64)))
    return out


def evaluate_rows(val_scenes: Sequence[ValScene], rows: Mapping[str, Mapping[str, RowPrediction]], *,
                  min_region_size: int = 100, valid_labels: Collection[int] | None = None,
                  use_scores: bool = True, subsets: Mapping[str, Collection[int]] | None = None
                  ) -> dict[str, RowResult]:
    """AP / AP50 / AP25, PR curves and masks per scene of every row, in the order of `rows`.

    rows: row name -> scene id -> that row's prediction on the scene; every row must cover every val scene.
    The other arguments are those of gcseg.eval.ap.evaluate_scenes (GT class set, size filter, scores)."""
    if not val_scenes:
        raise InputError("no val scenes to evaluate", fix="check eval.split and the data root")
    ids = [s.scene_id for s in val_scenes]
    out: dict[str, RowResult] = {}
    for name, preds in rows.items():
        missing = [sid for sid in ids if sid not in preds]
        if missing:
            raise InputError(f"row {name!r} has no prediction for scene(s) {', '.join(missing[:5])}")
        result = evaluate_scenes(scene_evals(val_scenes, preds), min_region_size=min_region_size, valid_labels=valid_labels,
                                 use_scores=use_scores, subsets=subsets)
        per_scene = [int(np.asarray(preds[sid].masks).shape[0]) for sid in ids]
        out[name] = RowResult(result=result, masks_per_scene=float(np.mean(per_scene)))
    return out


def metrics_json(results: Mapping[str, RowResult]) -> dict[str, dict[str, Any]]:
    """``{row: {"AP", "AP50", "AP25", "masks_per_scene"}}`` for metrics/eval.json."""
    return {name: r.metrics() for name, r in results.items()}


def pr_csv(result: RowResult, iou: float = 0.5) -> str:
    """``recall,precision`` rows of the PR curve at IoU 0.5 (sorted by recall) for ``dvc plots``."""
    lines = ["recall,precision"]
    lines += [f"{r['recall']:.6f},{r['precision']:.6f}" for r in result.result.pr_rows(iou)]
    return "\n".join(lines) + "\n"


def write_pr_csvs(folder: str | Path, results: Mapping[str, RowResult]) -> list[Path]:
    """One ``<row>.csv`` per row in `folder` (atomic each); returns the paths."""
    folder = Path(folder)
    paths = []
    for name, r in results.items():
        write_text(folder / f"{name}.csv", pr_csv(r))
        paths.append(folder / f"{name}.csv")
    return paths


def _cell(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def ablation_markdown(results: Mapping[str, RowResult], *, gt_classes: str = "synthetic",
                      num_scenes: int | None = None, titles: Mapping[str, str] | None = None,
                      notes: Sequence[str] = ()) -> str:
    """The ablation table (values in %), model rows first as in the paper, then the lift-only row and any other
    rows (named by `titles`, e.g. training-free baselines), and a note with the paper's ScanNet++ figures (not
    comparable: other data, other scale); `notes` are extra paragraphs after the lift-only note."""
    titles = {**ROW_TITLES, **(titles or {})}
    lines = ["| Method | AP | AP50 | AP25 | masks / scene |", "|---|---:|---:|---:|---:|"]
    order = [r for r in ("stage1", "stage2", "stage3") if r in results] + \
        [r for r in results if r not in ("stage1", "stage2", "stage3")]
    for name in order:
        r = results[name]
        lines.append(f"| {titles.get(name, name)} | {_cell(r.result.ap)} | {_cell(r.result.ap50)} | "
                     f"{_cell(r.result.ap25)} | {r.masks_per_scene:.1f} |")
    scenes = f"{num_scenes} val scene(s), " if num_scenes is not None else ""
    lines += [
        "",
        f"Class-agnostic AP ({scenes}GT classes `{gt_classes}`; AP = mean over IoU 0.50:0.05:0.90, values in %).",
        "The lift-only row scores the Stage 2 tracked labels voted onto the reference cloud directly, each track "
        "id one mask, its confidence the mean over its points of the lower 95 % Wilson bound of the point's vote "
        "share (few votes count less).",
        *[x for note in notes for x in ("", note)],
        "",
        f"Note: the paper reports on ScanNet++ Stage 1 {PAPER_SCANNETPP_AP['stage1']:.1f} AP and Stage 1 + 2 + 3 "
        f"{PAPER_SCANNETPP_AP['stage3']:.1f} AP (arXiv 2511.00785, ablation); those numbers come from other data "
        "and full-size models and are not comparable with this table.",
    ]
    return "\n".join(lines) + "\n"


def write_ablation_markdown(path: str | Path, rows: Mapping[str, RowResult], *, gt_classes: str = "synthetic",
                            num_scenes: int | None = None, titles: Mapping[str, str] | None = None,
                            notes: Sequence[str] = ()) -> None:
    """Write :func:`ablation_markdown` atomically."""
    write_text(path, ablation_markdown(rows, gt_classes=gt_classes, num_scenes=num_scenes, titles=titles,
                                       notes=notes))
