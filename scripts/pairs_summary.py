"""Summarise exact pairs from scripts/stage3_pairs.sh: per seed, the base experiment's eval figures (read from the
study clone's experiment commit) beside the variant's (OUT_DIR/eval_<seed>.json), as pairs.json and pairs.md.

    python scripts/pairs_summary.py --study /work/study8 --variant-dir /tmp/pairs --out metrics/study/x \\
        --variant "stage2_train.loss.objectness=confidence" --base "..." --how "..." 5:abc1234 6:def5678

--merge PAIRS_JSON adds the seeds of an earlier summary of the same variant (their figures as they were written),
so a study extended by more seeds is summarised over all of them. AP figures are percent, rounded to 0.1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

ROWS = ("stage1", "stage2", "stage3", "lift_only")


def pct(x: float) -> float:
    return round(100.0 * float(x), 1)


def figures(ev: dict[str, Any]) -> dict[str, Any]:
    """The figures a pair compares, from one metrics/eval.json."""
    out: dict[str, Any] = {r: {"AP": pct(ev[r]["AP"]), "AP50": pct(ev[r]["AP50"])} for r in ROWS}
    perfect = ev.get("diagnostics", {}).get("perfect_ranking", {}).get("rows", {}).get("stage3")
    out["perfect_stage3"] = pct(perfect["AP"]) if perfect else None
    own = ev.get("own_labels", {}).get("stage3") or ev.get("own_labels", {}).get("own_stage3")
    out["own_stage3"] = pct(own["AP"]) if own else None
    return out


def seed_entry(base: dict[str, Any], var: dict[str, Any]) -> dict[str, Any]:
    return {"default": {r: base[r] for r in ROWS},
            "variant": {r: var[r] for r in ("stage2", "stage3")},
            "perfect_stage3": {"default": base["perfect_stage3"], "variant": var["perfect_stage3"]},
            "own_stage3": {"default": base["own_stage3"], "variant": var["own_stage3"]}}


def paper_order(s1: float, s2: float, s3: float) -> bool:
    return s1 < s2 < s3


def summary(seeds: dict[str, Any]) -> dict[str, Any]:
    n = len(seeds)
    d2 = [e["variant"]["stage2"]["AP"] - e["default"]["stage2"]["AP"] for e in seeds.values()]
    d3 = [e["variant"]["stage3"]["AP"] - e["default"]["stage3"]["AP"] for e in seeds.values()]
    d50 = [e["variant"]["stage3"]["AP50"] - e["default"]["stage3"]["AP50"] for e in seeds.values()]
    s1 = {k: e["default"]["stage1"]["AP"] for k, e in seeds.items()}
    return {"stage2_AP": round(sum(d2) / n, 2), "stage3_AP": round(sum(d3) / n, 2),
            "stage3_AP50": round(sum(d50) / n, 2), "stage3_higher": sum(x > 0 for x in d3),
            "stage3_AP50_higher": sum(x > 0 for x in d50), "n": n,
            "paper_order_default": sum(paper_order(s1[k], e["default"]["stage2"]["AP"], e["default"]["stage3"]["AP"])
                                       for k, e in seeds.items()),
            "paper_order_variant": sum(paper_order(s1[k], e["variant"]["stage2"]["AP"], e["variant"]["stage3"]["AP"])
                                       for k, e in seeds.items()),
            "stage3_ge_lift_only_default": sum(e["default"]["stage3"]["AP"] >= e["default"]["lift_only"]["AP"]
                                               for e in seeds.values()),
            "stage3_ge_lift_only_variant": sum(e["variant"]["stage3"]["AP"] >= e["default"]["lift_only"]["AP"]
                                               for e in seeds.values())}


def markdown(doc: dict[str, Any]) -> str:
    def yn(b: bool) -> str:
        return "yes" if b else "no"

    def opt(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    lines = [f"`{doc['variant']}` against the default, Stage 1 the same models (val AP / AP50, %); base: {doc['base']}",
             "", "| seed | Stage 1 | Stage 1 + 2: default / variant | Stage 1 + 2 + 3: default -> variant | lift-only "
             "| paper's order: default / variant | perfect order 1 + 2 + 3: default / variant "
             "| train rooms 1 + 2 + 3: default / variant |", "|---|---|---|---|---|---|---|---|"]
    for k in sorted(doc["seeds"], key=int):
        e = doc["seeds"][k]
        d, v = e["default"], e["variant"]
        s1 = d["stage1"]["AP"]
        lines.append(
            f"| {k} | {s1:.1f} | {d['stage2']['AP']:.1f} / {v['stage2']['AP']:.1f} | "
            f"{d['stage3']['AP']:.1f} / {d['stage3']['AP50']:.1f} -> {v['stage3']['AP']:.1f} / {v['stage3']['AP50']:.1f} | "
            f"{d['lift_only']['AP']:.1f} | {yn(paper_order(s1, d['stage2']['AP'], d['stage3']['AP']))} / "
            f"{yn(paper_order(s1, v['stage2']['AP'], v['stage3']['AP']))} | "
            f"{opt(e['perfect_stage3']['default'])} / {opt(e['perfect_stage3']['variant'])} | "
            f"{opt(e['own_stage3']['default'])} / {opt(e['own_stage3']['variant'])} |")
    m = doc["mean_change"]
    lines += ["", f"Mean change over {m['n']} seeds: Stage 1 + 2 {m['stage2_AP']:+.2f} AP, Stage 1 + 2 + 3 "
              f"{m['stage3_AP']:+.2f} AP / {m['stage3_AP50']:+.2f} AP50 (higher on {m['stage3_higher']} / "
              f"{m['stage3_AP50_higher']} of {m['n']} seeds); the paper's order on {m['paper_order_default']} / {m['paper_order_variant']} of {m['n']} "
              f"(default / variant), Stage 1 + 2 + 3 >= lift-only on {m['stage3_ge_lift_only_default']} / "
              f"{m['stage3_ge_lift_only_variant']}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", type=Path, required=True, help="the clone holding the base experiments")
    ap.add_argument("--variant-dir", type=Path, required=True, help="stage3_pairs.sh's OUT_DIR (eval_<seed>.json)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variant", required=True, help="the settings, as given to stage3_pairs.sh")
    ap.add_argument("--base", required=True, help="what the base experiments are")
    ap.add_argument("--how", required=True, help="how the variant ran")
    ap.add_argument("--merge", type=Path, help="an earlier pairs.json of the same variant: its seeds are kept")
    ap.add_argument("pairs", nargs="*", metavar="SEED:REV")
    a = ap.parse_args()
    seeds: dict[str, Any] = {}
    if a.merge:
        old = json.loads(a.merge.read_text())
        if old["variant"] != a.variant:
            raise SystemExit(f"{a.merge}: variant {old['variant']!r}, not {a.variant!r}")
        seeds.update(old["seeds"])
    for pair in a.pairs:
        seed, rev = pair.split(":", 1)
        base = json.loads(subprocess.run(["git", "-C", str(a.study), "show", f"{rev}:metrics/eval.json"],
                                         check=True, capture_output=True, text=True).stdout)
        var = json.loads((a.variant_dir / f"eval_{seed}.json").read_text())
        seeds[seed] = seed_entry(figures(base), figures(var))
    seeds = {k: seeds[k] for k in sorted(seeds, key=int)}
    doc = {"variant": a.variant, "base": a.base, "how": a.how, "seeds": seeds, "mean_change": summary(seeds)}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "pairs.json").write_text(json.dumps(doc, indent=1) + "\n")
    (a.out / "pairs.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
