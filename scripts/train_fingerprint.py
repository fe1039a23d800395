"""Will this machine train the committed models byte for byte? Ask in 15 s instead of a 14-minute `dvc repro`.

Trains Stage 1's first epoch exactly as `dvc repro` does (params.yaml, the same schedule: the run is stopped by
a time budget after epoch 0, which does not change what the epoch computes) into a temporary folder, and prints
its mean training loss with every digit beside the committed run's (row 0 of
metrics/stage1_train/plots/metrics/train/loss.tsv). The loss of one epoch sums 28 optimisation steps: any kernel
that sums in another order on this CPU changes its last digits, so equal digits mean this machine's kernels are
the lock's (docs/reliability.md, section 3); unequal ones mean `dvc repro` will train other models here (the data
and label stages still match). Needs the stages up to keyframe_superpoints in the workspace (`dvc repro
keyframe_superpoints` or `dvc pull`). Set variables (OMP_NUM_THREADS, MKL_CBWR, ...) before it to probe a kernel
library:

    OMP_NUM_THREADS=2 python scripts/train_fingerprint.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "metrics/stage1_train/plots/metrics/train/loss.tsv"


def first_epoch_loss(tmp: Path, params: Path) -> str:
    import yaml

    p = yaml.safe_load(params.read_text())
    s = p["stage1_train"]
    s.update(time_budget_s=1e-9, val_every=0, bn_recompute_batches=0)  # stop after epoch 0, no val, no precise BN
    (tmp / "params.yaml").write_text(yaml.safe_dump(p))
    import stages.stage1_train as stage

    stage.app(["--scenes", str(ROOT / "data/scenes"), "--labels", str(ROOT / "data/sam_keyframes"),
               "--superpoints", str(ROOT / "data/superpoints_keyframes"),
               "--ref-superpoints", str(ROOT / "data/superpoints"), "--params", str(tmp / "params.yaml"),
               "--out", str(tmp / "model"), "--metrics", str(tmp / "metrics")], standalone_mode=False)
    return (tmp / "metrics/plots/metrics/train/loss.tsv").read_text().split()[3]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import gcseg  # noqa: F401  (the kernel pins, before torch)
    import torch

    committed = COMMITTED.read_text().split()[3]
    with tempfile.TemporaryDirectory() as tmp:
        here = first_epoch_loss(Path(tmp), args.params)
    pins = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA",
                                           "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    print(f"cpu: {_cpu_name()}, {torch.get_num_threads()} torch threads, {platform.platform()}")
    print(f"kernel settings: {pins}")
    print(f"Stage 1 epoch 0 mean loss here:      {here}")
    print(f"Stage 1 epoch 0 mean loss committed: {committed}")
    same = here == committed
    print("same: this machine trains the lock's models" if same else
          "different: `dvc repro` trains other models here (machine noise, docs/reliability.md section 3)")
    return 0 if same else 1


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
