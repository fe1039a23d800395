"""Process parallelism over independent items (scenes, files) for the stages whose work is single-threaded
Python and NumPy (synthetic scenes, superpoints): one worker process per core, each item's result a
deterministic function of the item alone, so outputs do not depend on the number of workers.

Workers are spawned (not forked: a forked copy of a process holding OpenMP / BLAS thread pools can hang) with one
thread per kernel library, so `jobs` workers use `jobs` cores. `--shard i/n` (gcseg's scale-out across machines
or torchrun ranks) picks the items; `jobs` spreads a shard's items over the cores of one machine."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
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


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: a container's or taskset's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int, num_items: int) -> int:
    """Worker processes for `num_items` items: `jobs` (0 = available_cores()), at most one per item, at least 1."""
    if jobs < 0:
        raise ConfigError(f"jobs = {jobs} must be >= 0", fix="give 0 (one per core) or a number of processes")
    n = available_cores() if jobs == 0 else jobs
    return max(1, min(n, num_items))


@contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Children spawned inside inherit one thread per kernel library (this process's loaded pools keep theirs)."""
    saved = {k: os.environ.get(k) for k in _ONE_THREAD}
    os.environ.update({k: "1" for k in _ONE_THREAD})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def map_ordered(fn: Callable[[T], R], items: Sequence[T] | Iterable[T], *, jobs: int, desc: str,
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
        with _single_threaded_children():  # workers start on the first submits
            futures = [executor.submit(fn, item) for item in items]
        return [f.result() for f in tqdm(futures, desc=desc, unit=unit, disable=disable)]
    except BrokenProcessPool as exc:  # a worker was killed (out of memory, a signal): no error of its own to show
        raise ResourceError(f"a worker process of {desc!r} died before finishing its item ({exc})",
                            fix=f"rerun with fewer workers (--jobs 1 or env {JOBS_ENV}=1); if memory ran out, "
                                "that is the likely cause") from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
