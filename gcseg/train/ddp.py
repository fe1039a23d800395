"""Data-parallel training helpers (torchrun / DistributedDataParallel; gloo on CPU, nccl on GPU).

Exactness: a DDP run with global batch B over W ranks reproduces a single-process run with batch B (losses to
float rounding) because
  * each rank gets a contiguous share of every global batch (`shard`), and every sample's randomness is seeded
    by (seed, epoch, sample index), not by the rank;
  * each rank's loss is scaled by n_rank * W / B, so DDP's gradient average equals the single-process mean;
  * BatchNorm is replaced by `DistBatchNorm`, which computes the batch statistics over all ranks' voxels
    (differentiable all-reduce; works with gloo on CPU, where torch's SyncBatchNorm refuses CPU tensors).
    Voxel counts differ per rank, so statistics are summed with counts, never averaged per rank.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


class _AllReduceSum(torch.autograd.Function):
    """Differentiable all-reduce (sum): every rank's output is the sum of all inputs, so the gradient of an
    input is the sum over ranks of the output gradients (what torch.distributed.nn.functional.all_reduce, now
    deprecated, computes)."""

    @staticmethod
    def forward(ctx: object, x: Tensor) -> Tensor:  # type: ignore[override]
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:  # type: ignore[override]
        g = grad.clone()
        dist.all_reduce(g)
        return g


def all_reduce_autograd(x: Tensor) -> Tensor:
    return _AllReduceSum.apply(x)  # type: ignore[no-any-return]


class DistBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics span all ranks' rows (two-pass mean/variance, exact counts).

    Accepts a plain [V, C] tensor or anything with `.feats` and `.replace(feats)` (gcseg.sparse's SparseTensor)."""

    def _normalize(self, x: Tensor) -> Tensor:
        if not self.training or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        n = x.new_tensor([float(x.shape[0])])
        tot = all_reduce_autograd(torch.cat([x.sum(0), n]))
        count = tot[c]
        mean = tot[:c] / count
        var = all_reduce_autograd(((x - mean) ** 2).sum(0)) / count
        with torch.no_grad():
            if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                unbiased = var.detach() * count / (count - 1).clamp_min(1)
                self.running_var.mul_(1 - m).add_(m * unbiased)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y

    def forward(self, x: Any) -> Any:  # type: ignore[override]
        if isinstance(x, Tensor):
            return self._normalize(x)
        return x.replace(self._normalize(x.feats))


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every nn.BatchNorm1d (incl. subclasses) in place by a DistBatchNorm with the same state."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm1d) and not isinstance(child, DistBatchNorm):
            new = DistBatchNorm(child.num_features, eps=child.eps, momentum=child.momentum, affine=child.affine,
                                track_running_stats=child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            setattr(module, name, new.to(next(child.buffers()).device))
        else:
            convert_batchnorm(child)
    return module


def world() -> tuple[int, int]:
    """(rank, world_size) of the initialised process group, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# Rank 0 alone validates (val_fn) and writes the model while the others wait in the next collective: NCCL's
# default 10-minute timeout would kill a run whose validation on a large val split takes longer.
DIST_TIMEOUT = timedelta(hours=2)


def process_group_backend(cuda: bool) -> str:
    """gloo on CPU; with CUDA, nccl for CUDA tensors and gloo for the CPU ones (the loss sums and the time-budget
    flag are CPU tensors, which NCCL cannot reduce)."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def init_from_env() -> tuple[int, int]:
    """Initialise the process group from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR/PORT) if
    WORLD_SIZE > 1 and no group exists yet; gloo on CPU, nccl with CUDA. Returns (rank, world_size)."""
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws > 1 and not dist.is_initialized():
        dist.init_process_group(process_group_backend(torch.cuda.is_available()), timeout=DIST_TIMEOUT)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return world()


def shard(indices: list[int], rank: int, world_size: int) -> list[int]:
    """This rank's contiguous share of one global batch (sizes differ by at most one)."""
    n = len(indices)
    lo = rank * n // world_size
    hi = (rank + 1) * n // world_size
    return indices[lo:hi]


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum floats over ranks (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
