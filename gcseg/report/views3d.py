"""Per-scene label layers for the 3D views: GT, Stage 1 (the scene's per-keyframe partial clouds merged),
Stage 2 tracked labels, Stage 3 pseudo-labels and the final (Stage 3) model's prediction, each subsampled
deterministically and coloured with gcseg.colors' fixed palette.

Stage 1 ids are independent per keyframe, so every (keyframe, id) pair gets its own colour: the same object
changes colour between keyframes there, which is exactly the inconsistency Stage 2's tracking removes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.colors import instance_palette
from gcseg.errors import ArtifactError, GcsegError
from gcseg.models.config import MatrixNmsSetting
from gcseg.report.inputs import ReportInputs
from gcseg.upright import scene_up, to_upright, upright_rotation

LAYERS: tuple[str, ...] = ("gt", "stage1", "stage2", "stage3", "prediction")
LAYER_TITLES: dict[str, str] = {"gt": "Ground truth", "stage1": "Stage 1: keyframe labels",
                                "stage2": "Stage 2: tracked labels", "stage3": "Stage 3: pseudo-labels",
                                "prediction": "Prediction (Stage 3 model)"}
VOID_OPACITY = 0.15  # unlabelled points (walls, floor, ...) drawn faint so the objects behind them show


@dataclass(frozen=True)
class Layer:
    """Points of one view: coord float32 (N, 3), ids int64 (N,) with <= 0 = unlabelled, and a one-line note.
    With `rgb` (uint8 (N, 3)) the points show their own colours instead of instance colours (the scan itself,
    where it has no GT); `title` replaces the view's title."""

    coord: np.ndarray
    ids: np.ndarray
    note: str
    rgb: np.ndarray | None = None
    title: str | None = None


@dataclass(frozen=True)
class SceneViews:
    """One scene's layers (a Layer, or the GcsegError saying why that layer is absent)."""

    scene_id: str
    split: str
    layers: dict[str, Layer | GcsegError]


def scene_seed(scene_id: str) -> int:
    """Fixed subsampling seed per scene (the same points in every run and in every layer on the same cloud)."""
    return zlib.crc32(scene_id.encode())


