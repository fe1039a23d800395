"""Reproducible torch runs: the switches that make identical inputs give identical bytes (docs/reliability.md).

Seeds are set where randomness is used (per epoch, per sample, per scene); this module sets the process-wide
switches once per stage. Float reductions split across threads (intra-op parallelism in matmul, convolution
backward, sums) are reproducible for a FIXED thread count only: pin it with OMP_NUM_THREADS (or torchrun's
--nproc-per-node with OMP_NUM_THREADS) when artifacts must match across machines.

Kernel libraries also pick their code path by the CPU (AVX-512 or AVX2, Intel or AMD), and each path sums in
its own order: measured on one machine, 28 Stage 1 steps give a different model.pt with torch's AVX-512 and AVX2
kernels, and again with MKL's default and AVX2 branches. `pin_cpu_kernels` (run when gcseg is imported) pins
every library to a path that any x86-64 CPU with AVX2 runs alike, so training bytes do not depend on the machine's
instruction set (docs/reliability.md)."""

from __future__ import annotations

import os
import platform
import sys

# read by each library when it first dispatches (ATen, MKL, oneDNN) or loads (OpenBLAS: MinkowskiEngine's GEMMs)
CPU_KERNEL_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",   # torch's vectorised kernels: AVX2, not AVX-512
    "MKL_CBWR": "COMPATIBLE",        # MKL's conditional numerical reproducibility: the one branch Intel documents
                                     # as giving the same results on Intel and non-Intel CPUs (its AVX2 branch
                                     # falls back to AUTO on AMD)
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS' AVX2 + FMA kernels
}
NATIVE_KERNELS_ENV = "GCSEG_NATIVE_KERNELS"  # =1: keep each library's fastest path (bytes then differ by CPU)


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"avx2", "fma"} <= flags
    except OSError:
        pass
    return False


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), which the figures of a run depend on (docs/reliability.md)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def pin_cpu_kernels() -> dict[str, str]:
    """Set CPU_KERNEL_PINS in the environment where not set already (a user's own value wins). Only on x86-64
    Linux CPUs with AVX2 + FMA (elsewhere the pinned paths do not exist) and unless GCSEG_NATIVE_KERNELS=1.
    Effective when run before torch's first kernel, MKL's first call and MinkowskiEngine's import: gcseg's
    `__init__` runs it, and gcseg imports torch lazily. Returns the values in force."""
    if os.environ.get(NATIVE_KERNELS_ENV) == "1" or platform.machine() not in ("x86_64", "AMD64") or not _has_avx2():
        return {}
    for key, value in CPU_KERNEL_PINS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in CPU_KERNEL_PINS}


def configure_torch() -> dict[str, int]:
    """Deterministic kernels where torch has them (warn, not fail, where it has none), no cuDNN autotuning
    (it picks kernels by timing), deterministic cuBLAS workspaces. Returns the thread counts in use."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS initialises (CUDA only)
    import torch

    # = torch.use_deterministic_algorithms(True, warn_only=True) without its `import torch._inductor.config`
    # (it pulls in torch._dynamo: ~1.5 s CPU per stage start on 2 cores). Inductor's flag only matters for
    # torch.compile'd code, which gcseg does not use; it is still set when inductor is already loaded.
    if hasattr(torch._C, "_set_deterministic_algorithms"):
        torch._C._set_deterministic_algorithms(True, warn_only=True)
        if "torch._inductor.config" in sys.modules:
            sys.modules["torch._inductor.config"].deterministic = True
    else:  # a torch without the private switch
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    return {"intra_op_threads": torch.get_num_threads(), "inter_op_threads": torch.get_num_interop_threads()}
