"""Scene sharding of the data stages (sam_keyframes, sam2_track, full_scene_pseudolabel) under torchrun.

For each stage on a tiny synthetic dataset (3 scenes x 8 frames at 64x48): a 2-process torchrun run and a
single-process run give byte-identical per-scene files and metrics; every scene file is renamed into place
exactly once, by the worker that owns it (rank r owns scenes r, r + n, ...: a Python audit hook logs each
process's `os.replace`); the metrics JSON is renamed into place only after every scene file; a rerun skips
finished scenes and writes no scene file. (`--shard i/n` runs one after the other: tests/stages/test_sam_keyframes.py,
tests/tracking/test_stage.py, tests/pseudolabel/test_stage.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENES = ["synth_000", "synth_001", "synth_002"]
TINY_MODEL = dict(backend="torch", voxel_size=0.05, planes=[8] * 8, layers=[1] * 8, hidden_dim=16, num_queries=8,
                  num_heads=2, ffn_dim=32, max_attn_voxels=200)

# Loaded by every Python process started with this folder on PYTHONPATH (torchrun's workers included): logs
# "<RANK> <destination>" for each os.replace / os.rename, i.e. each artifact renamed into place.
SITECUSTOMIZE = """
import os, sys
_LOG = os.environ.get("GCSEG_RENAME_LOG")
def _hook(event, args):
    if _LOG and event == "os.rename":
        with open(_LOG, "a") as f:
            f.write(f"{os.environ.get('RANK', '-')} {os.fspath(args[1])}\\n")
sys.addaudithook(_hook)
"""

STAGES = ("sam_keyframes", "sam2_track", "full_scene_pseudolabel")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """Tiny dataset, a params.yaml sized for it (every scene, small areas), a tiny random Stage 2 model and
    the audit-hook folder."""
    import torch

    from gcseg.models.config import ModelConfig
    from gcseg.models.mask_model import build_model, save_checkpoint
    from gcseg.synth import write_dataset

    tmp = tmp_path_factory.mktemp("shard")
    scenes = tmp / "scenes"
    write_dataset(scenes, num_scenes=3, num_val=1, seed=0, progress=False, num_frames=8, height=48, width=64,
                  max_furniture=3, point_spacing=0.05, min_instance_points=20)
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["data"] = {"source": "synth", "root": str(scenes)}
    p["tau_conf"] = 0.0
    p["model"] = TINY_MODEL
    # pixel areas at 64x48 (3,072 px): 20 px masks and new objects, 50 px GT for coverage
    p["sam_keyframes"].update(split="all", keyframe_stride=4, min_area_frac=0.0065, min_points=20,
                              coverage_min_area_frac=0.016)
    p["sam2_track"].update(split="all", keyframe_stride=4, min_new_area_frac=0.0065)
    p["sam2_track"]["lift"]["min_points"] = 20
    p["full_scene_pseudolabel"].update(split="all", min_points=10, top_k=0)
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY_MODEL)
    model = tmp / "model.pt"
    save_checkpoint(model, build_model(cfg), cfg, epoch=0)
    hook = tmp / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"tmp": tmp, "scenes": scenes, "params": params, "model": model, "hook": hook}


def _args(stage: str, s: dict[str, Path], run: Path) -> list[str]:
    args = ["--params", str(s["params"]), "--scenes", str(s["scenes"]), "--out", str(run / "out"),
            "--metrics", str(run / "metrics.json")]
    if stage == "sam_keyframes":
        args += ["--overlays", str(run / "overlays")]
    if stage == "full_scene_pseudolabel":
        args += ["--model", str(s["model"])]
    return args


def _launch(stage: str, s: dict[str, Path], run: Path, nproc: int) -> tuple[str, list[tuple[str, str]]]:
    """Run the stage (torchrun with `nproc` workers, or plain python when nproc == 0); return its output and
    the (rank, file name) of every file renamed into `run`."""
    log = run / "renames.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GCSEG_RENAME_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(s["hook"]), str(ROOT)])}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
                if nproc else [sys.executable])
    proc = subprocess.run([*launcher, "-m", f"stages.{stage}", *_args(stage, s, run)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = log.read_text().split() if log.is_file() else []
    renames = [(r, Path(d)) for r, d in zip(lines[::2], lines[1::2])]
    return proc.stdout + proc.stderr, [(r, d.name) for r, d in renames if run in d.parents]


def _files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != "renames.log"}


@pytest.mark.parametrize("stage", STAGES)
def test_torchrun_two_workers_equal_single_process(stage, setup):
    tmp = setup["tmp"] / stage
    par, single = tmp / "torchrun", tmp / "single"

    out, renames = _launch(stage, setup, par, nproc=2)
    scene_files = sorted(name for _, name in renames if name.endswith(".h5"))
    assert scene_files == [f"{s}.h5" for s in SCENES], out  # each scene written exactly once
    owner = {name: rank for rank, name in renames if name.endswith(".h5")}
    assert owner == {f"{s}.h5": str(i % 2) for i, s in enumerate(SCENES)}  # by the rank that owns it
    assert not list((par / "out").glob(".*.tmp"))  # no temporaries left behind
    # the metrics JSON appears only once every scene is done (written by whichever worker sees the set complete)
    order = [name for _, name in renames]
    assert "metrics.json" in order
    assert order.index("metrics.json") > max(order.index(f"{s}.h5") for s in SCENES)

    _launch(stage, setup, single, nproc=0)
    a, b = _files(par), _files(single)
    assert sorted(a) == sorted(b)
    for name in a:  # per-scene HDF5, overlays and metrics: identical bytes
        assert a[name] == b[name], f"{stage}: {name} differs between torchrun x2 and a single process"
    assert json.loads(a["metrics.json"])  # a real, non-empty metrics document

    # a rerun skips every finished scene: no scene file is rewritten (plain python: the skip test is per scene
    # and does not depend on the launcher; a second torchrun would only add start-up time)
    before = _files(par)
    out, renames = _launch(stage, setup, par, nproc=0)
    assert not [n for _, n in renames if n.endswith((".h5", ".png"))], out
    assert f"skipping {len(SCENES)} finished" in out
    assert _files(par) == before


def test_a_worker_cleans_only_its_own_temporaries(tmp_path):
    """A late-starting worker must not delete the file another worker is writing right now."""
    from stages._common import clean_shard_temporaries

    mine, other = tmp_path / ".synth_000.h5.k1x.tmp", tmp_path / ".synth_001.h5.q7z.tmp"
    mine.write_bytes(b"x")
    other.write_bytes(b"y")
    (tmp_path / ".synth_002.h5.dir.tmp").mkdir()
    clean_shard_temporaries(tmp_path, ["synth_000.h5", "synth_002.h5"])
    assert not mine.exists() and other.exists() and not (tmp_path / ".synth_002.h5.dir.tmp").exists()
