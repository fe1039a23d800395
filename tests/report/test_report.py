"""gcseg report on a tiny generated pipeline output: everything present, artifacts missing, deterministic bytes,
the scene choice, Stage 1 colouring, the stage command."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import yaml
from PIL import Image

from gcseg.report import build_report
from gcseg.report.views3d import LAYERS, prediction_ids, stage1_layer, subsample


def figures_of(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="gcseg-figures">(.*?)</script>', html, re.S)
    assert m, "figure JSON block missing"
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_report_with_every_input(built):
    import plotly.graph_objects as go
    import plotly.offline

    html_path, png_dir = built
    html = html_path.read_text()
    assert 'class="missing"' not in html, re.findall(r'data-missing="([^"]+)"', html)
    # one embedded plotly bundle, no network references
    bundle = plotly.offline.get_plotlyjs()
    assert html.count(bundle) == 1
    ours = html.replace(bundle, "")
    assert "http://" not in ours and "https://" not in ours and "<script src=" not in ours
    # sections in order: table first, then curves, then 3D views
    pos = [html.index(f'<section id="{s}">') for s in ("ablation", "gtfree", "curves", "views", "stats")]
    assert pos == sorted(pos)
    # GT-free statistics: per row and the agreement between stages
    assert re.search(r'<tr data-row="lift_only">.*?50\.0</td><td>80\.0</td>', html)
    assert "Agreement between stages (%)" in html and "<td>90.0</td>" in html
    # objects found by size: per row and size bin, % found (mean best IoU), n/a for an empty bin
    assert "Objects found by size (uses GT)" in html and "<th>3000+ points (1)</th>" in html
    assert "Missed objects:" in html and "<td>50 / 0</td>" in html  # why the misses: merged / partial
    assert "Label diagnostics by size (use GT)" in html and "Ceiling: GT 2D masks on the keyframes, lifted" in html
    assert "Proposals per keyframe view by size (use GT)" in html and "100-300 points (6 views)" in html
    assert re.search(r'<tr data-row="stage3">.*?<td>50 \(0\.40\)</td><td>100 \(0\.70\)</td><td>n/a</td>', html)
    # the ablation table: every row with its AP in %, the best AP in bold
    for row, ap in (("lift_only", "21.0"), ("stage1", "12.0"), ("stage2", "19.0"), ("stage3", "<b>24.0</b>")):
        assert re.search(rf'<tr data-row="{row}">.*?{re.escape(ap)}', html), row
    assert "tau_iou" in html and "# fixture params" in html  # the run's params
    # make study's mean +- spread per row, the per-seed values in a tooltip, the ordering count
    study = html[html.index('<table class="ablation study">'):]
    assert re.search(r'<tr data-row="stage1"><th scope="row">Stage 1</th><td title="seed 0: 12.0, seed 1: 13.0, seed 2: 14.0">'
                     r'13\.0 &plusmn; 1\.0</td>', study)
    assert "held for 3 of 3 seed(s)" in study
    # the train-scene rows (eval.own_labels) with their titles and their own check
    assert '<tr data-row="own_stage3"><th scope="row">Train scenes: Stage 1 + 2 + 3</th>' in study
    assert "the tracked labels it trained on (AP) for 2 of 3 seed(s)" in study
    # the diagnostics block is not an ablation row: its own table, each row with its source, and the coverage
    assert '<tr data-row="diagnostics">' not in html
    diag = html[html.index('<table class="ablation diagnostics">'):]
    for row, ap in (("ceiling", "50.0"), ("perfect_identity", "10.0"), ("no_policy", "0.0")):
        assert re.search(rf'<tr data-row="{row}">.*?<td>{ap}</td>.*?{row} source', diag), row
    assert "80.0 % of 40 GT instances before containment, 55.0 % after" in diag
    assert "diagnostic note" not in html  # the Markdown's diagnostics part is not repeated as a note
    figs = figures_of(html)
    views = [k for k in figs if k.startswith("fig-scene")]
    assert {"fig-curves-pr", "fig-curves-train", "fig-sweep-00"} <= set(figs)
    assert len(views) == 2 * len(LAYERS)
    for key, spec in figs.items():
        go.Figure(data=spec["data"], layout=spec["layout"])  # plotly validates every trace and layout key
        if key in views:
            assert sum(len(t["x"]) for t in spec["data"]) <= 300
            assert all(t["type"] == "scatter3d" for t in spec["data"])
    assert ours.count('<img class="overlay"') == 2  # keyframe overlays of the two scenes shown
    assert "scene_a" in html and "(train split;" in html
    names = sorted(p.name for p in png_dir.iterdir())
    assert names == ["ablation.png", "by_size.png", "pr_curves.png", "scene_scene_a_labels.png",
                     "scene_scene_b_labels.png", "train_loss.png"]
    with Image.open(png_dir / "scene_scene_a_labels.png") as im:
        assert im.width > 4 * im.height  # five panels side by side


def test_report_bytes_are_deterministic(project, make_inputs, built, tmp_path):
    html_path, png_dir = built
    build_report(make_inputs(project), tmp_path / "again.html", tmp_path / "png")
    assert (tmp_path / "again.html").read_bytes() == html_path.read_bytes()
    for p in png_dir.iterdir():
        assert (tmp_path / "png" / p.name).read_bytes() == p.read_bytes(), p.name


def test_report_with_missing_artifacts(project, make_inputs, tmp_path):
    """No metrics, no models, no keyframes: every section says what is missing; nothing crashes."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "png").mkdir()
    (tmp_path / "png" / "stale.png").write_bytes(b"old")  # the PNG folder is replaced as a whole
    inputs = make_inputs(project, metrics_dir=empty, models=empty, keyframes=empty, overlays=empty,
                         params_file=None, scene_ids=("scene_c",))
    build_report(inputs, tmp_path / "r.html", tmp_path / "png")
    html = (tmp_path / "r.html").read_text()
    missing = set(re.findall(r'data-missing="([^"]+)"', html))
    assert {"ablation (metrics/eval.json)", "precision-recall curves", "training curves", "threshold sweeps",
            "seed study", "Stage 1: keyframe labels", "Stage 3: pseudo-labels", "Prediction (Stage 3 model)",
            "keyframe overlays"} <= missing
    assert "dvc repro eval" in html and "dvc repro stage3_train" in html
    figs = figures_of(html)
    assert sorted(figs) == ["fig-scene00-0-gt", "fig-scene00-2-stage2"]  # the layers that exist
    assert [p.name for p in (tmp_path / "png").iterdir()] == ["scene_scene_c_labels.png"]


