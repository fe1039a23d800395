"""Fixtures of the report tests: a tiny pipeline output tree written with the stages' own writers (posed RGB-D
scenes with a labelled reference cloud, keyframe / track / pseudo-label HDF5s, overlay PNGs, a tiny random
Stage 3 model, eval / training / tracking / sweep metrics). The metric values are made up for rendering; they
are fixture data, not results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcseg.report import ReportInputs

TINY_MODEL = dict(backend="torch", voxel_size=0.05, planes=(8, 8, 8, 8, 8, 8, 8, 8), hidden_dim=16, num_queries=6,
                  num_heads=2, ffn_dim=32)
SCENES = {"scene_a": "train", "scene_b": "train", "scene_c": "val"}
EVAL = {"lift_only": (0.21, 0.38, 0.52), "stage1": (0.12, 0.25, 0.41), "stage2": (0.19, 0.35, 0.50),
        "stage3": (0.24, 0.42, 0.57)}
DIAGNOSTICS = {"ceiling": (0.5, 0.9, 0.93), "perfect_identity": (0.1, 0.3, 0.4), "no_policy": (0.0, 0.01, 0.05)}


def room_cloud(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A floor (void) with three boxes on it (instances 1..3): coord, color, instance."""
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.random((500, 2)) * [3.0, 2.0], np.zeros(500)]
    parts, inst = [floor], [np.zeros(500, np.int64)]
    for k, (x, y) in enumerate([(0.5, 0.5), (1.5, 1.2), (2.4, 0.4)]):
        box = rng.random((150, 3)) * [0.4, 0.4, 0.5] + [x, y, 0.0]
        parts.append(box)
        inst.append(np.full(150, k + 1))
    coord = np.concatenate(parts).astype(np.float32)
    instance = np.concatenate(inst).astype(np.int32)
    color = np.where(instance[:, None] > 0, [180, 60, 40], [120, 120, 120]).astype(np.uint8)
    return coord, color, instance


def write_scene(folder: Path, seed: int) -> None:
    """One 8x6 frame in the posed RGB-D layout (enough for the reader) plus a labelled reference.ply."""
    from gcseg.io.ply import write_ply

    for d in ("color", "depth", "pose", "intrinsic"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 8, 3), 100, np.uint8)).save(folder / "color" / "0.png")
    Image.fromarray(np.full((6, 8), 1500, np.uint16)).save(folder / "depth" / "0.png")
    np.savetxt(folder / "pose" / "0.txt", np.eye(4))
    k = np.eye(4)
    k[0, 0] = k[1, 1] = 6.0
    k[0, 2], k[1, 2] = 3.5, 2.5
    np.savetxt(folder / "intrinsic" / "intrinsic_depth.txt", k)
    coord, color, instance = room_cloud(seed)
    write_ply(folder / "reference.ply", coord, color, instance=instance, label=np.minimum(instance, 1))


