"""The eval stage end to end on a tiny labelled dataset with tiny random checkpoints."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from stages._common import param_keys
from stages.eval import PARAMS_MODEL, Params, app

ROOT = Path(__file__).resolve().parents[2]


def _data():
    name = "gcseg_tests_eval_ablation_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "eval" / "ablation_data.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict[str, Path]:
    d = _data()
    base = tmp_path_factory.mktemp("evalstage")
    scenes = d.write_dataset(base / "scenes", ids=("scene_a", "scene_b", "scene_c"), val=("scene_b", "scene_c"))
    tracks = base / "tracks"
    for sid in ("scene_a", "scene_b", "scene_c"):
        d.write_tracks(tracks / f"{sid}.h5", sid, d.perfect_id_maps(2))
    models = base / "models"
    for i, row in enumerate(("stage1", "stage2", "stage3")):
        d.save_tiny_model(models / row / "model.pt", seed=i)
    return {"scenes": scenes, "tracks": tracks, "models": models}


def _params(tmp_path: Path, **eval_overrides) -> Path:
    ev = {"gt_classes": "synthetic", "min_region_size": 100, "use_scores": True, "split": "val"}
    ev.update(eval_overrides)
    p = {"seed": 0, "tau_iou": 0.7, "data": {"source": "synth", "root": "unused"}, "eval": ev, "other": {"x": 1}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def _run(params: Path, ds: dict[str, Path], out: Path, models: Path | None = None):
    return CliRunner().invoke(app, [
        "--params", str(params), "--scenes", str(ds["scenes"]), "--tracks", str(ds["tracks"]),
        "--models", str(models or ds["models"]), "--out", str(out / "eval.json"),
        "--table", str(out / "eval" / "ablation.md"), "--plots", str(out / "eval" / "pr")])


def test_params_keys():
    assert PARAMS_MODEL is Params
    assert param_keys(Params) == ("seed", "data", "eval")


def test_repository_params_yaml_validates():
    from stages._common import load_params

    p = load_params(ROOT / "params.yaml", Params)
    assert p.eval.split == "val" and p.eval.min_region_size == 100 and p.eval.gt_classes == "synthetic"


def test_writes_four_rows_table_and_pr_csvs(tmp_path, dataset):
    out = tmp_path / "metrics"
    r = _run(_params(tmp_path), dataset, out)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "eval.json").read_text())
    assert list(m) == ["diagnostics", "lift_only", "stage1", "stage2", "stage3"]  # sorted keys
    # these artifacts carry no label diagnostics; the perfect order of every ablation row is the eval stage's own
    assert set(m["diagnostics"]) == {"note", "perfect_ranking"}
    ranking = m["diagnostics"]["perfect_ranking"]
    assert list(ranking["rows"]) == ["lift_only", "stage1", "stage2", "stage3"] and "uses GT" in ranking["source"]
    for row, rk in ranking["rows"].items():
        assert rk["given"] == {k: m[row][k] for k in ("AP", "AP50", "AP25")}
        assert rk["AP50"] >= rk["given"]["AP50"]  # at IoU 0.5 no order beats each object's best mask first
    assert ranking["rows"]["lift_only"]["AP"] == 1.0
    assert m["lift_only"] == {"AP": 1.0, "AP50": 1.0, "AP25": 1.0, "masks_per_scene": 2.0}  # perfect tracks
    for row in ("stage1", "stage2", "stage3"):
        assert set(m[row]) == {"AP", "AP50", "AP25", "masks_per_scene"}
        for k in ("AP", "AP50", "AP25"):
            assert 0.0 <= m[row][k] <= 1.0
    table = (out / "eval" / "ablation.md").read_text()
    assert "| Stage 1 + 2 + 3 |" in table and "2 val scene(s)" in table
    assert "## What the confidences cost: the same masks in the perfect order" in table
    assert "| Stage 2 tracked labels, lifted (no 3D model) | 100.0 | 100.0 | 0.0 | 100.0 | 100.0 |" in table
    assert table.strip() in r.output  # printed to stdout
    for row in ("lift_only", "stage1", "stage2", "stage3"):
        lines = (out / "eval" / "pr" / f"{row}.csv").read_text().splitlines()
        assert lines[0] == "recall,precision" and len(lines) >= 2
    # deterministic bytes
    out2 = tmp_path / "again"
    assert _run(_params(tmp_path), dataset, out2).exit_code == 0
    assert (out2 / "eval.json").read_bytes() == (out / "eval.json").read_bytes()
    assert (out2 / "eval" / "pr" / "stage3.csv").read_bytes() == (out / "eval" / "pr" / "stage3.csv").read_bytes()


def test_missing_model_is_named(tmp_path, dataset):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(dataset["models"], models)
    (models / "stage2" / "model.pt").unlink()
    out = tmp_path / "metrics"
    r = _run(_params(tmp_path), dataset, out, models=models)
    assert r.exit_code == 2
    assert "stage2 model checkpoint is missing" in r.output and str(models / "stage2" / "model.pt") in r.output
    assert "stage2_train" in r.output
    assert not (out / "eval.json").exists()


def test_missing_val_tracks_is_named(tmp_path, dataset):
    import shutil

    tracks = tmp_path / "tracks"
    shutil.copytree(dataset["tracks"], tracks)
    (tracks / "scene_c.h5").unlink()
    r = _run(_params(tmp_path), {**dataset, "tracks": tracks}, tmp_path / "metrics")
    assert r.exit_code == 2
    assert "scene_c" in r.output and "sam2_track.split" in r.output


def test_stale_tracks_rejected(tmp_path, dataset):
    import shutil

    d = _data()
    tracks = tmp_path / "tracks"
    shutil.copytree(dataset["tracks"], tracks)
    labels = d.perfect_id_maps(1)[0].reshape(-1).astype(np.int32)[:-5]
    from gcseg.io.samples import write_point_samples

    coord, color = d.reference_points()
    write_point_samples(tracks / "scene_b.h5", {"scene": {"coord": coord[:-5], "color": color[:-5],
                                                          "instance": labels, "share": np.ones(len(labels)),
                                                          "votes": np.ones(len(labels), np.int32)}},
                        schema="gcseg.sam2_track", scene_id="scene_b",
                        extra={"id_maps": d.perfect_id_maps(1), "frames": np.zeros(1, np.int32)})
    r = _run(_params(tmp_path), {**dataset, "tracks": tracks}, tmp_path / "metrics")
    assert r.exit_code == 2 and "another reference cloud" in r.output


def test_old_or_shareless_track_artifacts_are_named(tmp_path, dataset):
    """A version-1 artifact (before vote shares were stored) is stale; a version-2 one without shares or with
    shares outside [0, 1] is corrupt: both stop eval with the file and the fix, writing nothing."""
    import shutil

    from gcseg.io.h5 import write_h5

    d = _data()
    coord, color = d.reference_points()
    labels = d.perfect_id_maps(1)[0].reshape(-1).astype(np.int32)
    cases = [
        (lambda p: write_h5(p, {"samples": {"scene": {"coord": coord, "color": color, "instance": labels}}},
                            schema="gcseg.sam2_track", version=1, attrs={"scene_id": "scene_b"}),
         "schema version 1"),
        (lambda p: d.write_tracks(p, "scene_b", d.perfect_id_maps(1), shares=np.full(len(labels), 2.0)),
         "vote shares outside [0, 1]"),
    ]
    for k, (write, message) in enumerate(cases):
        tracks = tmp_path / f"tracks{k}"
        shutil.copytree(dataset["tracks"], tracks)
        write(tracks / "scene_b.h5")
        out = tmp_path / f"metrics{k}"
        r = _run(_params(tmp_path), {**dataset, "tracks": tracks}, out)
        assert r.exit_code == 2 and message in r.output and "scene_b.h5" in r.output and "sam2_track" in r.output
        assert not (out / "eval.json").exists()


def _lifted(labels: np.ndarray, share: float) -> dict[str, np.ndarray]:
    return {"instance": labels.astype(np.int32), "share": np.where(labels >= 0, share, 0).astype(np.float32),
            "votes": np.where(labels >= 0, 5, 0).astype(np.int32)}


def test_diagnostics_block_table_and_sources(tmp_path, dataset):
    """sam2_track's diagnostics of each val scene are scored apart from the ablation rows: metrics/eval.json's
    "diagnostics" block and the Markdown's diagnostics / no-policy tables, every row naming its source."""
    import shutil

    d = _data()
    perfect = d.perfect_id_maps(1)[0].reshape(-1).astype(np.int32)
    perfect[perfect == 0] = -1
    merged = np.where(perfect == 7, 3, perfect)  # no policy: both objects under one id
    settings = {"proposer": "classical", "propagator": "reprojection", "keyframe_stride": 5, "tau_contain": 0.8,
                "min_area_px": 20, "coverage_min_area_px": 77, "coverage_iou": 0.5, "match_iou": 0.5,
                "height": d.H, "width": d.W, "keyframes_with_gt": 2}
    tracks = tmp_path / "tracks"
    shutil.copytree(dataset["tracks"], tracks)
    for sid, hits in (("scene_b", (4, 3, 2)), ("scene_c", (4, 4, 1))):
        diag = {"ceiling": _lifted(perfect, 1.0), "perfect_identity": _lifted(perfect, 0.8),
                "no_policy": _lifted(merged, 0.6),
                "coverage": dict(zip(("gt_instances", "hits_proposals", "hits_kept"), hits)), "settings": settings,
                # per view: a 150-point object on 3 keyframes, matched on 2 (1 kept); a 2000-point one on 1, matched
                "views": {"instance": np.array([3, 7]), "points": np.array([150, 2000]), "views": np.array([3, 1]),
                          "hits_proposals": np.array([2, 1]), "hits_kept": np.array([1, 1])}}
        d.write_tracks(tracks / f"{sid}.h5", sid, d.perfect_id_maps(2), diagnostics=diag)
    out = tmp_path / "metrics"
    r = _run(_params(tmp_path), {**dataset, "tracks": tracks}, out)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "eval.json").read_text())
    assert list(m) == ["diagnostics", "lift_only", "stage1", "stage2", "stage3"]  # diagnostics are not a row
    diag = m["diagnostics"]
    assert {k: diag["ceiling"][k] for k in ("AP", "AP50", "AP25", "scenes")} == {
        "AP": 1.0, "AP50": 1.0, "AP25": 1.0, "scenes": 2}
    assert diag["perfect_identity"]["AP50"] == 1.0 and diag["no_policy"]["AP50"] == 0.5
    assert diag["coverage"] == {"gt_instances": 8, "before_containment": 0.875, "after_containment": 0.375,
                                "scenes": 2, "source": diag["coverage"]["source"]}
    assert "uses GT" in diag["ceiling"]["source"] and "under 20 px" in diag["ceiling"]["source"]
    assert "classical proposals" in diag["perfect_identity"]["source"]
    assert "no GT" in diag["no_policy"]["source"] and "reprojection propagation" in diag["no_policy"]["source"]
    assert ">= 77 px" in diag["coverage"]["source"]
    table = (out / "eval" / "ablation.md").read_text()
    head, rest = table.split("## Diagnostics (use GT; not methods)")
    assert "| Stage 1 + 2 + 3 |" in head and "Ceiling" not in head
    diag_part, policy_part = rest.split("## Tracking without the policy")
    assert "| Ceiling: GT 2D masks on the keyframes, lifted | 100.0 | 100.0 | 100.0 | 2.0 | 2 |" in diag_part
    assert "87.5 % of 8 GT instances before containment, 37.5 % after" in diag_part
    assert "| Tracking without the policy, lifted |" in policy_part and "50.0" in policy_part
    assert not any(p.stem in ("ceiling", "no_policy") for p in (out / "eval" / "pr").iterdir())  # not in dvc plots
    # the label diagnostics by size: the ceiling finds every object, no-policy misses one of the two merged
    sizes = json.loads((out / "eval" / "by_size.json").read_text())
    dr = sizes["diagnostic_rows"]
    assert set(dr) == {"ceiling", "perfect_identity", "no_policy"} and set(sizes["rows"]) == set(m) - {"diagnostics"}
    assert {f for f in dr["ceiling"]["found"] if f is not None} == {1.0}
    assert any((g or 0) > 0 for g in dr["no_policy"]["merged"])
    assert "### Label diagnostics by size (use GT)" in table
    # per keyframe view, pooled over the two scenes: 6 views of the small object (4 matched, 2 kept), 2 of the large
    vr = sizes["view_rows"]
    assert vr["pairs"] == [6, 0, 2, 0] and vr["objects"] == [2, 0, 2, 0]
    assert vr["rows"]["proposals"]["found"] == [4 / 6, None, 1.0, None]
    assert vr["rows"]["kept"]["found"] == [2 / 6, None, 1.0, None]
    assert "### Proposals per keyframe view by size (use GT)" in table and "| 67 | n/a | 100 | n/a |" in table
    assert ">= 20 px" in table


