"""Interruption (gcseg issue 10, part 2): a stage killed with SIGKILL at a random point and rerun gives the same
artifacts, byte for byte, as an uninterrupted run. Every output is written to a temporary sibling and renamed
(gcseg.atomic), so a kill leaves complete files or none; data stages skip the scenes already finished; training
resumes from checkpoints/last.pt (model, optimizer, scheduler and metric history restored).

The kill point is drawn from a seeded generator: the stage is polled until its first per-scene file (data
stage) or first checkpoint (training) exists, then killed after a random extra delay."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import h5py
import pytest

from _reliability import INPUTS, copy_inputs, run_stage, stage_args, start_stage, tiny_params, write_params

SEED = 20261126


def kill_when(proc: subprocess.Popen, appeared: Path, delay: float, timeout: float = 240.0) -> bool:
    """SIGKILL `proc` `delay` seconds after `appeared` exists. False if the process ended first."""
    t0 = time.monotonic()
    while not appeared.exists():
        if proc.poll() is not None:
            return False
        assert time.monotonic() - t0 < timeout, f"{appeared} never appeared"
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_data_stage_killed_and_rerun_equals_uninterrupted(project: Path, tmp_path: Path) -> None:
    """sam2_track over the tiny scenes: killed while later scenes are in flight, rerun skips the finished one."""
    rng = random.Random(SEED)
    d = tmp_path / "p"
    copy_inputs(project, d, ["data/scenes"])
    pf = write_params(d / "params.yaml", tiny_params())
    args = ["--params", pf, *stage_args("sam2_track", d)]
    out = d / "data/sam2_track"

    proc = start_stage("sam2_track", *args, cwd=d)
    assert kill_when(proc, out / "synth_000.h5", delay=rng.uniform(0.0, 0.2)), "the stage ended before the kill"
    # what the kill left: complete scene files (and perhaps a temporary), never a partial .h5, no metrics yet
    assert not (d / "metrics/sam2_track.json").exists()
    assert not (out / "synth_001.h5").exists()
    with h5py.File(out / "synth_000.h5", "r") as h:
        assert h.attrs["schema"] == "gcseg.sam2_track"
    r = run_stage("sam2_track", *args, cwd=d)
    assert r.code == 0, r.stderr
    assert not list(out.glob(".*.tmp"))
    assert files(out) == files(project / "data/sam2_track")
    assert (d / "metrics/sam2_track.json").read_bytes() == (project / "metrics/sam2_track.json").read_bytes()


@pytest.mark.slow
def test_training_killed_and_resumed_equals_uninterrupted(project: Path, tmp_path: Path) -> None:
    """stage1_train for 2 epochs: killed after a checkpoint, rerun resumes from it and ends with the same
    model.pt and DVCLive metrics as a run that was never interrupted."""
    rng = random.Random(SEED + 1)
    params = tiny_params()
    params["stage1_train"]["epochs"] = 2
    runs = {}
    for name in ("clean", "killed"):
        d = tmp_path / name
        copy_inputs(project, d, INPUTS["stage1_train"])
        pf = write_params(d / "params.yaml", params)
        args = ["--params", pf, *stage_args("stage1_train", d)]
        if name == "killed":
            proc = start_stage("stage1_train", *args, cwd=d)
            ckpt = d / "data/models/stage1/checkpoints/last.pt"
            assert kill_when(proc, ckpt, delay=rng.uniform(0.0, 0.3)), "training ended before it was killed"
            assert not (d / "data/models/stage1/model.pt").exists()
        r = run_stage("stage1_train", *args, cwd=d)
        assert r.code == 0, r.stderr
        if name == "killed":
            assert "resumed after epoch" in r.stdout, r.stdout
        runs[name] = d
    clean, killed = runs["clean"], runs["killed"]
    assert (killed / "data/models/stage1/model.pt").read_bytes() == (clean / "data/models/stage1/model.pt").read_bytes()
    assert files(killed / "metrics/stage1_train") == files(clean / "metrics/stage1_train")
    assert not list((killed / "data/models/stage1/checkpoints").glob(".*.tmp"))
