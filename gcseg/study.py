"""The whole default over several seeds (`make study`): one DVC experiment per seed (`-S seed=N`, named
``seed-N``, reusing finished ones, as gcseg.sweep runs threshold studies), then the mean and spread (sample
standard deviation, min, max) of AP / AP50 / AP25 per ablation row, and whether the paper's ordering (Stage 1 <
Stage 1+2 < Stage 1+2+3, and Stage 1+2+3 >= the lift-only row) held for every seed. The experiments also score
the models against the tracked labels they trained on, on the train scenes (`-S eval.own_labels=true`).

    python -m gcseg.study --seeds 0 1 2 --out metrics/study     # -> seeds.json, seeds.md
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.atomic import write_text
from gcseg.eval.ablation import ROW_TITLES
from gcseg.report.inputs import OWN_TITLES
from gcseg.sweep import FIGURES, ROWS, SweepPoint, run_sweep

# the same on the train scenes: the labels Stages 2 and 3 trained on, and those models (stages/eval.py own_labels)
OWN_ROWS = ("own_lift_only", "own_stage2", "own_stage3")
EXTRA_SETTINGS = ("eval.own_labels=true",)


def summarize(points: Sequence[SweepPoint]) -> dict[str, Any]:
    """{"seeds", "failed", "rows": {row: {fig: {mean, std, min, max, values}}}, "ordering_holds": {seed: bool}}.
    Only successful experiments count; a figure missing in one of them is left out of its statistics."""
    ok = [p for p in points if p.status == "success"]
    rows: dict[str, Any] = {}
    for r in (*ROWS, *OWN_ROWS):
        figs = {}
        for f in FIGURES:
            have = [p for p in ok if r in p.rows and p.rows[r].get(f) is not None]
            if have:
                a = np.asarray([p.rows[r][f] for p in have], np.float64)
                figs[f] = {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                           "min": float(a.min()), "max": float(a.max()), "values": [float(v) for v in a],
                           "seeds": [p.value for p in have]}  # whose values (a seed may lack a row)
        if figs:
            rows[r] = figs
    order: dict[str, bool] = {}
    paper: dict[str, bool] = {}  # the curriculum alone: Stage 1 < 1 + 2 < 1 + 2 + 3
    refines: dict[str, bool] = {}  # the model ends at or above its labels: Stage 1 + 2 + 3 >= lift-only
    own: dict[str, bool] = {}  # ... at or above the labels it trained on, on the train scenes
    for p in ok:
        oa = {r: p.rows.get(r, {}).get("AP") for r in OWN_ROWS}
        if all(v is not None for v in oa.values()):
            own[str(p.value)] = bool(oa["own_stage3"] >= oa["own_lift_only"])
        ap = {r: p.rows.get(r, {}).get("AP") for r in ROWS}
        if all(v is not None for v in ap.values()):
            paper[str(p.value)] = bool(ap["stage1"] < ap["stage2"] < ap["stage3"])
            refines[str(p.value)] = bool(ap["stage3"] >= ap["lift_only"])
            order[str(p.value)] = paper[str(p.value)] and refines[str(p.value)]
    return {"seeds": [p.value for p in ok], "failed": [p.name for p in points if p.status != "success"],
            "rows": rows, "ordering_holds": order, "paper_order_holds": paper, "refines_labels": refines,
            "refines_own_labels": own}


def per_seed_text(fig: dict[str, Any], seeds: Sequence[Any]) -> str:
    """A figure's values in %: "a / b / c" in the order of `seeds` when every seed has one, else each named by
    its seed (summaries written before the per-figure seeds were recorded had every seed)."""
    vals, own = fig.get("values", []), fig.get("seeds")
    if own is not None and list(own) != list(seeds):
        return ", ".join(f"seed {s}: {100 * v:.1f}" for s, v in zip(own, vals, strict=True))
    return " / ".join(f"{100 * v:.1f}" for v in vals)


def markdown(summary: dict[str, Any]) -> str:
    lines = ["| Method | AP | AP50 | AP25 |", "|---|---:|---:|---:|"]
    for r in ("stage1", "stage2", "stage3", "lift_only"):
        if r not in summary["rows"]:
            continue
        cells = []
        for f in FIGURES:
            s = summary["rows"][r].get(f)
            cells.append("n/a" if s is None else f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}")
        lines.append(f"| {ROW_TITLES[r]} | " + " | ".join(cells) + " |")
    seeds = ", ".join(str(s) for s in summary["seeds"])
    held = summary["ordering_holds"]
    lines += ["", f"Mean ± sample standard deviation over seeds {seeds} (values in %, val split).",
              "Stage 1 < Stage 1 + 2 < Stage 1 + 2 + 3 >= lift-only (AP) held for "
              f"{sum(held.values())} of {len(held)} seed(s)."]
    paper, refines = summary.get("paper_order_holds") or {}, summary.get("refines_labels") or {}
    if paper:
        lines.append(f"Apart: Stage 1 < Stage 1 + 2 < Stage 1 + 2 + 3 on {sum(paper.values())} of {len(paper)}, "
                     f"Stage 1 + 2 + 3 >= lift-only on {sum(refines.values())} of {len(refines)}.")
    # AP per seed, for the rows every seed has (a row's values follow the order of summary["seeds"])
    per_seed = {r: vals for r in ("stage1", "stage2", "stage3", "lift_only")
                if (vals := summary["rows"].get(r, {}).get("AP", {}).get("values", []))
                and len(vals) == len(summary["seeds"])}
    if per_seed and len(summary["seeds"]) > 1:
        lines += ["", "| Seed | " + " | ".join(f"{ROW_TITLES[r]} AP" for r in per_seed) + " |",
                  "|---|" + "---:|" * len(per_seed)]
        for i, seed in enumerate(summary["seeds"]):
            lines.append(f"| {seed} | " + " | ".join(f"{100 * v[i]:.1f}" for v in per_seed.values()) + " |")
    own_rows = [r for r in OWN_ROWS if r in summary["rows"]]
    if own_rows:
        lines += ["", "On the train scenes (uses GT): the models against the tracked labels they trained on.", "",
                  "| Method | AP | AP50 | AP25 | AP per seed |", "|---|---:|---:|---:|---|"]
        for r in own_rows:
            s = summary["rows"][r]
            cells = ["n/a" if s.get(f) is None else f"{100 * s[f]['mean']:.1f} ± {100 * s[f]['std']:.1f}"
                     for f in FIGURES]
            per = per_seed_text(s.get("AP", {}), summary["seeds"])
            lines.append(f"| {OWN_TITLES[r]} | " + " | ".join(cells) + f" | {per} |")
        own = summary.get("refines_own_labels") or {}
        if own:
            lines.append(f"\nStage 1 + 2 + 3 >= its own training labels (AP, train scenes) on {sum(own.values())} of "
                         f"{len(own)} seed(s).")
    if summary["failed"]:
        lines.append(f"Failed or missing experiments: {', '.join(summary['failed'])}.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("metrics/study"))
    ap.add_argument("--collect-only", action="store_true", help="do not run; summarize finished experiments")
    ap.add_argument("--rerun", action="store_true", help="run the seeds' experiments again")
    args = ap.parse_args(argv)
    points = run_sweep("seed", args.seeds, run=not args.collect_only, rerun=args.rerun, extra=EXTRA_SETTINGS)
    summary = summarize(points)
    text = markdown(summary)
    write_text(args.out / "seeds.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_text(args.out / "seeds.md", text)
    print(text.rstrip("\n"))
    print(f"-> {args.out}/seeds.json, {args.out}/seeds.md")
    return 0 if summary["seeds"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