def test_bad_gt_classes_is_a_config_error(tmp_path, dataset):
    r = _run(_params(tmp_path, gt_classes="coco"), dataset, tmp_path / "metrics")
    assert r.exit_code == 2 and "eval.gt_classes" in r.output


def _without_gt(scenes: Path, dest: Path, ids: tuple[str, ...]) -> Path:
    """A copy of the dataset whose scenes `ids` have a reference cloud without any GT (your own scans)."""
    import shutil

    from gcseg.io.ply import read_ply, write_ply

    shutil.copytree(scenes, dest)
    for sid in ids:
        ply = read_ply(dest / sid / "reference.ply")
        write_ply(dest / sid / "reference.ply", ply["coord"], ply["color"])
    return dest


def test_scans_without_gt_get_gt_free_statistics_not_an_error(tmp_path, dataset):
    """Issue 21: unlabelled val scenes do not stop the pipeline; AP is null, every stage's GT-free statistics
    are written (the perfect tracks: 2 instances on the 576 object points of 768, every view agreeing)."""
    scenes = _without_gt(dataset["scenes"], tmp_path / "scenes", ("scene_a", "scene_b", "scene_c"))
    out = tmp_path / "metrics"
    r = _run(_params(tmp_path), {**dataset, "scenes": scenes}, out)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "eval.json").read_text())
    assert list(m) == ["lift_only", "stage1", "stage2", "stage3"]
    assert m["lift_only"] == {"AP": None, "AP50": None, "AP25": None, "masks_per_scene": 2.0}
    free = json.loads((out / "eval" / "gt_free.json").read_text())
    assert free["scenes"] == 2 and free["scenes_with_gt"] == 0 and free["min_points"] == 100
    lift = free["rows"]["lift_only"]
    assert lift == {"masks_per_scene": 2.0, "instances_per_scene": 2.0, "labelled_fraction": 0.75, "vote_share": 1.0}
    assert set(free["rows"]["stage3"]) == {"masks_per_scene", "instances_per_scene", "labelled_fraction"}
    assert set(free["agreement"]) == {"lift_only", "stage1", "stage2"}
    assert set(free["agreement"]["lift_only"]) == {"stage1", "stage2", "stage3"}
    assert set(free["per_scene"]) == {"scene_b", "scene_c"}
    table = (out / "eval" / "ablation.md").read_text()
    assert "AP is undefined" in table and "GT-free statistics (2 scene(s), 0 with GT" in table
    assert "| Stage 2 tracked labels, lifted (no 3D model) | 2.0 | 2.0 | 75.0 | 100.0 |" in table
    for row in m:  # the plots output exists, without a curve
        assert (out / "eval" / "pr" / f"{row}.csv").read_text() == "recall,precision\n"