def subsample(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted indices of at most k of n points, the same for the same (n, k, seed)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _dense(ids: np.ndarray, void: np.ndarray) -> np.ndarray:
    """ids with void entries -> 0 and the rest shifted to >= 1 keeping their order (colour = f(id))."""
    out = np.asarray(ids, np.int64) + 1
    out[void] = 0
    return out


def count_instances(ids: np.ndarray) -> int:
    return int(np.unique(ids[ids > 0]).size)


def split_of(scene_id: str, inputs: ReportInputs) -> str:
    """"train" / "val" by the data root's split file; "unsplit" when it has none."""
    from gcseg.readers import list_scenes

    val = set(list_scenes(inputs.source, inputs.scenes, "val"))
    train = set(list_scenes(inputs.source, inputs.scenes, "train"))
    if scene_id in val and scene_id not in train:
        return "val"
    if scene_id in train and scene_id not in val:
        return "train"
    return "unsplit"


def choose_scenes(inputs: ReportInputs) -> list[str]:
    """inputs.scene_ids if given, else the num_scenes scenes with the most label artifacts, preferring
    inputs.split, then by id (deterministic)."""
    from gcseg.readers import list_scenes

    if inputs.scene_ids is not None:
        return list(inputs.scene_ids)
    ids = sorted(list_scenes(inputs.source, inputs.scenes, "all"))
    preferred = set(list_scenes(inputs.source, inputs.scenes, inputs.split))

    def available(sid: str) -> int:
        return sum((folder / f"{sid}.h5").is_file()
                   for folder in (inputs.keyframes, inputs.tracks, inputs.pseudolabels))

    return sorted(ids, key=lambda s: (-available(s), s not in preferred, s))[: max(inputs.num_scenes, 0)]


def _samples(path: Path, schema: str, stage: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    from gcseg.io.samples import read_point_samples

    if not path.is_file():
        raise ArtifactError("not found", path=path,
                            fix=f"run `dvc repro {stage}` (does its `split` cover this scene?)")
    return list(read_point_samples(path, (schema,)))


def stage1_layer(path: Path, max_points_per_keyframe: int | None = None, seed: int = 0) -> Layer:
    """The scene's keyframe partial clouds merged; each (keyframe, id) pair is its own instance. With
    `max_points_per_keyframe`, each keyframe is subsampled after numbering (bounded memory on long real scans)."""
    samples = _samples(path, "gcseg.sam_keyframes", "sam_keyframes")
    if not samples:
        raise ArtifactError("no keyframe samples", path=path, fix="rerun `dvc repro sam_keyframes`")
    coords, ids, offset = [], [], 0
    for i, (_, s) in enumerate(samples):
        inst = np.asarray(s["instance"], np.int64)
        uniq, inv = np.unique(inst, return_inverse=True)
        local = np.where(inst >= 0, inv.reshape(-1) - int((uniq < 0).sum()) + 1 + offset, 0)
        offset += int((uniq >= 0).sum())
        keep = subsample(len(inst), max_points_per_keyframe or len(inst), seed + i)
        coords.append(np.asarray(s["coord"], np.float32)[keep])
        ids.append(local[keep])
    return Layer(np.concatenate(coords), np.concatenate(ids).astype(np.int64),
                 f"{len(samples)} keyframes, {offset} keyframe-instances (ids independent per keyframe)")


def full_cloud_layer(path: Path, schema: str, stage: str, what: str) -> Layer:
    """A one-sample full-scene artifact (sam2_track, full_scene_pseudolabel): -1 = unlabelled."""
    samples = _samples(path, schema, stage)
    if not samples:
        raise ArtifactError("no samples in the file", path=path, fix=f"rerun `dvc repro {stage}`")
    s = dict(samples)["scene"] if any(n == "scene" for n, _ in samples) else samples[0][1]
    inst = np.asarray(s["instance"], np.int64)
    ids = _dense(inst, inst < 0)
    return Layer(np.asarray(s["coord"], np.float32), ids, f"{count_instances(ids)} {what}")


def prediction_ids(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per point the 1-based rank of the highest-scoring mask covering it (0 = none)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    ids = np.zeros(masks.shape[1], np.int64)
    for r in range(len(order) - 1, -1, -1):  # best mask last, so it wins overlaps
        ids[masks[order[r]]] = r + 1
    return ids


def load_scene_views(inputs: ReportInputs, scene_id: str, predictor: Callable[[Any, str], np.ndarray] | None,
                     predictor_error: GcsegError | None) -> SceneViews:
    """Every layer of one scene; an absent or unreadable artifact becomes that layer's GcsegError."""
    from gcseg.readers import open_scene

    layers: dict[str, Layer | GcsegError] = {}
    cloud = None
    rotation = np.eye(3)
    try:
        scene = open_scene(inputs.source, inputs.scenes, scene_id)
        rotation = upright_rotation(scene_up(scene))  # y-up captures are shown with their floor down
        cloud = scene.reference()
        if cloud is None:
            raise ArtifactError("scene has no reference cloud", path=inputs.scenes / scene_id,
                                fix="use a source with a reference cloud or mesh")
        if cloud.instance is None and cloud.color is not None:  # a scan without GT: show the scan itself
            layers["gt"] = Layer(np.asarray(cloud.coord, np.float32), np.zeros(len(cloud), np.int64),
                                 f"{len(cloud)} points, no GT", rgb=np.asarray(cloud.color, np.uint8),
                                 title="The scan (no GT): its colours")
        elif cloud.instance is None:
            raise ArtifactError("reference cloud has no GT instances", path=inputs.scenes / scene_id,
                                fix="GT is only shown for labelled scans")
        else:
            gt = np.asarray(cloud.instance, np.int64)
            gt = np.where(gt > 0, gt, 0)
            layers["gt"] = Layer(np.asarray(cloud.coord, np.float32), gt, f"{count_instances(gt)} GT instances")
    except GcsegError as exc:
        layers["gt"] = exc
    loaders: dict[str, Callable[[], Layer]] = {
        "stage1": lambda: stage1_layer(inputs.keyframes / f"{scene_id}.h5", inputs.max_points_per_view,
                                       scene_seed(scene_id)),
        "stage2": lambda: full_cloud_layer(inputs.tracks / f"{scene_id}.h5", "gcseg.sam2_track", "sam2_track",
                                           "tracked instances"),
        "stage3": lambda: full_cloud_layer(inputs.pseudolabels / f"{scene_id}.h5", "gcseg.full_scene_pseudolabel",
                                           "full_scene_pseudolabel", "pseudo-label instances"),
    }
    for name, load in loaders.items():
        try:
            layers[name] = load()
        except GcsegError as exc:
            layers[name] = exc
    if predictor is None or cloud is None:
        layers["prediction"] = predictor_error or ArtifactError(
            "no reference cloud to predict on", path=inputs.scenes / scene_id, fix="see the GT view's note")
    else:
        try:
            ids = predictor(cloud, scene_id)
            layers["prediction"] = Layer(np.asarray(cloud.coord, np.float32), ids,
                                         f"{count_instances(ids)} predicted instances")
        except GcsegError as exc:
            layers["prediction"] = exc
    if not np.array_equal(rotation, np.eye(3)):
        layers = {k: replace(v, coord=to_upright(v.coord, rotation)) if isinstance(v, Layer) else v
                  for k, v in layers.items()}
    return SceneViews(scene_id, split_of(scene_id, inputs), layers)


def model_predictor(model_path: Path, superpoints: Path | None = None, matrix_nms: MatrixNmsSetting = "linear"
                    ) -> Callable[[Any, str], np.ndarray]:
    """Loads the Stage 3 model once; returns (cloud, scene id) -> per-point ids (gcseg.models.inference
    .predict_points). With `superpoints` (the superpoints stage's folder) a superpoint model predicts on the
    scene's stored superpoints, as the eval stage does; without, they are computed. matrix_nms: as the eval
    stage's eval.matrix_nms (gcseg.models.config.with_matrix_nms)."""
    from gcseg.models.config import with_matrix_nms
    from gcseg.models.inference import predict_points
    from gcseg.models.mask_model import load_model

    if not model_path.is_file():
        raise ArtifactError("not found", path=model_path, fix="run `dvc repro stage3_train`")
    model = with_matrix_nms(load_model(model_path)[0], matrix_nms)

    def predict(cloud: Any, scene_id: str) -> np.ndarray:
        color = cloud.color if cloud.color is not None else np.full((len(cloud), 3), 128, np.uint8)
        sp = None
        if superpoints is not None and model.cfg.mask_on == "superpoint":
            from gcseg.superpoints import REFERENCE, read_superpoints

            sp = read_superpoints(superpoints / f"{scene_id}.h5", REFERENCE, cloud.coord)
        masks, scores = predict_points(model, cloud.coord, color, superpoint=sp)
        return prediction_ids(masks, scores)

    return predict


def hex_colors(ids: np.ndarray) -> list[str]:
    """'#rrggbb' per id (gcseg.colors.instance_palette)."""
    rgb = instance_palette(ids)
    return ["#%02x%02x%02x" % tuple(int(c) for c in row) for row in rgb]


def view_points(layer: Layer, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = subsample(len(layer.ids), k, seed)
    return layer.coord[idx], layer.ids[idx]


def scatter3d_figure(layer: Layer, title: str, k: int, seed: int, bounds: np.ndarray | None = None
                     ) -> dict[str, Any]:
    """A plotly Scatter3d figure spec: unlabelled points faint grey, instances opaque in palette colours.
    `bounds` (2, 3) fixes the axis ranges so side-by-side views of one scene share one frame."""
    xyz, ids = view_points(layer, k, seed)
    xyz = np.round(xyz.astype(np.float64), 3)
    traces = []
    if layer.rgb is not None:  # the scan's own colours
        rgb = layer.rgb[subsample(len(layer.ids), k, seed)]
        traces.append({"type": "scatter3d", "mode": "markers", "name": "scan", "x": xyz[:, 0].tolist(),
                       "y": xyz[:, 1].tolist(), "z": xyz[:, 2].tolist(), "hoverinfo": "skip",
                       "marker": {"size": 2.2, "opacity": 1.0,
                                  "color": ["#%02x%02x%02x" % tuple(int(c) for c in row) for row in rgb]}})
    for name, sel, marker in (
            ("unlabelled", ids <= 0, {"size": 1.5, "color": "#9a9a9a", "opacity": VOID_OPACITY}),
            ("instances", ids > 0, {"size": 2.2, "opacity": 1.0})):
        if not sel.any() or layer.rgb is not None:
            continue
        if name == "instances":
            marker = {**marker, "color": hex_colors(ids[sel])}
        p = xyz[sel]
        traces.append({"type": "scatter3d", "mode": "markers", "name": name, "x": p[:, 0].tolist(),
                       "y": p[:, 1].tolist(), "z": p[:, 2].tolist(), "marker": marker, "hoverinfo": "skip"})
    axis = {"visible": False, "showbackground": False}
    scene: dict[str, Any] = {"xaxis": dict(axis), "yaxis": dict(axis), "zaxis": dict(axis), "aspectmode": "data",
                             "camera": {"eye": {"x": 1.15, "y": -1.3, "z": 1.0}, "up": {"x": 0, "y": 0, "z": 1}}}
    if bounds is not None:
        for i, ax in enumerate(("xaxis", "yaxis", "zaxis")):
            scene[ax]["range"] = [round(float(bounds[0, i]), 3), round(float(bounds[1, i]), 3)]
        # true proportions with the longest side 1, so one camera distance frames flat and tall scenes alike
        ext = np.maximum(bounds[1] - bounds[0], 1e-6)
        ext = ext / ext.max()
        scene["aspectmode"] = "manual"
        scene["aspectratio"] = {a: round(float(e), 4) for a, e in zip("xyz", ext, strict=True)}
        scene["camera"]["eye"] = {"x": 1.0, "y": -1.1, "z": 0.9}
    return {"data": traces,
            "layout": {"title": {"text": title, "font": {"size": 13}}, "showlegend": False, "height": 320,
                       "margin": {"l": 0, "r": 0, "t": 36, "b": 0}, "scene": scene, "template": None},
            "config": {"displayModeBar": False}}  # the mode bar would cover the title of these small views


def scene_bounds(views: SceneViews) -> np.ndarray | None:
    """(2, 3) min / max over every layer's points (one frame for all views of the scene)."""
    pts = [lay.coord for lay in views.layers.values() if isinstance(lay, Layer) and len(lay.coord)]
    if not pts:
        return None
    return np.stack([np.min([p.min(0) for p in pts], 0), np.max([p.max(0) for p in pts], 0)])