def test_report_with_no_scenes(project, make_inputs, tmp_path):
    build_report(make_inputs(project, num_scenes=0), tmp_path / "r.html", tmp_path / "png")
    html = (tmp_path / "r.html").read_text()
    assert "No scenes selected" in html
    assert not any(k.startswith("fig-scene") for k in figures_of(html))


def test_unreadable_artifact_is_a_notice(project, make_inputs, tmp_path):
    """A foreign HDF5 in place of the tracks is reported in its view, not raised."""
    bad = tmp_path / "tracks"
    shutil.copytree(project / "keyframes", bad)  # sam_keyframes files: wrong schema for sam2_track
    build_report(make_inputs(project, tracks=bad, scene_ids=("scene_a",)), tmp_path / "r.html", tmp_path / "png")
    html = (tmp_path / "r.html").read_text()
    assert 'data-missing="Stage 2: tracked labels"' in html and "gcseg.sam2_track" in html


def test_scene_choice_prefers_complete_scenes(project, make_inputs):
    from gcseg.report.views3d import choose_scenes, split_of

    inputs = make_inputs(project)
    # pseudo-labels exist for the train scenes only: they rank before the val scene despite split: val
    assert choose_scenes(inputs) == ["scene_a", "scene_b"]
    assert choose_scenes(make_inputs(project, num_scenes=3)) == ["scene_a", "scene_b", "scene_c"]
    assert choose_scenes(make_inputs(project, pseudolabels=project / "nowhere", num_scenes=1)) == ["scene_c"]
    assert choose_scenes(make_inputs(project, scene_ids=("scene_b",))) == ["scene_b"]
    assert [split_of(s, inputs) for s in ("scene_a", "scene_c")] == ["train", "val"]


