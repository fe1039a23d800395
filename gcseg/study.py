"""The whole default over several seeds (`make study`): one DVC experiment per seed (`-S seed=N`, named
``seed-N``, reusing finished ones, as gcseg.sweep runs threshold studies), then the mean and spread (sample
standard deviation, min, max) of AP / AP50 / AP25 per ablation row, and whether the paper's ordering (Stage 1 <
Stage 1+2 < Stage 1+2+3, and Stage 1+2+3 >= the lift-only row) held for every seed. The experiments also score
the models against the tracked labels they trained on, on the train scenes (`-S eval.own_labels=true`).

    python -m gcseg.study --seeds 0 1 2 --out metrics/study     # -> seeds.json, seeds.md

A variant of the default over the same seeds, paired with the plain study (`--set`, repeatable; its
experiments are named ``seed-N-v<hash of the settings>``): the same rows, plus each row's change per seed against
the plain study's experiment of that seed (run first; its seeds are reused, not rerun), and on how many seeds it
is higher, the test this project applies before it calls a change a gain.

    python -m gcseg.study --seeds 0 1 2 --set stage2_train.lr=0.002 --out metrics/study/lr2
"""

from __future__ import annotations

import argparse
import hashlib
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
# the same masks in the order the GT gives them (the eval stage's perfect-ranking diagnostic, gcseg.eval.ranking):
# the gap to each row says what its confidences cost, seed by seed
PERFECT_ROWS = tuple(f"perfect_{r}" for r in ROWS)
EXTRA_SETTINGS = ("eval.own_labels=true",)


def variant_suffix(settings: Sequence[str]) -> str:
    """``-v<8 hex>`` naming a set of ``key=value`` settings (order-free); "" for none (the plain study)."""
    if not settings:
        return ""
    return "-v" + hashlib.sha256("\n".join(sorted(settings)).encode()).hexdigest()[:8]


def check_settings(settings: Sequence[str]) -> list[str]:
    """`settings` stripped; ValueError naming the first that is not ``dotted.key=value``."""
    out = []
    for st in settings:
        key, eq, value = st.strip().partition("=")
        if not eq or not key or not value or any(c.isspace() for c in key):
            raise ValueError(f"--set {st!r}: expected KEY=VALUE with a params.yaml key, e.g. stage2_train.lr=0.002")
        if key in ("seed", *(e.partition("=")[0] for e in EXTRA_SETTINGS)):
            raise ValueError(f"--set {st!r}: the study sets {key} itself (use --seeds for the seeds)")
        out.append(f"{key}={value}")
    return out


