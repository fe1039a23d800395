"""stage1_train / stage2_train commands end to end on a tiny generated labels folder (CliRunner)."""

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from gcseg.train.toy import write_box_samples

MODEL = dict(backend="torch", voxel_size=0.05, in_channels=3, planes=[8] * 8, layers=[1] * 8, bn_momentum=0.02,
             hidden_dim=16, num_queries=4, num_heads=2, hlevels=[0, 1, 2, 3], num_decoders=1, ffn_dim=16, dropout=0.0,
             max_attn_voxels=100, queries="learned")
TRAIN = dict(epochs=2, lr=1.0e-3, batch_size=2, weight_decay=0.0, pct_start=0.3, max_points=None,
             loss=dict(ce=2.0, bce=5.0, dice=2.0, eos_coef=0.1, num_points=512),
             augment=dict(rotate_z=True, flip=True, scale=0.1, elastic=[], color_jitter=0.05),
             time_budget_s=None, val_every=2, val_samples=2, checkpoint_every=1, bn_recompute_batches=2)


@pytest.fixture()
def project(tmp_path):
    params = {"seed": 0, "data": {"source": "synth", "root": "scenes"}, "model": MODEL, "stage1_train": TRAIN, "stage2_train": {**TRAIN, "epochs": 1},
              "stage3_train": TRAIN}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    files = write_box_samples(tmp_path / "labels", scenes=2, samples_per_scene=2, seed=3, n_boxes=2,
                              points_per_box=80, floor_points=40)
    for i, f in enumerate(files):  # named like the synth scenes: synth_000 is train, synth_001 val
        f.rename(f.with_name(f"synth_{i:03d}.h5"))
    return tmp_path


def test_stage1_then_stage2(project, monkeypatch):
    from gcseg.synth.writer import write_dataset
    from stages import stage1_train, stage2_train

    torch.set_num_threads(1)
    monkeypatch.chdir(project)
    write_dataset(project / "scenes", num_scenes=2, num_val=1, seed=0, progress=False, num_frames=2, height=24,
                  width=32, point_spacing=0.05)
    r = CliRunner().invoke(stage1_train.app, ["--labels", "labels", "--out", "models/stage1", "--metrics",
                                              "metrics/stage1_train", "--scenes", "scenes"])
    assert r.exit_code == 0, r.output
    assert "on 1 file(s)" in r.output  # the val scene's labels are not trained on
    assert (project / "models/stage1/model.pt").is_file()
    assert (project / "models/stage1/checkpoints/last.pt").is_file()
    m = json.loads((project / "metrics/stage1_train/metrics.json").read_text())
    assert m["step"] == 1 and "loss" in m["train"] and "labels_AP50" in m["val"]
    assert {"AP", "AP50", "AP25"} <= set(m["val"])  # GT of the val scene (synth_001)
    assert (project / "metrics/stage1_train/plots/metrics/train/loss.tsv").is_file()
    assert not (project / "dvc.yaml").exists()  # Live(dvcyaml=False)

    r = CliRunner().invoke(stage2_train.app, ["--labels", "labels", "--out", "models/stage2", "--metrics",
                                              "metrics/stage2_train", "--init", "models/stage1/model.pt"])
    assert r.exit_code == 0, r.output
    ck = torch.load(project / "models/stage2/model.pt", weights_only=False)
    assert ck["epoch"] == 1 and ck["config"]["hidden_dim"] == 16


def test_val_gt_off_logs_the_fit_check_only(project, monkeypatch):
    """val_gt false (the default pipeline's setting): the val check logs the fit to the training labels and leaves
    the val split's GT to the eval stage."""
    from gcseg.synth.writer import write_dataset
    from stages import stage1_train

    torch.set_num_threads(1)
    monkeypatch.chdir(project)
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["stage1_train"]["val_gt"] = False
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    write_dataset(project / "scenes", num_scenes=2, num_val=1, seed=0, progress=False, num_frames=2, height=24,
                  width=32, point_spacing=0.05)
    r = CliRunner().invoke(stage1_train.app, ["--labels", "labels", "--out", "models/stage1", "--metrics",
                                              "metrics/stage1_train", "--scenes", "scenes"])
    assert r.exit_code == 0, r.output
    assert "on 1 file(s)" in r.output  # --scenes still keeps the val scene's labels out of training
    m = json.loads((project / "metrics/stage1_train/metrics.json").read_text())
    assert set(m["val"]) == {"labels_AP50"}


def test_stage2_rejects_init_of_another_architecture(project, monkeypatch):
    from gcseg.models.mask_model import ModelConfig, build_model, save_checkpoint
    from stages import stage2_train

    monkeypatch.chdir(project)
    cfg = ModelConfig(**{**MODEL, "hidden_dim": 8})
    save_checkpoint(project / "other.pt", build_model(cfg), cfg, epoch=1)
    r = CliRunner().invoke(stage2_train.app, ["--labels", "labels", "--out", "m2", "--metrics", "mt",
                                              "--init", "other.pt"])
    assert r.exit_code == 2
    assert "hidden_dim: checkpoint 8 != expected 16" in r.output
    assert not (project / "m2" / "model.pt").exists()


