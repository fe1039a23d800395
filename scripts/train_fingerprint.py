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

Where the digits differ, the op trace says which kernel made them differ: `--trace FILE` records a digest of every
tensor of Stage 1's first optimisation steps (2 by default; gcseg.optrace: each ATen op, each module's output, each gradient and
updated parameter) instead, and `--compare REF` prints the first record where this machine's trace leaves REF's.
Every record before it is equal bits, so that record's kernel sums in another order here. The AMD EPYC's trace is
committed (metrics/reliability/optrace_epyc.jsonl.gz):

    python scripts/train_fingerprint.py --trace /tmp/here.jsonl.gz --compare metrics/reliability/optrace_epyc.jsonl.gz

Exit status: 0 same, 1 different, 2 a bad reference. `--root` points at another project folder (its data/,
params.yaml, dvc.lock and metrics/; tests/reliability/test_fingerprint.py runs it on the tiny project).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = "metrics/stage1_train/plots/metrics/train/loss.tsv"  # in the project folder (--root)


def _run_stage1(tmp: Path, params: Path, root: Path) -> None:
    import yaml

    p = yaml.safe_load(params.read_text())
    s = p["stage1_train"]
    s.update(time_budget_s=1e-9, val_every=0, bn_recompute_batches=0)  # stop after epoch 0, no val, no precise BN
    (tmp / "params.yaml").write_text(yaml.safe_dump(p))
    import stages.stage1_train as stage

    stage.app(["--scenes", str(root / "data/scenes"), "--labels", str(root / "data/sam_keyframes"),
               "--superpoints", str(root / "data/superpoints_keyframes"),
               "--ref-superpoints", str(root / "data/superpoints"), "--params", str(tmp / "params.yaml"),
               "--out", str(tmp / "model"), "--metrics", str(tmp / "metrics")], standalone_mode=False)


def first_epoch_loss(tmp: Path, params: Path, root: Path) -> str:
    _run_stage1(tmp, params, root)
    return (tmp / "metrics/plots/metrics/train/loss.tsv").read_text().split()[3]


def trace_first_steps(tmp: Path, params: Path, root: Path, steps: int) -> list[dict]:
    """The op trace of Stage 1's first `steps` optimisation steps as `dvc repro` runs them."""
    from gcseg.optrace import OpTracer

    with OpTracer(steps=steps) as tracer:
        _run_stage1(tmp, params, root)
    if not tracer.finished:
        raise RuntimeError(f"Stage 1 ended before {steps} optimisation steps (fewer training samples?)")
    return tracer.records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT, help="project folder: its data/ (the stages up to "
                                                            "keyframe_superpoints), dvc.lock and committed metrics "
                                                            "(default: this checkout)")
    ap.add_argument("--params", type=Path, default=None, help="params.yaml (default: ROOT/params.yaml)")
    ap.add_argument("--trace", type=Path, help="write the op trace of the first optimisation step(s) here "
                                               "(.jsonl.gz) instead of the epoch's loss")
    ap.add_argument("--steps", type=int, default=None, help="optimisation steps traced (default: the --compare "
                                                           "trace's, else 2)")
    ap.add_argument("--compare", type=Path, help="with --trace: print where this trace first differs from this "
                                                 "one (e.g. metrics/reliability/optrace_epyc.jsonl.gz)")
    args = ap.parse_args()
    args.root = args.root.resolve()
    args.params = args.params or args.root / "params.yaml"
    if args.compare is not None and args.trace is None:
        ap.error("--compare needs --trace (the file this machine's trace is written to)")
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps must be >= 1, got {args.steps}")
    sys.path.insert(0, str(ROOT))
    import gcseg  # noqa: F401  (the kernel pins, before torch)
    import torch

    from gcseg.determinism import cpu_name

    pins = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA",
                                           "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    machine = f"{cpu_name()}, {torch.get_num_threads()} torch threads, {platform.platform()}"
    print(f"cpu: {machine}")
    print(f"kernel settings: {pins}")
    if args.trace is not None:
        return _trace(args, {"cpu": machine, "kernel_settings": pins, "commit": _commit(args.root),
                             "stage1_inputs": _stage1_inputs(args.root)})

    committed = (args.root / COMMITTED).read_text().split()[3]
    with tempfile.TemporaryDirectory() as tmp:
        here = first_epoch_loss(Path(tmp), args.params, args.root)
    print(f"Stage 1 epoch 0 mean loss here:      {here}")
    print(f"Stage 1 epoch 0 mean loss committed: {committed}")
    same = here == committed
    print("same: this machine trains the lock's models" if same else
          "different: `dvc repro` trains other models here (machine noise, docs/reliability.md section 3)")
    return 0 if same else 1