def paired(variant: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Per row and figure: the variant's change against the base study on each seed both have, its mean and on
    how many seeds it is higher. {row: {fig: {"seeds", "changes", "mean", "higher", "n"}}}."""
    out: dict[str, Any] = {}
    for r, figs in variant["rows"].items():
        for f, v in figs.items():
            b = base["rows"].get(r, {}).get(f)
            if b is None:
                continue
            bv = dict(zip(b.get("seeds", base["seeds"]), b["values"]))
            pairs = [(sd, x - bv[sd]) for sd, x in zip(v.get("seeds", variant["seeds"]), v["values"]) if sd in bv]
            if pairs:
                ch = [c for _, c in pairs]
                out.setdefault(r, {})[f] = {"seeds": [sd for sd, _ in pairs], "changes": ch,
                                            "mean": float(np.mean(ch)), "higher": int(sum(c > 0 for c in ch)),
                                            "n": len(ch)}
    return out


def summarize(points: Sequence[SweepPoint]) -> dict[str, Any]:
    """{"seeds", "failed", "rows": {row: {fig: {mean, std, min, max, values}}}, "ordering_holds": {seed: bool}}.
    Only successful experiments count; a figure missing in one of them is left out of its statistics."""
    ok = [p for p in points if p.status == "success"]
    rows: dict[str, Any] = {}
    for r in (*ROWS, *OWN_ROWS, *PERFECT_ROWS):
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


def _mean_std(fig: dict[str, Any] | None) -> str:
    return "n/a" if not fig else f"{100 * fig['mean']:.1f} ± {100 * fig['std']:.1f}"


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
    perfect = [r for r in ROWS if f"perfect_{r}" in summary["rows"] and r in summary["rows"]]
    if perfect:
        lines += ["", "The same masks in the perfect order (uses GT; the eval stage's diagnostic): what each row's "
                  "confidences cost.", "", "| Method | AP | AP, perfect order | cost of the order per seed | AP50, "
                  "perfect order |", "|---|---:|---:|---|---:|"]
        for r in perfect:
            given, best = summary["rows"][r].get("AP", {}), summary["rows"][f"perfect_{r}"].get("AP", {})
            best_by_seed = dict(zip(best.get("seeds", []), best.get("values", [])))
            per = ", ".join(f"{100 * (v - best_by_seed[sd]):+.1f} (seed {sd})"
                            for sd, v in zip(given.get("seeds", []), given.get("values", [])) if sd in best_by_seed)
            b50 = summary["rows"][f"perfect_{r}"].get("AP50")
            lines.append(f"| {ROW_TITLES[r]} | {_mean_std(given)} | {_mean_std(best)} | {per} | {_mean_std(b50)} |")
    if summary.get("settings"):
        lines[:0] = ["Settings: " + ", ".join(f"`{st}`" for st in summary["settings"]) + " (over the default).", ""]
    pair = summary.get("paired") or {}
    if pair:
        lines += ["", "Against the plain study (`make study`), seed by seed (change in AP points; everything else equal):",
                  "", "| Method | AP change per seed | mean | higher on |", "|---|---|---:|---:|"]
        for r in (*("stage1", "stage2", "stage3", "lift_only"), *OWN_ROWS, *PERFECT_ROWS):
            p = pair.get(r, {}).get("AP")
            if p is None:
                continue
            title = (ROW_TITLES[r] if r in ROW_TITLES else f"{OWN_TITLES[r]}, train scenes" if r in OWN_TITLES
                     else f"{ROW_TITLES[r.removeprefix('perfect_')]}, perfect order")
            if not any(p["changes"]):  # an upstream row the settings do not reach: the same experiment outputs
                lines.append(f"| {title} | the same on every seed | 0 | - |")
                continue
            per = ", ".join(f"{100 * c:+.1f} (seed {sd})" for sd, c in zip(p["seeds"], p["changes"]))
            lines.append(f"| {title} | {per} | {100 * p['mean']:+.1f} | {p['higher']} of {p['n']} |")
        lines.append("\nCall a change a gain only where it is higher on every seed and by more than a retrained row "
                     "moves alone (on the default 3-5 AP: docs/model_study.md round 4).")
    if summary["failed"]:
        lines.append(f"Failed or missing experiments: {', '.join(summary['failed'])}.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m gcseg.study",
        description="The whole default for several seeds as DVC experiments (`make study`), summarised as mean and "
                    "spread per ablation row; with --set, a variant paired seed by seed with the plain study.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default metrics/study; with --set, metrics/study/variant-v<hash>)")
    ap.add_argument("--collect-only", action="store_true", help="do not run; summarize finished experiments")
    ap.add_argument("--rerun", action="store_true", help="run the seeds' experiments again")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="a variant: this params.yaml setting in every seed's experiment (repeatable); the summary "
                         "pairs it with the plain study's experiments of the same seeds")
    args = ap.parse_args(argv)
    try:
        settings = check_settings(args.settings)
    except ValueError as exc:
        ap.error(str(exc))
    suffix = variant_suffix(settings)
    out = args.out or Path("metrics/study") / (f"variant{suffix}" if settings else "")
    points = run_sweep("seed", args.seeds, run=not args.collect_only, rerun=args.rerun,
                       extra=(*EXTRA_SETTINGS, *settings), suffix=suffix, perfect_ranking=True)
    summary = summarize(points)
    if settings:
        summary["settings"] = settings
        base = summarize(run_sweep("seed", args.seeds, run=False, extra=EXTRA_SETTINGS, perfect_ranking=True))
        summary["paired"] = paired(summary, base)
        if not summary["paired"]:
            print("note: no finished experiment of the plain study for these seeds (`make study`): nothing to pair")
    text = markdown(summary)
    write_text(out / "seeds.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_text(out / "seeds.md", text)
    print(text.rstrip("\n"))
    print(f"-> {out}/seeds.json, {out}/seeds.md")
    return 0 if summary["seeds"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
