"""`build_report`: one self-contained HTML page (ablation table and params, curves, side-by-side 3D label views,
keyframe overlays, stage statistics) plus static PNGs of the same figures. Every section tolerates an absent
or unreadable artifact: it shows a notice naming the file and the stage that writes it instead."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from gcseg.atomic import atomic_path, write_text
from gcseg.errors import ArtifactError, GcsegError
from gcseg.report import static
from gcseg.report.curves import (load_pr_curves, load_sweeps, load_train_curves, pr_figure, sweep_figure,
                                 train_figure)
from gcseg.report.html import Page, esc, missing_html
from gcseg.report.inputs import ReportInputs, finite, load_json
from gcseg.report.tables import (ablation_html, ablation_notes, by_size_html, diagnostics_html, flatten, gt_free_html,
                                 kv_html, load_by_size, load_diagnostics, load_eval, load_gt_free, load_study,
                                 params_html, study_html, sweep_html, views_html)
from gcseg.report.views3d import (LAYER_TITLES, LAYERS, Layer, SceneViews, choose_scenes, load_scene_views,
                                  model_predictor, scatter3d_figure, scene_bounds, scene_seed)

STAT_FILES: tuple[tuple[str, str, str], ...] = (  # (file under metrics/, title, stage that writes it)
    ("sam_keyframes.json", "Stage 1 data: keyframe proposals", "sam_keyframes"),
    ("sam2_track.json", "Stage 2 data: tracking statistics", "sam2_track"),
    ("full_scene_pseudolabel.json", "Stage 3 data: full-scene pseudo-labels", "full_scene_pseudolabel"),
)


def _try(fn: Any, *args: Any) -> Any:
    """fn(*args), or the GcsegError it raised (sections render it as a notice)."""
    try:
        return fn(*args)
    except GcsegError as exc:
        return exc


def _ablation_section(page: Page, inputs: ReportInputs, pngs: dict[str, bytes | Path]) -> None:
    m = inputs.metrics_dir
    rows = _try(load_eval, m / "eval.json")
    if isinstance(rows, GcsegError):
        table = missing_html("ablation (metrics/eval.json)", rows)
    else:
        table = ablation_html(rows) + ablation_notes(m / "eval" / "ablation.md")
        if any(finite(r.get(f)) is not None for r in rows.values() for f in ("AP", "AP50", "AP25")):
            pngs["ablation.png"] = lambda p: static.ablation_png(rows, p)  # no bars of zeros without GT
        diag = _try(load_diagnostics, m / "eval.json")
        table += ("<h3>Diagnostics (use GT; not methods) and tracking without the policy</h3>"
                  + (missing_html("diagnostics", diag) if isinstance(diag, GcsegError) else diagnostics_html(diag)))
        sizes = _try(load_by_size, m / "eval" / "by_size.json")
        if isinstance(sizes, GcsegError):
            table += "<h3>Objects found by size (uses GT)</h3>" + missing_html("by size", sizes)
        elif sizes["bins"]:  # empty without GT
            table += "<h3>Objects found by size (uses GT)</h3>" + by_size_html(sizes)
            if sizes.get("diagnostic_rows"):  # the label diagnostics (ceiling, proposals, no policy) by size
                table += ("<h4>Label diagnostics by size (use GT)</h4>"
                          + by_size_html({**sizes, "rows": sizes["diagnostic_rows"]}))
            if sizes.get("view_rows"):  # the proposals per keyframe view, before the vote
                table += "<h4>Proposals per keyframe view by size (use GT)</h4>" + views_html(sizes["view_rows"])
            pngs["by_size.png"] = lambda p: static.by_size_png(sizes, p)
    params = (_try(params_html, inputs.params_file) if inputs.params_file is not None else None)
    if isinstance(params, GcsegError):
        params = missing_html("params", params)
    side = f"<div><h3>Parameters of this run</h3>{params}</div>" if params is not None else ""
    page.section("ablation", "Ablation: class-agnostic AP per stage",
                 f'<div class="tables"><div>{table}</div>{side}</div>')


def _gt_free_section(page: Page, inputs: ReportInputs) -> None:
    """Statistics that need no GT (every scene, labelled or not): what a run on your own scans is judged by."""
    stats = _try(load_gt_free, inputs.metrics_dir / "eval" / "gt_free.json")
    if isinstance(stats, GcsegError):
        body = missing_html("GT-free statistics (metrics/eval/gt_free.json)", stats)
    else:
        body = (f'<p class="note">{esc(stats.get("scenes"))} scene(s), {esc(stats.get("scenes_with_gt"))} with GT; '
                f"instances = masks of at least {esc(stats.get('min_points'))} points once overlaps are resolved. "
                "Vote share: of every labelled point's votes from all frames that saw it, the share for its tracked "
                "id (tracked-label consistency). Agreement: symmetric segmentation covering of two stages' "
                "instances. Both measure self-consistency, not correctness.</p>" + gt_free_html(stats))
    page.section("gtfree", "GT-free statistics per stage", body)


def _curves_section(page: Page, inputs: ReportInputs, pngs: dict[str, Any]) -> None:
    m = inputs.metrics_dir
    parts = []
    pr = _try(load_pr_curves, m / "eval" / "pr")
    if not isinstance(pr, GcsegError) and not any(c.x for c in pr.values()):  # header-only CSVs: no scene has GT
        pr = ArtifactError("no scene with GT, so no precision-recall curve", path=m / "eval" / "pr",
                           fix="AP and PR curves need scenes with GT; see the GT-free statistics")
    if isinstance(pr, GcsegError):
        parts.append(f"<div>{missing_html('precision-recall curves', pr)}</div>")
    else:
        parts.append(page.figure("fig-curves-pr", pr_figure(pr)))
        pngs["pr_curves.png"] = lambda p: static.curves_png(
            pr, p, title="Precision-recall at IoU 0.5 (val scenes)", xlabel="recall", ylabel="precision",
            step=True, unit_box=True)
    train = _try(load_train_curves, m)
    if isinstance(train, GcsegError):
        parts.append(f"<div>{missing_html('training curves', train)}</div>")
    else:
        parts.append(page.figure("fig-curves-train", train_figure(train)))
        pngs["train_loss.png"] = lambda p: static.curves_png(
            train, p, title="Training loss (Stage 1, then fine-tuning Stages 2 and 3)",
            xlabel="epoch (cumulative over stages)", ylabel="train/loss")
    body = f'<div class="grid2">{"".join(parts)}</div>'
    sweeps = _try(load_sweeps, m)
    if isinstance(sweeps, GcsegError):
        body += "<h3>Threshold sweeps</h3>" + missing_html("threshold sweeps", sweeps)
    else:
        for i, sw in enumerate(sweeps):
            body += (f"<h3>Sweep over <code>{esc(sw.key)}</code></h3><div class=\"grid2\">"
                     f"{page.figure(f'fig-sweep-{i:02d}', sweep_figure(sw))}<div>{sweep_html(sw)}</div></div>")
    study = _try(load_study, m / "study" / "seeds.json")
    body += "<h3>Seeds (<code>make study</code>)</h3>" + (missing_html("seed study", study)
                                                            if isinstance(study, GcsegError) else study_html(study))
    page.section("curves", "Curves", body)


def _overlay_html(path: Path) -> str:
    if not path.is_file():
        return missing_html("keyframe overlays", GcsegError(
            "not found", path=path, fix="run `dvc repro sam_keyframes` (writes <scene>.png per scene)"))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width = im.width
    except (UnidentifiedImageError, OSError) as exc:
        return missing_html("keyframe overlays", GcsegError(f"not a PNG ({exc})", path=path,
                                                            fix="rerun `dvc repro sam_keyframes`"))
    scale = max(1, min(4, 720 // max(width, 1)))  # small synthetic frames: enlarged by an integer factor, sharp
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<img class="overlay" alt="Stage 1 keyframe overlays of {esc(path.stem)}" width="{width * scale}" '
            f'src="data:image/png;base64,{data}">')


def _scene_block(page: Page, inputs: ReportInputs, views: SceneViews, index: int, track_stats: Any) -> str:
    sid, k, seed = views.scene_id, inputs.max_points_per_view, scene_seed(views.scene_id)
    bounds = scene_bounds(views)
    cells = []
    for j, name in enumerate(LAYERS):
        layer = views.layers[name]
        if isinstance(layer, Layer):
            fig = page.figure(f"fig-scene{index:02d}-{j}-{name}", scatter3d_figure(layer, layer.title or LAYER_TITLES[name],
                                                                                 k, seed, bounds),
                              camera_group=f"scene{index:02d}")
            cells.append(f'<div class="view">{fig}<p class="note">{esc(layer.note)}</p></div>')
        else:
            cells.append(f'<div class="view"><h3>{esc(LAYER_TITLES[name])}</h3>'
                         f"{missing_html(LAYER_TITLES[name], layer)}</div>")
    per_scene = ""
    if isinstance(track_stats, dict) and isinstance(track_stats.get("per_scene", {}).get(sid), dict):
        per_scene = (f"<details><summary>Tracking statistics of {esc(sid)}</summary>"
                     f"{kv_html(flatten(track_stats['per_scene'][sid]))}</details>")
    return (f'<h3 id="scene-{esc(sid)}">Scene {esc(sid)} <span class="note">({esc(views.split)} split; '
            f"at most {k} points per view; drag to rotate, all five views follow)</span></h3>"
            f'<div class="views">{"".join(cells)}</div>'
            f'<h3>Stage 1 keyframe overlays of {esc(sid)}</h3>{_overlay_html(inputs.overlays / f"{sid}.png")}'
            f"{per_scene}")


def _views_section(page: Page, inputs: ReportInputs, pngs: dict[str, Any]) -> None:
    scene_ids = _try(choose_scenes, inputs)
    if isinstance(scene_ids, GcsegError):
        page.section("views", "3D label views", missing_html("scenes", scene_ids))
        return
    if not scene_ids:
        page.section("views", "3D label views", '<p class="note">No scenes selected (report.num_scenes: 0 or an '
                     "empty data root).</p>")
        return
    predictor = _try(model_predictor, inputs.models / "stage3" / "model.pt", inputs.superpoints, inputs.matrix_nms)
    predictor_error = predictor if isinstance(predictor, GcsegError) else None
    predictor = None if predictor_error else predictor
    track_stats = _try(load_json, inputs.metrics_dir / "sam2_track.json", "")
    blocks = []
    for i, sid in enumerate(scene_ids):
        views = load_scene_views(inputs, sid, predictor, predictor_error)
        blocks.append(_scene_block(page, inputs, views, i, track_stats))
        pngs[f"scene_{sid}_labels.png"] = (
            lambda p, v=views: static.scene_png(v, p, inputs.max_points_per_view, scene_seed(v.scene_id)))
    intro = ('<p class="note">Colours: one fixed colour per instance id (gcseg.colors); faint grey = unlabelled. '
             "Stage 1 ids are independent per keyframe, so each keyframe-instance has its own colour: one object "
             "in several colours is the inconsistency that Stage 2's tracking removes.</p>")
    page.section("views", "3D label views: GT, Stage 1, Stage 2, Stage 3, prediction", intro + "".join(blocks))


def _stats_section(page: Page, inputs: ReportInputs) -> None:
    parts = []
    for name, title, stage in STAT_FILES:
        data = _try(load_json, inputs.metrics_dir / name, f"run `dvc repro {stage}`")
        if isinstance(data, GcsegError):
            parts.append(f"<div><h3>{esc(title)}</h3>{missing_html(title, data)}</div>")
        else:
            parts.append(f"<div><h3>{esc(title)}</h3>{kv_html(flatten(data))}</div>")
    page.section("stats", "Stage statistics", f'<div class="tables">{"".join(parts)}</div>')


def build_report(inputs: ReportInputs, out_html: Path, png_dir: Path) -> None:
    """Write the HTML report to `out_html` and the static PNGs into `png_dir` (replaced as a whole, atomically).

    Deterministic: identical inputs give identical bytes (fixed div ids, sorted JSON, seeded subsampling, no
    timestamps, PNGs without metadata). Absent artifacts become notices in their sections.
    """
    import plotly.offline

    page = Page(title="gcseg report",
                subtitle="Class-agnostic 3D segmentation by granularity-consistent 2D mask tracking "
                         "(arXiv 2511.00785): ablation, curves and label views of this pipeline run.")
    pngs: dict[str, Any] = {}  # file name -> writer(path), filled by the sections
    _ablation_section(page, inputs, pngs)
    _gt_free_section(page, inputs)
    _curves_section(page, inputs, pngs)
    _views_section(page, inputs, pngs)
    _stats_section(page, inputs)
    text = page.render(plotly.offline.get_plotlyjs())

    png_dir = Path(png_dir)
    png_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(png_dir) as tmp:
        tmp.mkdir()
        for name in sorted(pngs):
            pngs[name](tmp / name)
    Path(out_html).parent.mkdir(parents=True, exist_ok=True)
    write_text(out_html, text)