def test_ap_on_the_scenes_with_gt_statistics_on_all(tmp_path, dataset):
    """A val split mixing labelled and unlabelled scans: AP over the labelled one, GT-free over both."""
    scenes = _without_gt(dataset["scenes"], tmp_path / "scenes", ("scene_c",))
    out = tmp_path / "metrics"
    r = _run(_params(tmp_path), {**dataset, "scenes": scenes}, out)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "eval.json").read_text())
    assert m["lift_only"] == {"AP": 1.0, "AP50": 1.0, "AP25": 1.0, "masks_per_scene": 2.0}
    free = json.loads((out / "eval" / "gt_free.json").read_text())
    assert free["scenes"] == 2 and free["scenes_with_gt"] == 1
    assert "1 val scene(s)" in (out / "eval" / "ablation.md").read_text()


def test_own_labels_scores_the_train_scenes(tmp_path, dataset):
    """eval.own_labels: the train scene's tracked labels and the Stage 1 + 2 / 1 + 2 + 3 models against its GT."""
    out = tmp_path / "metrics"
    r = _run(_params(tmp_path, own_labels=True), dataset, out)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "eval.json").read_text())
    assert list(m["own_labels"]) == ["lift_only", "stage2", "stage3"]
    assert m["own_labels"]["lift_only"]["AP"] == 1.0  # perfect tracks of the train scene
    for row in ("stage2", "stage3"):
        assert 0.0 <= m["own_labels"][row]["AP"] <= 1.0
    table = (out / "eval" / "ablation.md").read_text()
    assert "own training labels (train scenes, uses GT)" in table and "1 train scene(s)" in table
    # the val rows do not change with it
    out2 = tmp_path / "off"
    assert _run(_params(tmp_path), dataset, out2).exit_code == 0
    m2 = json.loads((out2 / "eval.json").read_text())
    assert "own_labels" not in m2 and all(m2[k] == m[k] for k in ("lift_only", "stage1", "stage2", "stage3"))


def test_own_labels_without_train_tracks_is_named(tmp_path, dataset):
    import shutil

    tracks = tmp_path / "tracks"
    shutil.copytree(dataset["tracks"], tracks)
    (tracks / "scene_a.h5").unlink()
    r = _run(_params(tmp_path, own_labels=True), {**dataset, "tracks": tracks}, tmp_path / "metrics")
    assert r.exit_code != 0 and "scene_a" in r.output and "sam2_track.split: all" in r.output
    assert not (tmp_path / "metrics" / "eval.json").exists()
