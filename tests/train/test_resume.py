"""Kill-and-resume: a SIGKILLed training run resumes from its last checkpoint and ends with the same model.pt
and checkpoint bytes as an uninterrupted run; metrics are replayed; a changed config does not resume a stale checkpoint."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gcseg.train.loop import TrainConfig, train
from gcseg.train.toy import tiny_model_config, write_box_samples

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 5
MODEL = dict(hidden_dim=16, num_queries=4, ffn_dim=16, planes=(8,) * 8, max_attn_voxels=100)
CFG = dict(epochs=EPOCHS, lr=1.0e-3, batch_size=2, bn_recompute_batches=2)

SCRIPT = """
import sys, json, torch
from pathlib import Path
torch.set_num_threads(1)
from gcseg.train.loop import TrainConfig, train
from gcseg.train.toy import tiny_model_config
a = json.loads(sys.argv[1])
res = train(TrainConfig(**a["cfg"]), [Path(f) for f in a["files"]], a["out"], model_cfg=tiny_model_config(**a["model"]),
            seed=0, metrics_dir=a["metrics"], progress=False)
print("RESUMED_FROM", res.resumed_from)
"""


def _run(files, out, metrics):
    torch.set_num_threads(1)
    return train(TrainConfig(**CFG), files, out, model_cfg=tiny_model_config(**MODEL), seed=0, metrics_dir=metrics,
                 progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    files = write_box_samples(d / "labels", scenes=2, samples_per_scene=2, seed=1, n_boxes=3, points_per_box=120,
                              floor_points=100)
    ref = _run(files, d / "ref", d / "ref_metrics")
    return d, files, ref


def test_sigkill_then_resume_gives_identical_model(data):
    d, files, ref = data
    out = d / "killed"
    arg = json.dumps({"cfg": CFG, "model": MODEL, "files": [str(f) for f in files], "out": str(out),
                      "metrics": str(d / "killed_metrics")})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, arg], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    ckpt = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ckpt.exists(), proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.pt").exists()
    done = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= done < EPOCHS
    res = _run(files, out, d / "killed_metrics")
    assert res.resumed_from >= done >= 1
    assert (out / "model.pt").read_bytes() == ref.model_path.read_bytes()
    # the checkpoint too (a DVC out): the resumed history and optimizer state pickle as a fresh run's
    assert ckpt.read_bytes() == (ref.model_path.parent / "checkpoints" / "last.pt").read_bytes()
    assert [h["train/loss"] for h in res.history] == [h["train/loss"] for h in ref.history]
    m = json.loads((d / "killed_metrics" / "metrics.json").read_text())
    assert m["step"] == EPOCHS - 1 and m["train"]["loss"] == ref.history[-1]["train/loss"]
    # a finished run rerun: resumes at the end and rewrites the same bytes
    again = _run(files, out, d / "killed_metrics")
    assert again.resumed_from == EPOCHS
    assert (out / "model.pt").read_bytes() == ref.model_path.read_bytes()


def test_changed_config_does_not_resume_stale_checkpoint(data):
    d, files, ref = data
    torch.set_num_threads(1)
    shutil.copytree(d / "ref", d / "stale")
    res = train(TrainConfig(**{**CFG, "epochs": 2, "lr": 2.0e-3}), files, d / "stale",
                model_cfg=tiny_model_config(**MODEL), seed=0, progress=False)
    assert res.resumed_from == 0 and res.epochs_done == 2


def test_time_budget_stops_after_an_epoch_and_writes_the_model(data):
    d, files, _ = data
    torch.set_num_threads(1)
    res = train(TrainConfig(**{**CFG, "time_budget_s": 1.0e-3}), files, d / "budget",
                model_cfg=tiny_model_config(**MODEL), seed=0, progress=False)
    assert res.epochs_done == 1
    assert torch.load(res.model_path, weights_only=False)["epoch"] == 1


def test_unreadable_checkpoint_is_ignored_not_fatal(data):
    d, files, _ = data
    torch.set_num_threads(1)
    (d / "garbage" / "checkpoints").mkdir(parents=True)
    (d / "garbage" / "checkpoints" / "last.pt").write_bytes(b"truncated")
    res = train(TrainConfig(**{**CFG, "epochs": 1}), files, d / "garbage", model_cfg=tiny_model_config(**MODEL),
                seed=0, progress=False)
    assert res.resumed_from == 0 and res.model_path.is_file()


def test_fingerprint_leaves_out_fields_added_later_at_their_off_value(tmp_path):
    """Loss and model fields added after the default's checkpoints existed do not enter the resume fingerprint at
    the value that changes nothing (those checkpoints keep their bytes); any other value does."""
    from gcseg.train.config import ADDED_LOSS_FIELDS, ADDED_TRAIN_FIELDS, LossConfig
    from gcseg.train.loop import fingerprint

    cfg = TrainConfig(**CFG)
    assert not set(ADDED_LOSS_FIELDS) & set(cfg.fingerprint_dict()["loss"])
    assert not set(ADDED_TRAIN_FIELDS) & set(cfg.fingerprint_dict())
    model = tiny_model_config(**MODEL)
    base = fingerprint(model, cfg, 0, [], 1, None)
    changed = [TrainConfig(**CFG, loss=LossConfig(objectness="quality")),
               TrainConfig(**CFG, loss=LossConfig(iou_score=1.0)), TrainConfig(**CFG, mix3d=True)]
    assert all(fingerprint(model, c, 0, [], 1, None) != base for c in changed)
    assert fingerprint(tiny_model_config(**MODEL, iou_head=True), cfg, 0, [], 1, None) != base