def test_stage1_layer_colours_each_keyframe_instance(project):
    layer = stage1_layer(project / "keyframes" / "scene_a.h5")
    # two keyframes, each with ids {0, 1} (+ -1): four keyframe-instances, unlabelled points -> 0
    assert sorted(np.unique(layer.ids)) == [0, 1, 2, 3, 4]
    assert "2 keyframes, 4 keyframe-instances" in layer.note
    small = stage1_layer(project / "keyframes" / "scene_a.h5", 50, seed=1)  # bounded per keyframe, same numbering
    assert len(small.ids) == 100 and small.note == layer.note
    assert set(np.unique(small.ids)) <= set(np.unique(layer.ids))


def test_prediction_ids_highest_score_wins():
    masks = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], bool)
    ids = prediction_ids(masks, np.array([0.2, 0.9], np.float32))
    assert ids.tolist() == [2, 1, 1, 0]  # mask 1 (score 0.9) is rank 1 and wins the shared point


def test_subsample_is_deterministic_and_sorted():
    a, b = subsample(1000, 100, 7), subsample(1000, 100, 7)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100 and np.all(np.diff(a) > 0)
    assert np.array_equal(subsample(50, 100, 7), np.arange(50))


def test_stage_command(project, tmp_path):
    from typer.testing import CliRunner

    from stages.report import PARAMS_MODEL, app

    assert sorted(PARAMS_MODEL.model_fields) == ["data", "eval", "report"]
    args = ["--params", str(project / "params.yaml"), "--scenes", str(project / "scenes"),
            "--keyframes", str(project / "keyframes"), "--overlays", str(project / "overlays"),
            "--tracks", str(project / "tracks"), "--pseudolabels", str(project / "pseudolabel"),
            "--models", str(project / "models"), "--metrics-dir", str(project / "metrics"),
            "--out", str(tmp_path / "r" / "report.html"), "--png-dir", str(tmp_path / "r" / "png"),
            "--scene", "scene_c"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "png" / "scene_scene_c_labels.png").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {"source": "synth", "root": "x"}, "eval": {},
                                   "report": {"num_scenes": 2, "max_points_per_view": 4000, "split": "test"}}))
    res = CliRunner().invoke(app, [*args[:0], "--params", str(bad), "--scenes", str(project / "scenes")])
    assert res.exit_code == 2 and "report.split" in res.output


def test_repository_params_validate():
    from pathlib import Path

    from stages._common import load_params
    from stages.report import PARAMS_MODEL

    p = load_params(Path(__file__).resolve().parents[2] / "params.yaml", PARAMS_MODEL)
    assert p.report.num_scenes >= 1 and p.report.max_points_per_view >= 100


def test_report_of_an_unlabelled_y_up_scan(project, make_inputs, tmp_path):
    """Issue 21: a real capture without GT (world y up, as HoloLens): the first view shows the scan in its own
    colours, every view is turned floor-down, AP is not plotted, the GT-free statistics are shown."""
    from gcseg.io.ply import write_ply
    from gcseg.io.samples import write_point_samples

    root = tmp_path / "p"
    scene = root / "scenes" / "capture"
    shutil.copytree(project / "scenes" / "scene_a", scene)
    coord = np.random.default_rng(0).random((400, 3)).astype(np.float32) * [3.0, 2.5, 4.0]  # y = height
    color = np.full((400, 3), 90, np.uint8)
    write_ply(scene / "reference.ply", coord, color)  # no instance property: no GT
    pose = np.diag([1.0, -1.0, -1.0, 1.0])  # camera y (down in the image) = world -y
    np.savetxt(scene / "pose" / "0.txt", pose)
    labels = (coord[:, 0] > 1.5).astype(np.int32)
    write_point_samples(root / "tracks" / "capture.h5", {"scene": {"coord": coord, "color": color,
                                                                   "instance": labels}},
                        schema="gcseg.sam2_track", scene_id="capture")
    m = root / "metrics"
    shutil.copytree(project / "metrics", m)
    (m / "eval.json").write_text(json.dumps({r: {"AP": None, "AP50": None, "AP25": None, "masks_per_scene": 2.0}
                                             for r in ("lift_only", "stage1", "stage2", "stage3")}))
    for csv in (m / "eval" / "pr").glob("*.csv"):
        csv.write_text("recall,precision\n")
    inputs = make_inputs(project, scenes=root / "scenes", tracks=root / "tracks", metrics_dir=m,
                         scene_ids=("capture",))
    build_report(inputs, tmp_path / "r.html", tmp_path / "png")
    html = (tmp_path / "r.html").read_text()
    figs = figures_of(html)
    scan = figs["fig-scene00-0-gt"]
    assert scan["layout"]["title"]["text"] == "The scan (no GT): its colours"
    assert scan["data"][0]["marker"]["color"][0] == "#5a5a5a"  # the scan's own colour (90, 90, 90)
    # turned upright: the plotted z is the world's y (height), the plotted y is minus the world's z
    z = np.array(scan["data"][0]["z"])
    assert z.min() >= -1e-3 and z.max() <= 2.5 + 1e-3 and z.max() > 2.0
    assert max(figs["fig-scene00-2-stage2"]["data"][-1]["z"]) <= 2.5 + 1e-3
    assert "no scene with GT, so no precision-recall curve" in html
    assert "GT-free statistics per stage" in html
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert "ablation.png" not in names and "scene_capture_labels.png" in names