def _trace(args: argparse.Namespace, meta: dict) -> int:
    from gcseg.optrace import first_divergence, load_trace, save_trace

    try:  # a bad reference fails before the run
        ref = load_trace(args.compare) if args.compare is not None else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    steps = args.steps or (int(ref[0].get("steps", 2)) if ref is not None else 2)
    with tempfile.TemporaryDirectory() as tmp:
        records = trace_first_steps(Path(tmp), args.params, args.root, steps)
    meta["libraries"] = _libraries()  # after the run: MinkowskiEngine's BLAS is loaded by then
    save_trace(args.trace, records, {**meta, "steps": steps})
    print(f"{len(records)} records of {steps} step(s) written to {args.trace}")
    if ref is None:
        return 0
    ref_meta, ref_records = ref
    print(f"reference: {args.compare} ({ref_meta.get('cpu')}, {ref_meta.get('kernel_settings')}, "
          f"commit {ref_meta.get('commit')})")
    if ref_meta.get("stage1_inputs") != meta["stage1_inputs"]:
        print(f"warning: stage1_train's code, params or data in dvc.lock differ from the reference's (traced at "
              f"commit {ref_meta.get('commit')}, this is {meta['commit']}): a difference may be the code's, not the "
              "CPU's; trace the reference's commit, or trace both machines at this one")
    for key in sorted(set(meta["libraries"]) | set(ref_meta.get("libraries", {}))):
        here, there = meta["libraries"].get(key), ref_meta.get("libraries", {}).get(key)
        if here != there:
            print(f"library differs: {key}: here {here}, reference {there}")
    div = first_divergence(records, ref_records)
    if div is None:
        print(f"same: all {len(records)} records equal")
        return 0
    print(div.describe())
    return 1


def _stage1_inputs(root: Path) -> str:
    """Digest of stage1_train's dependencies and params as dvc.lock records them (code, data and params: what
    the trace depends on besides the machine)."""
    import hashlib
    import json

    import yaml

    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["stage1_train"]
    except (OSError, KeyError, TypeError):
        return "no dvc.lock entry"
    return hashlib.sha256(json.dumps({"deps": lock.get("deps"), "params": lock.get("params")},
                                     sort_keys=True).encode()).hexdigest()[:16]


def _commit(root: Path) -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _libraries() -> dict[str, str]:
    """Versions and code paths of the kernel libraries in this process (threadpoolctl: each BLAS / OpenMP
    runtime, its version and the core type it runs)."""
    import numpy
    import torch
    from threadpoolctl import threadpool_info

    mkl = [ln.strip(" -") for ln in torch.__config__.show().splitlines() if "Math Kernel Library" in ln]
    libs = {"torch": torch.__version__, "torch CPU capability": torch.backends.cpu.get_cpu_capability(),
            "torch MKL": mkl[0] if mkl else "none", "numpy": numpy.__version__,
            "glibc": " ".join(platform.libc_ver())}
    for info in threadpool_info():
        libs[f"{info['internal_api']} {Path(info['filepath']).name}"] = (
            f"version {info.get('version')}, {info.get('architecture') or '-'}, {info['num_threads']} threads")
    return libs


if __name__ == "__main__":
    sys.exit(main())
