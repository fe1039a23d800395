"""Training-free baselines (stage `baselines`) against `sam2_track` on the same scenes, side by side.

The stage commands themselves run in this process on freshly written scenes: `sam2_track` on the val scenes (the
default params: tracking, lifting and, on those scenes, its diagnostics), then `superpoints`, then `baselines` once
per row (each row alone, so its own keyframe proposals and point association count for it). Wall and CPU seconds
per scene; the target is each row within 2x of sam2_track's time per scene on the default. The SAI3D rows read
the superpoints stage's files (computed once for the model and the baselines alike); their time with the
superpoints added is reported too.

full: the default's data (params.yaml `synth`: the val scenes of the default dataset) and params.
quick: 2 scenes (1 val) of 12 frames at 96x128 with 4 cm reference spacing.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("maskclustering", "sai3d_keyframes", "sai3d_tracked")


def _invoke(app: Any, args: list[str]) -> tuple[float, float]:
    from typer.testing import CliRunner

    w, c = time.perf_counter(), time.process_time()
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    if r.exit_code != 0:
        raise RuntimeError(f"stage failed ({r.exit_code}): {r.output[-2000:]}")
    return time.perf_counter() - w, time.process_time() - c


def run(quick: bool) -> dict[str, float | int | str]:
    import yaml

    from gcseg.synth import write_dataset
    from stages.baselines import app as baselines_app
    from stages.sam2_track import app as track_app
    from stages.superpoints import app as superpoints_app

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="bench_baselines_"))
    try:
        syn = dict(params["synth"])
        if quick:
            syn.update(num_scenes=2, num_val=1, num_frames=12, height=96, width=128, point_spacing=0.04,
                       max_furniture=3)
        scenes = tmp / "scenes"
        write_dataset(scenes, seed=params["seed"], progress=False, **syn)
        num_val = int(syn["num_val"])
        params["data"] = {"source": "synth", "root": str(scenes)}
        params["sam2_track"]["split"] = "val"  # time only the scenes the baselines predict
        # one-time costs of a process (scikit-learn import, numba compilation) stay out of the figures
        from sklearn.cluster import DBSCAN  # noqa: F401

        from gcseg.superpoints import compute_superpoints

        compute_superpoints(__import__("numpy").random.default_rng(0).random((64, 3)), None)
        pfile = tmp / "params.yaml"
        pfile.write_text(yaml.safe_dump(params))
        figures: dict[str, float | int | str] = {
            "frame_size": f"{syn['height']}x{syn['width']}", "frames": int(syn["num_frames"]), "val_scenes": num_val}
        w, c = _invoke(track_app, ["--scenes", str(scenes), "--params", str(pfile), "--out", str(tmp / "tracks"),
                                   "--metrics", str(tmp / "tracks.json")])
        figures["sam2_track_wall_s_per_scene"] = round(w / num_val, 2)
        figures["sam2_track_cpu_s_per_scene"] = round(c / num_val, 2)
        w, c = _invoke(superpoints_app, ["--scenes", str(scenes), "--params", str(pfile), "--out", str(tmp / "sp")])
        n_all = int(syn["num_scenes"])
        figures["superpoints_wall_s_per_scene"] = round(w / n_all, 2)
        worst = 0.0
        for row in ROWS:
            params["baselines"]["rows"] = [row]
            pfile.write_text(yaml.safe_dump(params))
            w, c = _invoke(baselines_app, ["--scenes", str(scenes), "--params", str(pfile), "--tracks",
                                           str(tmp / "tracks"), "--superpoints", str(tmp / "sp"), "--out",
                                           str(tmp / f"out_{row}")])
            wall, cpu = w / num_val, c / num_val
            figures[f"{row}_wall_s_per_scene"] = round(wall, 2)
            figures[f"{row}_cpu_s_per_scene"] = round(cpu, 2)
            ratio = wall / figures["sam2_track_wall_s_per_scene"]  # type: ignore[operator]
            figures[f"{row}_wall_ratio_over_sam2_track"] = round(ratio, 3)
            figures[f"{row}_cpu_ratio_over_sam2_track"] = round(
                cpu / figures["sam2_track_cpu_s_per_scene"], 3)  # type: ignore[operator]
            if row.startswith("sai3d"):
                figures[f"{row}_with_superpoints_wall_ratio"] = round(
                    (wall + figures["superpoints_wall_s_per_scene"])  # type: ignore[operator]
                    / figures["sam2_track_wall_s_per_scene"], 3)  # type: ignore[operator]
            worst = max(worst, ratio)
        figures["worst_row_wall_ratio_over_sam2_track"] = round(worst, 3)
        figures["target_each_row_le_2x_sam2_track"] = "met" if worst <= 2.0 else "missed"
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
