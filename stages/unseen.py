"""`gcseg unseen`: a trained model on rooms no stage saw. Generates the synthetic rooms of fresh synth seeds (the
params file's `synth` section at each `--seed`), segments every room with `gcseg predict` (the path a user's scan
takes: the room folder read as posed RGB-D, its superpoints computed from the cloud, the eval stage's
`eval.fragments`), scores them as `gcseg evaluate` does (per seed and pooled) and sets the pooled AP50 beside the
eval stage's val AP50 of the same model (`--val-metrics`). A leak between train and val rooms would show as val
figures the fresh rooms do not reach. Not a DVC stage (`make unseen` runs it on the final model)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from gcseg.eval.ap import EvalResult
from gcseg.parallel import JOBS_ENV
from stages._common import load_params, make_app, run_module, split_scenes, user_errors
from stages._eval_params import EvalSection
from stages.synth import SynthParams

app = make_app(__doc__ or "")


class UnseenParams(SynthParams):
    """The params keys this command reads: seed and synth (the rooms), eval (the fragments the eval scores)."""

    eval: EvalSection


def tracked_labels(params: Path, scenes: Path, ids: list[str], names: list[str], out: Path) -> list[tuple]:
    """The sam2_track stage on the rooms (the params' settings; every room, no diagnostics) and each room's
    lift-only prediction: [(ValScene named as its GT file, RowPrediction)]."""
    from dataclasses import replace

    import yaml

    from gcseg.readers import open_scene
    from stages import sam2_track
    from stages._common import read_params_file
    from stages.eval import eval_scene, read_tracks

    data = read_params_file(params)
    data["data"] = {**data.get("data", {}), "source": "synth", "root": str(scenes)}
    data["sam2_track"] = {**data["sam2_track"], "split": "all",
                          "diagnostics": {**data["sam2_track"].get("diagnostics", {}), "split": "none"}}
    tracked_params = out.parent / f"{out.name}.params.yaml"
    tracked_params.write_text(yaml.safe_dump(data, sort_keys=False))
    sam2_track.main(scenes=scenes, params=tracked_params, out=out, metrics=out.parent / f"{out.name}.json",
                    shard="0/1")
    rows = []
    for sid, name in zip(ids, names):
        val = eval_scene(sid, open_scene("synth", scenes, sid).reference(), None)
        lifted = read_tracks(out / f"{sid}.h5", val)["lift_only"]
        rows.append((replace(val, scene_id=name), lifted))
    return rows


def score_rows(rows: list[tuple], min_region_size: int) -> EvalResult:
    """The EvalResult of (ValScene, RowPrediction) pairs, pooled as the eval stage pools its rows."""
    from gcseg.eval.ablation import evaluate_rows

    scored = evaluate_rows([v for v, _ in rows], {"labels": {v.scene_id: r for v, r in rows}},
                           min_region_size=min_region_size)
    return scored["labels"].result


@app.command()
@user_errors
def main(
    checkpoint: Annotated[Path, typer.Option(help="Trained model.pt.")] = Path("data/models/stage3/model.pt"),
    seed: Annotated[list[int], typer.Option("--seed", help="Fresh synth seed (repeat for several); each must differ "
                                            "from the params file's seed.")] = [77, 1234],  # noqa: B006
    params: Annotated[Path, typer.Option(help="params.yaml to read seed, synth and eval from.")] = Path("params.yaml"),
    val_metrics: Annotated[Path, typer.Option(help="The eval stage's metrics, whose --row is this checkpoint's val "
                                              "figure.")] = Path("metrics/eval.json"),
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="Set the figures beside --val-metrics "
                                          "(--no-compare: the fresh rooms' figures only).")] = True,
    row: Annotated[str, typer.Option(help="The row of --val-metrics this checkpoint is.")] = "stage3",
    tolerance: Annotated[float, typer.Option(help="Largest AP50 gap to val counted as no leak.")] = 0.1,
    labels: Annotated[bool, typer.Option("--labels/--no-labels", help="Also track and lift every room with the "
                                         "params' sam2_track settings and score those labels beside the model (the "
                                         "lift-only row): how hard the rooms are, apart from the model. About 70 s "
                                         "a seed on 2 cores.")] = True,
    out: Annotated[Path, typer.Option(help="Output folder: unseen.json, unseen.md.")] = Path("metrics/unseen"),
    jobs: Annotated[int, typer.Option("--jobs", envvar=JOBS_ENV, min=0, help="Worker processes generating the "
                                      "rooms (0 = one per available core); the rooms do not depend on it.")] = 0,
) -> None:
    """Score a trained model on every room of fresh synth seeds, beside its val figure.

    Each room is segmented as `gcseg predict` segments a user's scan and scored as `gcseg evaluate` scores benchmark
    files, per seed and pooled; with --labels the same rooms' tracked labels are scored beside it, so a gap the
    rooms cause shows in both and one the model causes (a train/val leak) in the model's alone. Writes
    OUT/unseen.json and OUT/unseen.md (`make unseen`: the final model, seeds 77 and 1234)."""
    from tqdm import tqdm

    from gcseg.atomic import check_output, write_text
    from gcseg.errors import InputError
    from gcseg.eval.ap import evaluate_scenes
    from gcseg.eval.folders import load_scenes
    from gcseg.predict import load_checkpoint, predict_scan
    from gcseg.report.inputs import load_json
    from gcseg.synth import write_dataset
    from gcseg.unseen import markdown, summarize, write_gt_files

    p = load_params(params, UnseenParams)
    if not seed or len(set(seed)) != len(seed):
        raise InputError(f"--seed values must be given and distinct, got {seed}", fix="e.g. --seed 77 --seed 1234")
    if p.seed in seed:
        raise InputError(f"--seed {p.seed} is the params file's seed: the pipeline trained on those rooms",
                         path=params, fix="pick seeds no experiment used, e.g. --seed 77 --seed 1234")
    if not 0 < tolerance < 1:
        raise InputError(f"--tolerance must be in (0, 1), got {tolerance}", fix="e.g. --tolerance 0.1")
    model, _ = load_checkpoint(checkpoint)  # a missing or broken checkpoint fails before minutes of room generation
    val = labels_val = None
    if compare:
        rows = load_json(val_metrics, fix="run `dvc repro eval`, or pass --no-compare")
        if not isinstance(rows.get(row) if isinstance(rows, dict) else None, dict):
            raise InputError(f"no row {row!r} in the eval metrics (rows: {', '.join(sorted(rows))})",
                             path=val_metrics, fix="pass --row with the checkpoint's row")
        val = rows[row]
        labels_val = rows.get("lift_only") if labels else None
    check_output(out, folder=True, what="--out")
    s, scored, per_seed, rooms, lab_seed, lab_rows = p.synth, {}, {}, {}, {}, []
    with tempfile.TemporaryDirectory(prefix="gcseg-unseen-") as tmp:
        work = Path(tmp)
        gt_dir, pred_all = work / "gt", work / "pred"
        for sd in seed:
            scenes = work / f"seed{sd}"
            write_dataset(scenes, num_scenes=s.num_scenes, num_val=s.num_val, seed=sd, jobs=jobs, **s.scene_options())
            ids = split_scenes("synth", scenes, "all")  # every room of a fresh seed is unseen
            names = write_gt_files(scenes, ids, gt_dir / str(sd), f"seed{sd}_")
            for sid, name in tqdm(list(zip(ids, names)), desc=f"predict seed {sd}", unit="room", disable=None):
                predict_scan(scenes / sid, checkpoint, pred_all / str(sd), source="posed_rgbd", scene_id=name,
                             fragments=p.eval.fragments, model=model, matrix_nms=p.eval.matrix_nms)
            scored[sd] = load_scenes(gt_dir / str(sd), pred_all / str(sd))
            per_seed[sd] = evaluate_scenes(scored[sd], min_region_size=p.eval.min_region_size)
            rooms[sd] = len(ids)
            if labels:
                seed_rows = tracked_labels(params, scenes, ids, names, work / f"tracks{sd}")
                lab_seed[sd] = score_rows(seed_rows, p.eval.min_region_size)
                lab_rows += seed_rows
        pooled = evaluate_scenes([sc for sd in seed for sc in scored[sd]], min_region_size=p.eval.min_region_size)
    summary = summarize(per_seed, pooled, rooms, val=val, tolerance=tolerance, labels_val=labels_val,
                        labels=(lab_seed, score_rows(lab_rows, p.eval.min_region_size)) if labels else None)
    summary["checkpoint"] = str(checkpoint)
    write_text(out / "unseen.json", json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n")
    text = markdown(summary, str(checkpoint), row)
    write_text(out / "unseen.md", text)
    typer.echo(text)


if __name__ == "__main__":
    run_module(app)