def write_metrics(m: Path) -> None:
    from gcseg.sweep import SweepPoint, write_report

    m.mkdir(parents=True, exist_ok=True)
    diagnostics = {"note": "Diagnostics, not methods (fixture).",
                   **{r: {"AP": a, "AP50": b, "AP25": c, "masks_per_scene": 5.0, "scenes": 1, "source": f"{r} source"}
                      for r, (a, b, c) in DIAGNOSTICS.items()},
                   "coverage": {"gt_instances": 40, "before_containment": 0.8, "after_containment": 0.55, "scenes": 1,
                                "source": "coverage source"}}
    (m / "eval.json").write_text(json.dumps({**{r: {"AP": a, "AP50": b, "AP25": c, "masks_per_scene": 4.0}
                                                for r, (a, b, c) in EVAL.items()}, "diagnostics": diagnostics}))
    (m / "eval" / "pr").mkdir(parents=True)
    (m / "eval" / "ablation.md").write_text("| Method | AP |\n|---|---:|\n| Stage 1 | 12.0 |\n\nClass-agnostic AP "
                                            "(fixture).\n\n## Diagnostics (use GT; not methods)\n\n| Row | AP |\n"
                                            "|---|---:|\n| Ceiling | 50.0 |\n\n* Ceiling: diagnostic note.\n")
    for i, row in enumerate(EVAL):
        recall = np.linspace(0, 0.6 + 0.1 * i, 8)
        lines = ["recall,precision"] + [f"{r:.6f},{1 - 0.5 * r:.6f}" for r in recall]
        (m / "eval" / "pr" / f"{row}.csv").write_text("\n".join(lines) + "\n")
    for s, stage in enumerate(("stage1", "stage2", "stage3")):
        d = m / f"{stage}_train" / "plots" / "metrics" / "train"
        d.mkdir(parents=True)
        (d / "loss.tsv").write_text("step\tloss\n" + "".join(f"{e}\t{20 - 3 * s - e:.3f}\n" for e in range(4)))
    (m / "sam2_track.json").write_text(json.dumps({
        "backend": "reprojection", "scenes": 3, "track_stats": {"objects_created": 9, "mean_track_length_frames": 7.5},
        "consistency": {"gain_over_stage1": 0.2},
        "per_scene": {sid: {"track_stats": {"objects_created": 3}} for sid in SCENES}}))
    (m / "eval" / "gt_free.json").write_text(json.dumps({
        "scenes": 1, "scenes_with_gt": 1, "min_points": 100, "per_scene": {},
        "rows": {r: {"masks_per_scene": 4.0, "instances_per_scene": 3.0, "labelled_fraction": 0.5,
                     **({"vote_share": 0.8} if r == "lift_only" else {})} for r in EVAL},
        "agreement": {"lift_only": {"stage1": 0.3, "stage2": 0.4, "stage3": 0.5}, "stage1": {"stage2": 0.6, "stage3": 0.5},
                      "stage2": {"stage3": 0.9}}}))
    (m / "eval" / "by_size.json").write_text(json.dumps({
        "bins": ["100-300", "300-1000", "1000-3000", "3000+"], "objects": [2, 1, 0, 1], "iou": 0.5,
        "rows": {r: {"found": [0.5, 1.0, None, 1.0], "mean_best_iou": [0.4, 0.7, None, 0.9],
                     "merged": [0.5, 0.0, None, 0.0], "partial": [0.0, 0.0, None, 0.0]} for r in EVAL},
        "diagnostic_rows": {"ceiling": {"found": [1.0, 1.0, None, 1.0], "mean_best_iou": [0.9, 0.9, None, 0.9],
                                        "merged": [0.0, 0.0, None, 0.0], "partial": [0.0, 0.0, None, 0.0]}},
        "view_rows": {"bins": ["100-300", "300-1000", "1000-3000", "3000+"], "pairs": [6, 3, 0, 2],
                      "objects": [2, 1, 0, 1],
                      "rows": {"proposals": {"title": "Some proposal matches the object (before the containment filter)",
                                             "found": [0.75, 1.0, None, 1.0]},
                               "kept": {"found": [0.5, 1.0, None, 1.0]}}}}))
    (m / "full_scene_pseudolabel.json").write_text(json.dumps({"scenes": 2, "instances_per_scene": 3.5}))
    (m / "sam_keyframes.json").write_text(json.dumps({"keyframes": 6, "masks_per_keyframe": {"proposed": 5.0}}))
    points = [SweepPoint(v, f"tau_iou-{v}", "success", {r: {"AP": a + v / 10, "AP50": b, "AP25": c}
                                                         for r, (a, b, c) in EVAL.items()}) for v in (0.5, 0.7, 0.9)]
    write_report(m / "sweeps" / "tau_iou", "tau_iou", points)
    from gcseg.study import summarize

    seeds = [SweepPoint(s, f"seed-{s}", "success", {**{r: {"AP": a + s / 100, "AP50": b, "AP25": c}
                                                       for r, (a, b, c) in EVAL.items()},
                                                    "own_lift_only": {"AP": 0.2, "AP50": 0.4, "AP25": 0.5},
                                                    "own_stage2": {"AP": 0.21, "AP50": 0.4, "AP25": 0.5},
                                                    "own_stage3": {"AP": 0.19 + s / 50, "AP50": 0.4, "AP25": 0.5}})
             for s in (0, 1, 2)]
    (m / "study").mkdir()
    (m / "study" / "seeds.json").write_text(json.dumps(summarize(seeds)))


