"""Reproducible torch runs: the switches that make identical inputs give identical bytes (docs/reliability.md).

Seeds are set where randomness is used (per epoch, per sample, per scene); this module sets the process-wide
switches once per stage. Float reductions split across threads (intra-op parallelism in matmul, convolution
backward, sums) are reproducible for a FIXED thread count only: pin it with OMP_NUM_THREADS (or torchrun's
--nproc-per-node with OMP_NUM_THREADS) when artifacts must match across machines."""

from __future__ import annotations

import os
import sys


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
