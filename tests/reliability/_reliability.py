"""Helpers of the reliability tests (gcseg issue 10): the tiny profile's params, and running a stage as
`python -m stages.<name>` in a subprocess, so that exit codes, stderr and SIGKILL behave as under `dvc repro`.
Imported by tests/reliability/conftest.py, which puts this folder on sys.path (pytest's importlib mode)."""

from __future__ import annotations

import copy
import hashlib
import shutil
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

# The stage subprocesses use one thread each: the machine is shared, and the thread count is part of what makes
# threaded float reductions reproducible (docs/reliability.md). PYTHONHASHSEED is deliberately left random: the
# stages must not depend on set / dict-of-str iteration order.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}, "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

TINY_MODEL = dict(backend="torch", voxel_size=0.1, in_channels=3, planes=[8] * 8, layers=[1] * 8, bn_momentum=0.02,
                  hidden_dim=16, num_queries=4, num_heads=2, hlevels=[0, 1, 2, 3], num_decoders=1, ffn_dim=16,
                  dropout=0.0, max_attn_voxels=100, queries="superpoint", mask_on="superpoint", nms_iou=0.5)
TINY_TRAIN = dict(epochs=1, lr=1.0e-3, batch_size=2, weight_decay=0.0, pct_start=0.3, max_points=None,
                  loss=dict(ce=2.0, bce=5.0, dice=2.0, eos_coef=0.1, num_points=256, matcher="seeded", seeded_topk=0),
                  augment=dict(rotate_z=True, flip=True, scale=0.1, elastic=[], color_jitter=0.05),
                  time_budget_s=None, val_every=0, val_samples=2, checkpoint_every=1, bn_recompute_batches=1)
SYNTH = dict(num_scenes=2, num_val=1, num_frames=8, height=48, width=64, orbit_degrees=40.0, max_furniture=3,
             point_spacing=0.05, depth_noise=0.0, hole_fraction=0.0)


