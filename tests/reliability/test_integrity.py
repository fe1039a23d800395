"""Artifact integrity (gcseg issue 10, part 4): every stage that consumes an upstream artifact checks the
`schema` / `schema_version` written into it (HDF5 root attributes; model.pt's `schema_version`). A stale
artifact (older schema version) or a foreign one (another stage's or another tool's file) is rejected with one
line naming the file, exit 2 and nothing written; a stale file in a stage's own output folder is rewritten,
never taken as finished."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import pytest
import torch

from _reliability import (INPUTS, assert_user_error, copy_inputs, run_stage, snapshot, stage_args, tiny_params,
                          write_params)


def h5_attr(rel: str, key: str, value: object) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        with h5py.File(d / rel, "r+") as f:
            f.attrs[key] = value
    return go


def h5_foreign(rel: str) -> Callable[[Path], None]:
    """Another tool's HDF5 file under the artifact's name: no gcseg schema at all."""
    def go(d: Path) -> None:
        (d / rel).unlink()
        with h5py.File(d / rel, "w") as f:
            f.create_dataset("points", data=[[0.0, 0.0, 0.0]])
    return go


def h5_other_stage(rel: str, other: str, project: Path) -> Callable[[Path], None]:
    """Another gcseg stage's artifact where this one is expected (e.g. Stage 1 keyframes as tracks)."""
    def go(d: Path) -> None:
        shutil.copy(project / other, d / rel)
    return go


def h5_delete(rel: str, key: str) -> Callable[[Path], None]:
    """Remove one dataset of an artifact (schema header intact: a broken file of the right version)."""
    def go(d: Path) -> None:
        with h5py.File(d / rel, "r+") as f:
            del f[key]
    return go


def ckpt_stale(rel: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        ck = torch.load(d / rel, map_location="cpu", weights_only=False)
        ck["schema_version"] = 0
        torch.save(ck, d / rel)
    return go


def ckpt_foreign(rel: str) -> Callable[[Path], None]:
    """A plain torch state dict (e.g. someone else's weights) where a gcseg model.pt is expected."""
    def go(d: Path) -> None:
        torch.save({"state_dict": {"w": torch.zeros(3)}}, d / rel)
    return go


# (consuming stage, artifact it reads, corruption) -> the file name the message must carry
def cases(project: Path) -> dict[str, tuple[str, str, Callable[[Path], None]]]:
    kf, tr, pl = "data/sam_keyframes/synth_000.h5", "data/sam2_track/synth_000.h5", "data/pseudolabel/synth_000.h5"
    val_tr = "data/sam2_track/synth_001.h5"
    m1, m2, m3 = (f"data/models/stage{i}/model.pt" for i in (1, 2, 3))
    return {
        "stage1_train/stale_h5": ("stage1_train", kf, h5_attr(kf, "schema_version", 0)),
        "stage1_train/foreign_h5": ("stage1_train", kf, h5_foreign(kf)),
        "stage2_train/stale_h5": ("stage2_train", tr, h5_attr(tr, "schema_version", 99)),
        "stage2_train/foreign_schema": ("stage2_train", tr, h5_attr(tr, "schema", "othertool.points")),
        "stage2_train/stale_init": ("stage2_train", m1, ckpt_stale(m1)),
        "stage3_train/stale_h5": ("stage3_train", pl, h5_attr(pl, "schema_version", 0)),
        "stage3_train/foreign_init": ("stage3_train", m2, ckpt_foreign(m2)),
        "full_scene_pseudolabel/stale_model": ("full_scene_pseudolabel", m2, ckpt_stale(m2)),
        "full_scene_pseudolabel/foreign_model": ("full_scene_pseudolabel", m2, ckpt_foreign(m2)),
        "eval/stale_tracks": ("eval", val_tr, h5_attr(val_tr, "schema_version", 0)),
        "eval/tracks_before_vote_shares": ("eval", val_tr, h5_attr(val_tr, "schema_version", 1)),
        "eval/diagnostics_without_shares": ("eval", val_tr, h5_delete(val_tr, "diagnostics/ceiling/share")),
        "eval/other_stage_tracks": ("eval", val_tr, h5_other_stage(val_tr, "data/sam_keyframes/synth_001.h5", project)),
        "eval/stale_model": ("eval", m3, ckpt_stale(m3)),
    }


CASE_IDS = sorted(cases(Path(".")))


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_stale_or_foreign_artifact_is_rejected(case_id: str, project: Path, tmp_path: Path) -> None:
    stage, rel, corrupt = cases(project)[case_id]
    d = tmp_path / "p"
    d.mkdir()
    copy_inputs(project, d, INPUTS[stage])
    pf = write_params(d / "params.yaml", tiny_params())
    corrupt(d)
    before = snapshot(d)
    r = run_stage(stage, "--params", pf, *stage_args(stage, d), cwd=d)
    msg = assert_user_error(r, rel, d, before)
    assert "schema" in msg or "not a gcseg" in msg or "lacks" in msg, msg  # lacks: a dataset of its version


@pytest.mark.slow
def test_stale_file_in_own_output_is_recomputed(project: Path, tmp_path: Path) -> None:
    """A data stage resuming into a folder that holds a stale-schema file recomputes it (not 'finished')."""
    d = tmp_path / "p"
    d.mkdir()
    copy_inputs(project, d, ["data/scenes", "data/sam2_track"])
    h5_attr("data/sam2_track/synth_000.h5", "schema_version", 0)(d)
    pf = write_params(d / "params.yaml", tiny_params())
    r = run_stage("sam2_track", "--params", pf, *stage_args("sam2_track", d), cwd=d)
    assert r.code == 0, r.stderr
    assert "skipping 1 finished" in r.stdout  # synth_001 is current and kept; synth_000 was redone
    for name in ("synth_000.h5", "synth_001.h5"):
        assert (d / "data/sam2_track" / name).read_bytes() == (project / "data/sam2_track" / name).read_bytes()