def write_stage_outputs(root: Path, coord_of: dict[str, np.ndarray], color_of: dict[str, np.ndarray]) -> None:
    from gcseg.io.samples import write_point_samples

    for i, (sid, split) in enumerate(SCENES.items()):
        coord, color = coord_of[sid], color_of[sid]
        n = len(coord)
        # Stage 1: two keyframes (boxes 1+2, boxes 2+3), each numbering its two objects 0 and 1
        halves = [coord[:, 0] < 2.0, coord[:, 0] >= 1.0]
        kf = {}
        for j, sel in enumerate(halves):
            ids = np.where(coord[sel, 2] > 0, (coord[sel, 0] > 1.0 + j).astype(np.int32), -1)
            kf[f"frame_{j:06d}"] = {"coord": coord[sel], "color": color[sel], "instance": ids}
        write_point_samples(root / "keyframes" / f"{sid}.h5", kf, schema="gcseg.sam_keyframes", scene_id=sid)
        tracked = np.where(coord[:, 2] > 0, np.floor(coord[:, 0]).astype(np.int32) + 1, -1)
        write_point_samples(root / "tracks" / f"{sid}.h5", {"scene": {"coord": coord, "color": color,
                                                                      "instance": tracked}},
                            schema="gcseg.sam2_track", scene_id=sid)
        if split == "train":  # as in the default params: Stage 3 pseudo-labels exist for train scenes only
            pseudo = np.where(coord[:, 2] > 0.05, np.floor(coord[:, 1] * 2).astype(np.int32), -1)
            write_point_samples(root / "pseudolabel" / f"{sid}.h5",
                                {"scene": {"coord": coord, "color": color, "instance": pseudo,
                                           "score": np.full(int(pseudo.max()) + 1, 0.9, np.float32)}},
                                schema="gcseg.full_scene_pseudolabel", scene_id=sid)
        (root / "overlays").mkdir(exist_ok=True)
        Image.fromarray(np.full((12, 32, 3), 60 + 40 * i, np.uint8)).save(root / "overlays" / f"{sid}.png")
        assert n > 0


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A full tiny pipeline output tree (every artifact the report reads)."""
    import torch

    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint

    root = tmp_path_factory.mktemp("report_project")
    coords, colors = {}, {}
    for i, sid in enumerate(SCENES):
        write_scene(root / "scenes" / sid, i)
        coords[sid], colors[sid], _ = room_cloud(i)
    (root / "scenes" / "splits.json").write_text(json.dumps(
        {"train": [s for s, v in SCENES.items() if v == "train"], "val": [s for s, v in SCENES.items() if v == "val"]}))
    write_stage_outputs(root, coords, colors)
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY_MODEL)
    (root / "models" / "stage3").mkdir(parents=True)
    save_checkpoint(root / "models" / "stage3" / "model.pt", build_model(cfg), cfg, epoch=0)
    write_metrics(root / "metrics")
    (root / "params.yaml").write_text("# fixture params\nseed: 0\ntau_iou: 0.7\ndata:\n  source: posed_rgbd\n"
                                      "  root: scenes\nreport:\n  num_scenes: 2\n  max_points_per_view: 300\n"
                                      "  split: val\neval:\n  matrix_nms: linear\n")
    return root


def inputs_for(root: Path, **overrides) -> ReportInputs:
    base = dict(scenes=root / "scenes", source="posed_rgbd", keyframes=root / "keyframes", overlays=root / "overlays",
                tracks=root / "tracks", pseudolabels=root / "pseudolabel", models=root / "models",
                metrics_dir=root / "metrics", params_file=root / "params.yaml", num_scenes=2, max_points_per_view=300,
                split="val")
    base.update(overrides)
    return ReportInputs(**base)


@pytest.fixture(scope="session")
def make_inputs():
    """inputs_for(root, **overrides) as a fixture (test modules cannot import conftest under importlib mode)."""
    return inputs_for


@pytest.fixture(scope="session")
def built(project, tmp_path_factory) -> tuple[Path, Path]:
    """The report of `project` built once: (html path, png folder)."""
    from gcseg.report import build_report

    out = tmp_path_factory.mktemp("report_out")
    build_report(inputs_for(project), out / "report.html", out / "png")
    return out / "report.html", out / "png"