def test_missing_labels_and_bad_params_are_one_line_errors(project, monkeypatch):
    from stages import stage1_train

    monkeypatch.chdir(project)
    r = CliRunner().invoke(stage1_train.app, ["--labels", "nope", "--out", "m", "--metrics", "mt"])
    assert r.exit_code == 2 and "labels folder not found" in r.output
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["stage1_train"]["epochz"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    r = CliRunner().invoke(stage1_train.app, ["--labels", "labels", "--out", "m", "--metrics", "mt"])
    assert r.exit_code == 2 and "epochz" in r.output


def test_superpoint_model_through_the_superpoints_stages(project, monkeypatch):
    """The default kind of model (masks on superpoints, seeded queries, seeded matcher) trains from the files of
    the two superpoints stages and is scored on the val scene's reference superpoints."""
    from gcseg.synth.writer import write_dataset
    from stages import keyframe_superpoints, stage1_train, superpoints

    torch.set_num_threads(1)
    monkeypatch.chdir(project)
    p = yaml.safe_load((project / "params.yaml").read_text())
    repo = yaml.safe_load(open(__import__("pathlib").Path(__file__).resolve().parents[2] / "params.yaml"))
    p["model"] = {**MODEL, "queries": "superpoint", "mask_on": "superpoint", "nms_iou": 0.5}
    p["stage1_train"]["loss"].update(matcher="seeded", seeded_topk=0)
    p["superpoints"] = repo["superpoints"]
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    write_dataset(project / "scenes", num_scenes=2, num_val=1, seed=0, progress=False, num_frames=2, height=24,
                  width=32, point_spacing=0.05)
    assert CliRunner().invoke(superpoints.app, ["--scenes", "scenes", "--out", "sp"]).exit_code == 0
    assert CliRunner().invoke(keyframe_superpoints.app, ["--labels", "labels", "--out", "spk"]).exit_code == 0
    args = ["--labels", "labels", "--out", "models/stage1", "--metrics", "metrics/stage1_train", "--scenes", "scenes"]
    r = CliRunner().invoke(stage1_train.app, args)
    assert r.exit_code == 2 and "superpoints" in r.output  # a superpoint model needs them
    r = CliRunner().invoke(stage1_train.app, [*args, "--superpoints", "spk", "--ref-superpoints", "sp"])
    assert r.exit_code == 0, r.output
    m = json.loads((project / "metrics/stage1_train/metrics.json").read_text())
    assert {"labels_AP50", "AP", "AP50", "AP25"} <= set(m["val"])


def test_stage3_trains_on_pseudo_and_tracked_labels(project, monkeypatch):
    """--tracked adds Stage 2's labels when stage3_train.replay_tracked is on (each folder's val scenes left out);
    --labels may be repeated; a missing folder is a one-line error that writes nothing."""
    import shutil

    from gcseg.synth.writer import write_dataset
    from stages import stage1_train, stage3_train

    torch.set_num_threads(1)
    monkeypatch.chdir(project)
    write_dataset(project / "scenes", num_scenes=2, num_val=1, seed=0, progress=False, num_frames=2, height=24,
                  width=32, point_spacing=0.05)
    shutil.copytree(project / "labels", project / "tracked")
    r = CliRunner().invoke(stage1_train.app, ["--labels", "labels", "--out", "m1", "--metrics", "mt1"])
    assert r.exit_code == 0, r.output
    base = ["--labels", "labels", "--scenes", "scenes", "--init", "m1/model.pt"]
    r = CliRunner().invoke(stage3_train.app, [*base, "--tracked", "tracked", "--out", "m3", "--metrics", "mt3"])
    assert r.exit_code == 0, r.output
    assert "on 2 file(s)" in r.output  # synth_000 of each folder; synth_001 is val
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["stage3_train"]["replay_tracked"] = False
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    r = CliRunner().invoke(stage3_train.app, [*base, "--tracked", "tracked", "--out", "m4", "--metrics", "mt4"])
    assert r.exit_code == 0, r.output
    assert "on 1 file(s)" in r.output
    r = CliRunner().invoke(stage3_train.app, [*base, "--labels", "nope", "--out", "m5", "--metrics", "mt5"])
    assert r.exit_code == 2 and "labels folder not found" in r.output and "nope" in r.output
    assert not (project / "m5").exists()


def test_stage3_trains_on_unlabelled_scenes_never_on_val(project, monkeypatch):
    """With synth.num_unlabelled, the unlabelled scans' pseudo-labels train Stage 3 beside the train scenes' (they
    have no tracked labels); the val scene's never do."""
    import shutil

    from gcseg.synth.writer import write_dataset
    from stages import stage1_train, stage3_train

    torch.set_num_threads(1)
    monkeypatch.chdir(project)
    write_dataset(project / "scenes", num_scenes=2, num_val=1, seed=0, progress=False, num_unlabelled=1,
                  num_frames=2, height=24, width=32, point_spacing=0.05)
    shutil.copytree(project / "labels", project / "tracked")  # tracked: synth_000 (train), synth_001 (val)
    shutil.copy(project / "labels/synth_000.h5", project / "labels/synth_002.h5")  # pseudo-labels of all three
    r = CliRunner().invoke(stage1_train.app, ["--labels", "tracked", "--out", "m1", "--metrics", "mt1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(stage3_train.app, ["--labels", "labels", "--scenes", "scenes", "--init", "m1/model.pt",
                                              "--tracked", "tracked", "--out", "m3", "--metrics", "mt3"])
    assert r.exit_code == 0, r.output
    assert "on 3 file(s)" in r.output  # pseudo synth_000 + synth_002, tracked synth_000