def tiny_params() -> dict[str, Any]:
    """The repository's params.yaml with the tiny profile's overrides (every stage runs in seconds)."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["synth"].update(SYNTH)
    p["data"] = {"source": "synth", "root": "data/scenes"}
    # pixel areas at 64x48 (3,072 px): 10 px masks and new objects, 20 px GT for coverage
    p["sam_keyframes"].update(keyframe_stride=2, min_area_frac=0.0033, min_points=10, coverage_min_area_frac=0.0065,
                              coverage_val=False, split="all")
    p["sam2_track"].update(keyframe_stride=2, min_new_area_frac=0.0033, split="all",
                           lift={**p["sam2_track"]["lift"], "min_points": 10})
    p["model"] = copy.deepcopy(TINY_MODEL)
    for k in ("stage1_train", "stage2_train", "stage3_train"):
        p[k] = copy.deepcopy(TINY_TRAIN)
    p["full_scene_pseudolabel"].update(top_k=0, min_points=10, split="all",
                                       dbscan={"enabled": True, "eps": 0.15, "min_samples": 3})
    p["tau_conf"] = 0.0
    p["eval"].update(min_region_size=10, split="val")
    return p


def write_params(path: Path, params: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_stage(name: str, *args: str | Path, cwd: Path | None = None, timeout: float = 300) -> Result:
    """`python -m stages.<name> ARGS` in a subprocess (real exit code, real stderr)."""
    proc = subprocess.run([sys.executable, "-m", f"stages.{name}", *map(str, args)], cwd=cwd or ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start_stage(name: str, *args: str | Path, cwd: Path | None = None) -> subprocess.Popen:
    """The same, not waited for (the interruption tests kill it)."""
    return subprocess.Popen([sys.executable, "-m", f"stages.{name}", *map(str, args)], cwd=cwd or ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stage_args(name: str, d: Path) -> list[str | Path]:
    """The dvc.yaml command line of each stage, with every path under the project folder `d`."""
    s, m = d / "data/scenes", d / "metrics"
    return {
        "synth": ["--out", s],
        "superpoints": ["--scenes", s, "--out", d / "data/superpoints"],
        "keyframe_superpoints": ["--labels", d / "data/sam_keyframes", "--out", d / "data/superpoints_keyframes"],
        "sam_keyframes": ["--scenes", s, "--out", d / "data/sam_keyframes", "--overlays", d / "data/overlays",
                          "--metrics", m / "sam_keyframes.json"],
        "stage1_train": ["--scenes", s, "--labels", d / "data/sam_keyframes", "--out", d / "data/models/stage1",
                         "--metrics", m / "stage1_train", "--superpoints", d / "data/superpoints_keyframes",
                         "--ref-superpoints", d / "data/superpoints"],
        "sam2_track": ["--scenes", s, "--out", d / "data/sam2_track", "--metrics", m / "sam2_track.json"],
        "stage2_train": ["--scenes", s, "--labels", d / "data/sam2_track", "--init", d / "data/models/stage1/model.pt",
                         "--out", d / "data/models/stage2", "--metrics", m / "stage2_train",
                         "--superpoints", d / "data/superpoints", "--ref-superpoints", d / "data/superpoints"],
        "full_scene_pseudolabel": ["--scenes", s, "--model", d / "data/models/stage2/model.pt",
                                   "--out", d / "data/pseudolabel", "--metrics", m / "full_scene_pseudolabel.json",
                                   "--superpoints", d / "data/superpoints"],
        "stage3_train": ["--scenes", s, "--labels", d / "data/pseudolabel", "--init", d / "data/models/stage2/model.pt",
                         "--out", d / "data/models/stage3", "--metrics", m / "stage3_train",
                         "--superpoints", d / "data/superpoints", "--ref-superpoints", d / "data/superpoints"],
        "eval": ["--scenes", s, "--tracks", d / "data/sam2_track", "--models", d / "data/models",
                 "--out", m / "eval.json", "--table", m / "eval/ablation.md", "--plots", m / "eval/pr",
                 "--superpoints", d / "data/superpoints"],
    }[name]


PIPELINE = ("synth", "superpoints", "sam_keyframes", "keyframe_superpoints", "stage1_train", "sam2_track",
            "stage2_train", "full_scene_pseudolabel", "stage3_train", "eval")


def run_pipeline(d: Path, upto: str = "eval", params: dict[str, Any] | None = None) -> Path:
    """Run the stages in order into project folder `d` (params.yaml written there); stops after `upto`."""
    d.mkdir(parents=True, exist_ok=True)
    pf = write_params(d / "params.yaml", params or tiny_params())
    for name in PIPELINE:
        r = run_stage(name, "--params", pf, *stage_args(name, d))
        assert r.code == 0, f"{name} failed ({r.code}):\n{r.stdout}\n{r.stderr}"
        if name == upto:
            break
    return d


# what each stage reads (copied from the session project) and writes (must not appear on failure)
INPUTS = {
    "synth": [],
    "superpoints": ["data/scenes"],
    "sam_keyframes": ["data/scenes"],
    "keyframe_superpoints": ["data/sam_keyframes"],
    "stage1_train": ["data/scenes", "data/sam_keyframes", "data/superpoints_keyframes", "data/superpoints"],
    "sam2_track": ["data/scenes"],
    "stage2_train": ["data/scenes", "data/sam2_track", "data/models/stage1/model.pt", "data/superpoints"],
    "full_scene_pseudolabel": ["data/scenes", "data/models/stage2/model.pt", "data/superpoints"],
    "stage3_train": ["data/scenes", "data/pseudolabel", "data/models/stage2/model.pt", "data/superpoints"],
    "eval": ["data/scenes", "data/sam2_track", "data/models/stage1/model.pt", "data/models/stage2/model.pt",
             "data/models/stage3/model.pt", "data/superpoints"],
}


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` (folders too) with a digest of its bytes."""
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# The session project stops after full_scene_pseudolabel (what the determinism test compares); where a test
# needs the Stage 3 model, the Stage 2 one stands in (same architecture and checkpoint format).
STAND_INS = {"data/models/stage3/model.pt": "data/models/stage2/model.pt"}


def copy_inputs(project: Path, d: Path, rels: list[str]) -> None:
    """Copy the listed files / folders of the finished project into project folder `d`."""
    for rel in rels:
        src, dst = project / rel, d / rel
        if not src.exists() and rel in STAND_INS:
            src = project / STAND_INS[rel]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)


def assert_user_error(r: Result, expect: str, d: Path, before: dict[str, str]) -> str:
    """What a user must see for bad input: exit 2, ONE stderr line `error: ...` naming `expect` with a `Fix:`,
    no traceback, and project folder `d` exactly as in snapshot `before` (nothing partial, no .tmp)."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.code == 2, f"exit {r.code}\n{r.stderr}"
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert len(lines) == 1, f"stderr is not one line:\n{r.stderr}"
    msg = lines[0]
    assert msg.startswith("error: "), msg
    assert expect in msg, f"{expect!r} not named in: {msg}"
    assert " Fix: " in msg and len(msg.split(" Fix: ", 1)[1]) > 5, msg
    after = snapshot(d)
    assert after == before, (f"the project folder changed: added {sorted(set(after) - set(before))}, "
                             f"removed {sorted(set(before) - set(after))}, changed "
                             f"{sorted(k for k in set(after) & set(before) if after[k] != before[k])}")
    assert not [p for p in after if p.endswith(".tmp")]
    return msg
