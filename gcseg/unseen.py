"""A trained model on rooms no stage saw: the synthetic rooms of fresh synth seeds, segmented the way a user's scan
is (gcseg.predict: the scan folder read as posed RGB-D, its superpoints computed from the cloud) and scored as
`gcseg evaluate` scores benchmark files, per seed and pooled, beside the eval stage's figure on its val rooms.

A val figure inflated by a leak between train and val rooms would not hold on such rooms (issue 18 asks for AP50
within 0.1 of it). Four rooms decide a figure by their draw (rooms hold 9-65 objects), so every room of each fresh
seed is scored and the seeds are pooled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gcseg.eval.ap import EvalResult
from gcseg.eval.diagnostics import _pct  # the diagnostics tables' formatting

FIGURES = ("AP", "AP50", "AP25")


def write_gt_files(scenes: Path, scene_ids: Sequence[str], gt_dir: Path, prefix: str) -> list[str]:
    """``<gt_dir>/<prefix><scene>.txt`` for every synth scene (the eval stage's GT: gcseg.eval.ablation's
    ``segment * 1000 + instance`` per reference point); returns the names written."""
    from gcseg.eval.ablation import gt_ids_from_cloud
    from gcseg.eval.benchmark_io import write_gt
    from gcseg.readers import open_scene

    names = []
    for sid in scene_ids:
        cloud = open_scene("synth", scenes, sid).reference()
        name = f"{prefix}{sid}"
        write_gt(gt_dir / f"{name}.txt", gt_ids_from_cloud(cloud, name))
        names.append(name)
    return names


def figures(result: EvalResult) -> dict[str, Any]:
    """AP / AP50 / AP25 (None where undefined) and the number of GT objects."""
    d = result.to_dict()
    return {"AP": d["ap"], "AP50": d["ap50"], "AP25": d["ap25"], "objects": result.num_gt}


def summarize(per_seed: Mapping[int, EvalResult], pooled: EvalResult, rooms: Mapping[int, int], *,
              val: Mapping[str, Any] | None, tolerance: float = 0.1,
              labels: tuple[Mapping[int, EvalResult], EvalResult] | None = None,
              labels_val: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The check's record: the model's figures per seed and pooled; with the eval stage's val figures of its row
    (`val`: AP / AP50 / AP25) the pooled AP50's gap to val AP50 and whether it is within `tolerance`. `labels`:
    the tracked labels' figures on the same rooms (per seed, pooled) and `labels_val` their val figures (the
    lift-only row), which say how much of a gap is the rooms' and not the model's."""
    out: dict[str, Any] = {
        "seeds": {str(s): {**figures(r), "rooms": int(rooms[s])} for s, r in sorted(per_seed.items())},
        "pooled": {**figures(pooled), "rooms": int(sum(rooms.values()))},
        "tolerance": tolerance,
    }
    if val is not None and val.get("AP50") is not None and out["pooled"]["AP50"] is not None:
        gap = out["pooled"]["AP50"] - float(val["AP50"])
        out["val"] = {k: val.get(k) for k in FIGURES}
        out["ap50_gap"] = round(gap, 6)
        out["within_tolerance"] = bool(abs(gap) <= tolerance)
    if labels is not None:
        lab_seeds, lab_pooled = labels
        out["labels"] = {"seeds": {str(s): figures(r) for s, r in sorted(lab_seeds.items())},
                         "pooled": figures(lab_pooled)}
        if labels_val is not None:
            out["labels"]["val"] = {k: labels_val.get(k) for k in FIGURES}
    return out


def _cells(f: Mapping[str, Any] | None) -> str:
    return " | | |" if f is None else " | ".join(_pct(f[k]) for k in FIGURES) + " |"


def markdown(summary: Mapping[str, Any], checkpoint: str, row: str) -> str:
    """The record as a Markdown table (val first; the tracked labels' columns where they were scored)."""
    lab = summary.get("labels")
    head = "| rooms | objects | AP | AP50 | AP25 |" + (" labels AP | labels AP50 | labels AP25 |" if lab else "")
    rule = "|---|---:|---:|---:|---:|" + ("---:|---:|---:|" if lab else "")
    lines = [f"# `{checkpoint}` on rooms no stage saw", "", "Model: AP / AP50 / AP25 of the checkpoint's masks"
             + ("; labels: the Stage 2 tracked labels of the same rooms, lifted (the lift-only row)." if lab else "."),
             "", head, rule]

    def line(name: str, objects: Any, f: Mapping[str, Any] | None, lf: Mapping[str, Any] | None) -> str:
        text = f"| {name} | {objects} | " + _cells(f)
        return text + (" " + _cells(lf) if lab else "")

    if "val" in summary:
        name = f"the eval stage's val rooms (row `{row}`" + ("; labels: `lift_only`)" if lab else ")")
        lines.append(line(name, "", summary["val"],
                          lab.get("val") if lab else None))
    for seed, f in summary["seeds"].items():
        lines.append(line(f"synth seed {seed}, {f['rooms']} rooms", f["objects"], f,
                          lab["seeds"][seed] if lab else None))
    p = summary["pooled"]
    lines.append(line(f"pooled, {p['rooms']} rooms", p["objects"], p, lab["pooled"] if lab else None))
    if "ap50_gap" in summary:
        verdict = "within" if summary["within_tolerance"] else "outside"
        lines += ["", f"Pooled AP50 {summary['ap50_gap'] * 100:+.1f} points against val: {verdict} the "
                  f"tolerance of {summary['tolerance'] * 100:.0f}."]
        if lab and lab.get("val") and lab["val"].get("AP50") is not None and lab["pooled"]["AP50"] is not None:
            lines.append(f"The tracked labels of the same rooms: "
                         f"{(lab['pooled']['AP50'] - lab['val']['AP50']) * 100:+.1f} points against theirs on val.")
    return "\n".join(lines) + "\n"
