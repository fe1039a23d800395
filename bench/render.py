"""BENCHMARKS.md from metrics/bench.json. Targets are declared here so the page says which are met."""

from __future__ import annotations

from typing import Any

# (area, figure key(s), comparison, threshold, what the target is): checked against the measured figure. Keys
# separated by "|" are alternatives, first present wins (full-size key first, then the quick run's key).
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("synth", "scene_wall_s", "<=", 10.0, "a 100-frame 320x240 synthetic scene in under 10 s (quick: 20 frames 160x120)"),
    ("lifting", "point_wall_s", "<=", 10.0,
     "300 frames at 640x480 voted onto a 2 cm room cloud in under 10 s, default point association (quick: 4)"),
    ("lifting", "voxel_0.01_wall_s", "<=", 10.0,
     "the same with the pixel association's voxel path (quick: 4)"),
    ("tracking", "policy_pct_of_sam2", "<=", 5.0, "Algorithm 1 policy <= 5 % of SAM2 propagation time per keyframe"),
    ("tracking", "long_scan_peak_rss_mb", "<=", 6144.0,
     "a 5,000-frame 640x480 scan tracked and lifted within 6 GB, measured (quick: 200 frames 48x64)"),
    ("scale", "peak_rss_gb_5000f_640x480", "<=", 6.0,
     "5,000 frames at 640x480 tracked and lifted within 6 GB (see peak_rss_5000f_note: measured or extrapolated)"),
    ("scale", "marginal_cost_ratio_last_over_first", "<=", 1.25,
     "tracking + lifting time linear in frames (CPU per added frame, longest step / shortest step)"),
    ("scale", "lift_time_ratio_over_points_ratio", "<=", 1.25,
     "lifting time at most linear in reference points (time ratio / points ratio)"),
    ("sparse", "subm_100k_ratio_torch_over_minkowski|subm_20k_ratio_torch_over_minkowski", "<=", 1.3,
     "pure-torch sparse conv within 1.3x of MinkowskiEngine (submanifold 3x3x3, fwd + bwd)"),
    ("proposals", "rgbd_cpu_ms_per_keyframe", "<=", 500.0,
     "rgbd proposer (the default) within 0.5 s CPU per 320x240 keyframe (quick: 160x120)"),
    ("eval", "speedup", ">=", 20.0, "evaluator at least 20x faster than the straightforward official-script port"),
    ("baselines", "worst_row_wall_ratio_over_sam2_track", "<=", 2.0,
     "every training-free baseline row within 2x of sam2_track's time per scene on the default (quick: one small scene)"),
    ("predict", "forward_growth_ratio_chunked_over_all", "<=", 0.6,
     "whole-room inference with test_attn_mb: the network's memory growth at most 0.6x that of all queries at once"),
    ("decoder", "time_ratio_new_over_old", "<=", 0.8,
     "decoder attention mask + attention call at most 0.8x the per-head bool formulation's time (outputs_equal: bit for bit)"),
    ("train_data", "data_time_ratio_new_over_old", "<=", 0.25,
     "a training crop's box and id renumbering at most 0.25x the np.unique formulation's time (outputs equal)"),
    ("train_data", "pool_time_ratio_new_over_old", "<=", 0.6,
     "a coarse level's attention-mask pooling under 800 training keys at most 0.6x pooling every row (sums bit for bit)"),
    ("pipeline", "default_repro_s|default_repro_partial_s", "<=", 900.0, "whole default pipeline (`dvc repro -f`) under 15 minutes on 2 cores"),
)

GPU_NOTE = ("No GPU was lent for this run: every figure is from the CPU machine above. A GPU owner runs "
            "`bench/gpu_check.sh` (CUDA MinkowskiEngine build, SAM2 frames per second with random weights at 1024 px, "
            "Res16UNet34C train step time per sparse backend), which writes `metrics/bench_gpu.json` and regenerates "
            "this page with a `gpu` section merged (`python -m bench report --merge metrics/bench_gpu.json`).")


def _pick(fig: dict[str, Any], keys: str) -> str | None:
    return next((k for k in keys.split("|") if k in fig), None)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render_markdown(data: dict[str, Any]) -> str:
    areas = data.get("areas", {})
    lines = ["# gcseg benchmarks", "",
             "Generated from `metrics/bench.json` by `python -m bench report` (after `python -m bench run [--quick]`; "
             "the whole-pipeline time comes from `python -m bench pipeline`, i.e. `scripts/time_repro.sh`). Ratios "
             "are measured side by side in one run; absolute times are for this machine only, and other jobs may have "
             "shared its cores (CPU seconds are given where that matters; `load_average_1min` where recorded).", ""]
    if any(a.get("quick") for a in areas.values()):
        lines += ["**Quick run**: areas marked *quick* ran at small sizes (seconds each); their figures are not "
                  "the full-size targets' sizes, and the targets table says so.", ""]
    if "gpu" not in areas:
        lines += [f"**GPU**: {GPU_NOTE}", ""]
    m = data.get("machine", {})
    lines += ["## Machine", "", f"- CPU: {m.get('cpu', '?')} ({m.get('cores', '?')} cores visible), "
              f"{m.get('memory_mb', '?')} MB RAM", f"- {m.get('platform', '')}", ""]
    other = {a: areas[a].get("cpu") for a in sorted(areas) if areas[a].get("cpu") != m.get("cpu")}
    if other:  # bench.json merges areas run at different times: say which figures come from another machine
        lines += ["Areas measured on another machine (an earlier `bench run`): " + ", ".join(
            f"{a} ({cpu})" if cpu else f"{a} (machine not recorded)" for a, cpu in other.items())
            + ". Compare their absolute times with care; ratios stand.", ""]
    v = data.get("versions", {})
    lines += ["## Versions", "", ", ".join(f"{k} {v[k]}" for k in sorted(v)), ""]
    lines += ["## Targets", "", "| target | area | figure | measured | met |", "|---|---|---|---|---|"]
    for area, keys, op, thr, what in TARGETS:
        fig = areas.get(area, {}).get("figures", {})
        key = _pick(fig, keys)
        if key is None or isinstance(fig[key], str):
            lines.append(f"| {what} | {area} | `{keys.split('|')[0]}` | not measured | - |")
            continue
        val = float(fig[key])
        met = val <= thr if op == "<=" else val >= thr
        quick = " (quick run: smaller sizes)" if areas[area].get("quick") else ""
        if key.endswith("_partial_s"):  # an interrupted timing run: the stages it finished, already over or not
            quick = " (PARTIAL: the run was interrupted; stages below)"
        lines.append(f"| {what} | {area} | `{key}` | {_fmt(val)}{quick} | {'yes' if met else 'no'} |")
    lines.append("")
    for area in sorted(areas):
        a = areas[area]
        cpu = f", on {a['cpu']}" if a.get("cpu") else ""
        lines += [f"## {area}", "", f"status: {a['status']}, wall {a['wall_s']} s{', quick' if a.get('quick') else ''}{cpu}",
                  "", "| figure | value |", "|---|---|"]
        for k in sorted(a["figures"]):
            lines.append(f"| `{k}` | {_fmt(a['figures'][k])} |")
        lines.append("")
    return "\n".join(lines)