def test_diagnostics_html_without_diagnostics(tmp_path):
    from gcseg.report.tables import diagnostics_html, load_diagnostics, load_eval

    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"stage1": {"AP": 0.1, "AP50": 0.2, "AP25": 0.3, "masks_per_scene": 2.0}}))
    assert load_diagnostics(path) == {} and list(load_eval(path)) == ["stage1"]
    assert "No label diagnostics in metrics/eval.json" in diagnostics_html({})


def test_diagnostics_html_shows_the_perfect_ranking_block():
    from gcseg.report.tables import diagnostics_html

    block = {"perfect_ranking": {"source": "uses GT: the same masks", "rows": {
        "stage3": {"AP": 0.5, "AP50": 0.75, "AP25": 0.8, "given": {"AP": 0.25, "AP50": 0.5, "AP25": 0.6}}}}}
    html = diagnostics_html(block)
    assert "What the confidences cost" in html and "uses GT: the same masks" in html
    assert '<tr data-row="stage3"><th scope="row">Stage 1 + 2 + 3</th><td>25.0</td><td>50.0</td><td>50.0</td>' \
           "<td>75.0</td></tr>" in html


def test_prediction_on_the_superpoints_stage_files(project, make_inputs, tmp_path):
    """Given the superpoints stage's folder, the final model predicts on the scene's stored superpoints and ranks its
    masks (matrix NMS) as the eval stage does; a scene missing there becomes the prediction view's notice naming the file."""
    import torch

    from gcseg.errors import GcsegError
    from gcseg.models.inference import predict_points
    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint
    from gcseg.readers import open_scene
    from gcseg.report.views3d import load_scene_views, model_predictor
    from gcseg.superpoints import REFERENCE, write_superpoints

    torch.manual_seed(0)
    cfg = ModelConfig(backend="torch", voxel_size=0.05, planes=(8,) * 8, hidden_dim=16, num_queries=6, num_heads=2,
                      ffn_dim=32, mask_on="superpoint")
    model = build_model(cfg)
    save_checkpoint(tmp_path / "model.pt", model, cfg, epoch=0)
    cloud = open_scene("posed_rgbd", project / "scenes", "scene_c").reference()
    sp = np.floor(cloud.coord[:, :2] * 2).astype(np.int64) @ np.array([1, 1000])  # half-metre columns
    write_superpoints(tmp_path / "sp" / "scene_c.h5", "scene_c", {REFERENCE: (cloud.coord, sp)}, method="test",
                      config={})
    ids = model_predictor(tmp_path / "model.pt", tmp_path / "sp", "checkpoint")(cloud, "scene_c")
    assert np.array_equal(ids, prediction_ids(*predict_points(model, cloud.coord, cloud.color, superpoint=sp)))
    # by default ranked as the eval stage ranks (eval.matrix_nms linear)
    model.cfg = cfg.model_copy(update={"matrix_nms": "linear"})
    ids = model_predictor(tmp_path / "model.pt", tmp_path / "sp")(cloud, "scene_c")
    assert np.array_equal(ids, prediction_ids(*predict_points(model, cloud.coord, cloud.color, superpoint=sp)))
    predictor = model_predictor(tmp_path / "model.pt", tmp_path / "elsewhere")
    views = load_scene_views(make_inputs(project), "scene_c", predictor, None)
    assert isinstance(views.layers["prediction"], GcsegError)
    assert "elsewhere" in str(views.layers["prediction"])
