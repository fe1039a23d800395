"""The classical proposer and the Stage 1 pipeline on the real HoloLens RGB-D capture (no GT): plumbing at a
real resolution and sane, non-trivial masks. Skipped when the capture is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gcseg.io.samples import read_point_samples
from gcseg.proposals.factory import build_proposer
from gcseg.proposals.pipeline import run_sam_keyframes

CAPTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hololens_000"
pytestmark = pytest.mark.skipif(not CAPTURE.is_dir(), reason="real capture not available")


def test_classical_on_the_hololens_capture(tmp_path: Path):
    from gcseg.readers import open_scene

    scene = open_scene("posed_rgbd", CAPTURE, "hololens_000")
    res = run_sam_keyframes(scene, build_proposer("classical", {}), stride=scene.num_frames, min_valid_depth=0.3,
                            tau_contain=0.8, min_area=100, min_points=30, out_h5=tmp_path / "h.h5",
                            overlay_png=tmp_path / "h.png", voxel_size=0.02)  # 30 points at 2 cm: ~1.2 dm^2
    assert res.keyframes == [0]
    st = res.stats[0]
    assert st.proposals >= 20 and 3 <= st.instances <= st.kept <= st.proposals and st.gt_instances == 0
    (name, sample), = list(read_point_samples(tmp_path / "h.h5"))
    assert name == "kf_000000" and sample["instance"].max() == st.instances - 1
    # min_points counts the stored (downsampled) points: every listed instance has them
    assert (np.bincount(sample["instance"][sample["instance"] >= 0], minlength=st.instances) >= 30).all()
    assert 0.3 <= float((sample["instance"] >= 0).mean()) <= 1.0  # most of the view is explained by masks
    assert np.isfinite(sample["coord"]).all() and (tmp_path / "h.png").stat().st_size > 10_000
