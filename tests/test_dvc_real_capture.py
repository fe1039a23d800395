"""The documented real-capture experiment (issue 21) end to end: in a throw-away Git + DVC copy of this repository
with the tiny profile, `dvc exp run -S data.source=posed_rgbd -S data.root=<folder of scans>` on a folder holding
hololens_000 (cut to 6 frames, no GT, no splits.json) runs every stage: the scan trains every stage and is where
the final model predicts; eval writes GT-free statistics (AP undefined, not an error); the report shows the
scan's labels at every stage."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "reliability"))
from _reliability import tiny_params  # noqa: E402  (the tiny profile: every stage in seconds)

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
       "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "GIT_AUTHOR_NAME": "gcseg-test",
       "GIT_AUTHOR_EMAIL": "test@example.invalid", "GIT_COMMITTER_NAME": "gcseg-test",
       "GIT_COMMITTER_EMAIL": "test@example.invalid"}
ENV.pop("PYTHONPATH", None)  # the copy must run its own code (`python -m stages.*` from its root)
PIPELINE = set(yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"])

pytestmark = pytest.mark.slow


def sh(*cmd: str | Path, cwd: Path) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{out[-4000:]}")
    return out


def test_experiment_on_a_folder_holding_hololens(hololens_scans, tmp_path: Path) -> None:
    scans = hololens_scans(6)
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, files.split("\0")):
        if (ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    sh("git", "init", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-qm", "tiny profile", cwd=repo)

    out = sh("dvc", "exp", "run", "-S", "data.source=posed_rgbd", "-S", f"data.root={scans}", "-n", "hololens",
             cwd=repo)
    assert set(re.findall(r"Running stage '([^']+)'", out)) == PIPELINE, out[-3000:]

    m = repo / "metrics"
    assert json.loads((m / "eval.json").read_text())["stage3"]["AP"] is None  # no GT: undefined, not an error
    free = json.loads((m / "eval" / "gt_free.json").read_text())
    assert free["scenes"] == 1 and free["scenes_with_gt"] == 0 and list(free["per_scene"]) == ["hololens_000"]
    assert free["rows"]["lift_only"]["instances_per_scene"] >= 1 and free["rows"]["lift_only"]["vote_share"] > 0
    assert "AP is undefined" in (m / "eval" / "ablation.md").read_text()
    # every stage ran on the scan: it trained Stage 1 (keyframes), Stage 2 (tracks), Stage 3 (pseudo-labels)
    for folder in ("data/sam_keyframes", "data/sam2_track", "data/pseudolabel"):
        assert (repo / folder / "hololens_000.h5").is_file(), folder
    for stage in ("stage1_train", "stage2_train", "stage3_train"):
        assert (repo / "data" / "models" / stage.split("_")[0] / "model.pt").is_file()
    # the report shows the scan's labels at every stage
    html = (m / "report" / "report.html").read_text()
    assert 'id="scene-hololens_000"' in html and "The scan (no GT): its colours" in html
    figs = json.loads(re.search(r'id="gcseg-figures">(.*?)</script>', html, re.S).group(1).replace("<\\/", "</"))
    for j, layer in enumerate(("gt", "stage1", "stage2", "stage3", "prediction")):
        assert f"fig-scene00-{j}-{layer}" in figs, layer
    assert any(t["name"] == "instances" for t in figs["fig-scene00-2-stage2"]["data"])  # tracked labels exist
    assert "GT-free statistics per stage" in html
    assert (m / "report" / "png" / "scene_hololens_000_labels.png").is_file()
