"""BENCHMARKS.md rendering: targets read the figure keys the bench modules emit; quick, missing and GPU notes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from bench.render import TARGETS, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_every_target_key_is_emitted_by_its_bench_module():
    for area, keys, *_ in TARGETS:
        src = (ROOT / "bench" / f"bench_{area}.py").read_text()
        for key in keys.split("|"):
            # a literal key, or an f-string key whose fixed tail is in the source (sparse: f"{k}_{tag}_ratio_...")
            tail = re.sub(r"^.*?_\d+k_", "", key)
            # ... or a per-backend key f"{label}_<figure>" with the label a literal of the module
            split = any(f'"{key[:i]}"' in src and f'_{key[i + 1:]}"' in src for i in range(1, len(key) - 1)
                        if key[i] == "_")
            assert f'"{key}"' in src or tail in src or split, f"bench_{area}.py emits no {key!r}"


def test_render_marks_met_missed_quick_and_unmeasured():
    data = {"machine": {"cpu": "x", "cores": 2, "memory_mb": 1}, "versions": {"python": "3"},
            "areas": {"eval": {"status": "ok", "quick": False, "wall_s": 1, "figures": {"speedup": 40.0}},
                      "scale": {"status": "ok", "quick": True, "wall_s": 2,
                                "figures": {"peak_rss_gb_5000f_640x480": 7.5, "default_repro_s": 600.0}}}}
    md = render_markdown(data)
    row = {line.split("|")[3].strip(): line for line in md.splitlines() if line.startswith("| ") and "`" in line}
    assert row["`speedup`"].rstrip().endswith("| yes |")
    assert "7.5 (quick run" in row["`peak_rss_gb_5000f_640x480`"] and row["`peak_rss_gb_5000f_640x480`"].endswith("| no |")
    assert "not measured" in row["`voxel_0.01_wall_s`"]
    assert "No GPU was lent" in md and "bench/gpu_check.sh" in md


def test_report_merges_gpu_figures(tmp_path):
    from bench.__main__ import app

    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"areas": {}, "machine": {}, "versions": {}}))
    (tmp_path / "bench_gpu.json").write_text(json.dumps(
        {"areas": {"gpu": {"status": "ok", "quick": False, "wall_s": 3, "figures": {"sam2_fps": 12.5}}}}))
    out = tmp_path / "B.md"
    r = CliRunner().invoke(app, ["report", "--bench", str(bench), "--out", str(out)])
    assert r.exit_code == 0, r.output
    md = out.read_text()
    assert "## gpu" in md and "12.5" in md and "No GPU was lent" not in md


def test_render_names_areas_measured_on_another_machine():
    """bench.json merges areas across runs: figures from another CPU (or an unrecorded one) are named as such."""
    data = {"machine": {"cpu": "new", "cores": 2, "memory_mb": 1}, "versions": {},
            "areas": {"eval": {"status": "ok", "quick": False, "wall_s": 1, "figures": {}, "cpu": "new"},
                      "scale": {"status": "ok", "quick": False, "wall_s": 2, "figures": {}, "cpu": "old"},
                      "tracking": {"status": "ok", "quick": False, "wall_s": 3, "figures": {}}}}
    md = render_markdown(data)
    assert "Areas measured on another machine (an earlier `bench run`): scale (old), tracking (machine not recorded)" in md
    assert "wall 1 s, on new" in md and "eval (" not in md
