"""gcseg.io.samples.is_finished: the one check every per-scene stage (sam_keyframes, sam2_track,
full_scene_pseudolabel) uses to skip a scene on a rerun: right schema and version, and the same run config."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcseg.io.samples import config_json, is_finished, write_point_samples

SAMPLE = {"scene": {"coord": np.zeros((2, 3)), "color": np.zeros((2, 3)), "instance": np.array([0, -1])}}


def test_same_config_is_finished_other_config_or_schema_is_not(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    config = {"seed": 0, "tau_iou": 0.7, "sam2_track": {"split": "train"}}
    write_point_samples(path, SAMPLE, schema="gcseg.sam2_track", scene_id="s", extra={"config": config_json(config)})
    assert is_finished(path, "gcseg.sam2_track", config)
    assert is_finished(path, "gcseg.sam2_track", dict(reversed(list(config.items()))))  # key order is irrelevant
    assert is_finished(path, "gcseg.sam2_track", None)
    assert not is_finished(path, "gcseg.sam2_track", {**config, "tau_iou": 0.5})  # written under other params
    assert not is_finished(path, "gcseg.full_scene_pseudolabel", None)  # foreign artifact
    assert not is_finished(tmp_path / "missing.h5", "gcseg.sam2_track", None)


def test_without_a_stored_config_or_unreadable_is_not_finished(tmp_path: Path) -> None:
    old = tmp_path / "old.h5"
    write_point_samples(old, SAMPLE, schema="gcseg.sam2_track", scene_id="s")
    assert is_finished(old, "gcseg.sam2_track", None) and not is_finished(old, "gcseg.sam2_track", {"seed": 0})
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not hdf5")
    assert not is_finished(broken, "gcseg.sam2_track", None)
