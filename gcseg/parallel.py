"""Process parallelism over independent items (scenes, files) for the stages whose work is single-threaded
Python and NumPy (synthetic scenes, superpoints): one worker process per core, each item's result a
deterministic function of the item alone, so outputs do not depend on the number of workers.

Workers are spawned (not forked: a forked copy of a process holding OpenMP / BLAS thread pools can hang) with one
thread per kernel library, so `jobs` workers use `jobs` cores. `--shard i/n` (gcseg's scale-out across machines
or torchrun ranks) picks the items; `jobs` spreads a shard's items over the cores of one machine."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from gcseg.errors import ConfigError, GcsegError

class ResourceError(GcsegError):
    """A worker process died (killed for memory or by a signal)."""


T = TypeVar("T")
R = TypeVar("R")

JOBS_ENV = "GCSEG_JOBS"  # the `--jobs` default of the stages that take it (0 = one per available core)
JOBS_HELP = (f"Worker processes on this machine (0 = one per available core; env {JOBS_ENV}). Outputs do not "
             "depend on it.")
# thread counts of the kernel libraries, read when each loads: a worker is one core
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Whole CPUs a container's CPU quota allows (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cfs_period_us`),
    rounded up; None without a quota. A `docker run --cpus 2` on a 64-core host still shows 64 cores to
    sched_getaffinity."""
    import math

    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
        v1 = root / "cpu"
        if (v1 / "cpu.cfs_quota_us").is_file():
            quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
            period_us = int((v1 / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 or period_us <= 0 else max(1, math.ceil(quota_us / period_us))
    except (OSError, ValueError):
        pass
    return None


def available_cores() -> int:
    """Cores this process may use: its CPU affinity (taskset's share, not the host's), capped by a container's CPU
    quota."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = max(1, os.cpu_count() or 1)
    limit = cgroup_cpu_limit()
    return min(cores, limit) if limit else cores


def resolve_jobs(jobs: int, num_items: int) -> int:
    """Worker processes for `num_items` items: `jobs` (0 = available_cores()), at most one per item, at least 1."""
    if jobs < 0:
        raise ConfigError(f"jobs = {jobs} must be >= 0", fix="give 0 (one per core) or a number of processes")
    n = available_cores() if jobs == 0 else jobs
    return max(1, min(n, num_items))


def numpy_openblas_architecture() -> str | None:
    """The kernel set (OpenBLAS core type, e.g. Haswell, SkylakeX) of numpy's OpenBLAS in this process (loaded by
    this call); None where numpy uses another BLAS or it cannot be told. Other OpenBLAS copies may run other kernels
    (MinkowskiEngine's system OpenBLAS, loaded after gcseg's pin), so numpy's own (numpy.libs) is asked first."""
    import numpy  # noqa: F401 - loads numpy's OpenBLAS
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("internal_api") == "openblas" and i.get("architecture")]
    own = [i for i in blas if Path(i["filepath"]).parent.name == "numpy.libs"]
    archs = {i["architecture"] for i in own or blas}
    return archs.pop() if len(archs) == 1 else None


@contextmanager
def _worker_env() -> Iterator[None]:
    """Children spawned inside run one thread per kernel library and the OpenBLAS kernels numpy runs here: where
    numpy was imported before gcseg pinned OPENBLAS_CORETYPE (gcseg.determinism), this process runs the CPU's
    native kernels while a child would load the pinned ones, and a few results (e.g. eigenvectors of
    near-degenerate 3 x 3 covariances, so superpoints) differ in the last bits between the two. This process's
    loaded libraries keep their settings."""
    env = {k: "1" for k in _ONE_THREAD}
    if arch := numpy_openblas_architecture():
        env["OPENBLAS_CORETYPE"] = arch
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def map_ordered(fn: Callable[[T], R], items: Iterable[T], *, jobs: int, desc: str,
                unit: str = "scene", progress: bool | None = None) -> list[R]:
    """[fn(item) for item in items] with `jobs` processes (resolve_jobs), results in the items' order, with a
    progress bar (`progress` None: on a terminal only, so DVC logs stay clean). `fn` and the items must pickle
    (a module-level function, a functools.partial of one). The first item to fail raises its error here; items
    not started are cancelled and the ones running finish before this returns (so a caller's atomic output is
    cleaned up after them)."""
    items = list(items)
    n = resolve_jobs(jobs, len(items))
    disable = None if progress is None else not progress
    if n == 1:
        return [fn(item) for item in tqdm(items, desc=desc, unit=unit, disable=disable)]
    executor = ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"))
    try:
        with _worker_env():  # workers start on the first submits
            futures = [executor.submit(fn, item) for item in items]
        return [f.result() for f in tqdm(futures, desc=desc, unit=unit, disable=disable)]
    except BrokenProcessPool as exc:  # a worker was killed (out of memory, a signal): no error of its own to show
        raise ResourceError(f"a worker process of {desc!r} died before finishing its item ({exc})",
                            fix=f"rerun with fewer workers (--jobs 1 or env {JOBS_ENV}=1); if memory ran out, "
                                "that is the likely cause") from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
