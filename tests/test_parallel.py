"""gcseg.parallel: results in the items' order whatever the number of workers, one thread per worker, a
worker's error raised in the caller with its message, and the `jobs` checks."""

from __future__ import annotations

import os
from functools import partial

import pytest

from gcseg.errors import ConfigError
from gcseg.parallel import available_cores, cgroup_cpu_limit, map_ordered, resolve_jobs


def test_resolve_jobs():
    assert resolve_jobs(0, 100) == min(available_cores(), 100)
    assert resolve_jobs(0, 1) == 1
    assert resolve_jobs(4, 3) == 3 and resolve_jobs(2, 5) == 2
    assert resolve_jobs(3, 0) == 1  # nothing to do: no pool
    with pytest.raises(ConfigError, match="jobs = -1"):
        resolve_jobs(-1, 5)


def test_two_workers_give_the_serial_results_in_order():
    items = list(range(12))
    assert map_ordered(partial(pow, 3), items, jobs=2, desc="t", progress=False) == [3**i for i in items]
    assert map_ordered(partial(pow, 3), items, jobs=1, desc="t", progress=False) == [3**i for i in items]


def test_workers_run_one_thread_each_and_the_caller_keeps_its_settings():
    before = os.environ.get("OMP_NUM_THREADS")
    got = map_ordered(os.getenv, ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"], jobs=2,
                      desc="t", progress=False)
    assert got == ["1", "1", "1"]
    assert os.environ.get("OMP_NUM_THREADS") == before


def test_workers_run_the_kernels_this_process_runs():
    """This test process imported numpy before gcseg's OPENBLAS_CORETYPE pin (on an AVX-512 CPU: native SkylakeX
    kernels, the pin Haswell) and MinkowskiEngine's OpenBLAS after it: the workers' numpy must run what numpy runs
    here, or superpoints differ by the worker count."""
    import operator

    from gcseg.parallel import numpy_openblas_architecture

    here = numpy_openblas_architecture()
    assert map_ordered(operator.call, [numpy_openblas_architecture] * 2, jobs=2, desc="t", progress=False) == [here,
                                                                                                             here]


def test_a_workers_error_reaches_the_caller():
    with pytest.raises(ConfigError, match="jobs = -2 must be >= 0"):
        map_ordered(partial(resolve_jobs, num_items=1), [1, -2, 3], jobs=2, desc="t", progress=False)


def test_a_killed_worker_is_a_clear_error():
    """A worker that dies without an error of its own (OOM killer, a signal) is named, with the fix."""
    from gcseg.parallel import ResourceError

    with pytest.raises(ResourceError, match="--jobs 1"):  # os._exit: the worker ends without raising
        map_ordered(os._exit, [3, 3], jobs=2, desc="t", progress=False)


def test_a_containers_cpu_quota_caps_the_cores(tmp_path):
    assert cgroup_cpu_limit(tmp_path) is None  # no cgroup files: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # docker --cpus 1.5: 2 workers
    assert cgroup_cpu_limit(tmp_path) == 2
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    assert cgroup_cpu_limit(v1) == 4
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("module", ["synth", "superpoints", "keyframe_superpoints", "sam_keyframes", "baselines"])
def test_every_parallel_stage_takes_the_same_jobs_option(module):
    """The five stages that spread scenes over workers declare --jobs once (stages._jobs): the same env variable,
    range and help; a negative count is a usage error, not a crash."""
    import importlib

    from typer.testing import CliRunner

    app = importlib.import_module(f"stages.{module}").app
    env = {"COLUMNS": "300", "NO_COLOR": "1", "TERM": "dumb"}
    res = CliRunner().invoke(app, ["--help"], env=env)
    assert res.exit_code == 0 and "--jobs" in res.output and "GCSEG_JOBS" in res.output
    assert ("SAM runs in one process" in res.output) == (module in ("sam_keyframes", "baselines"))
    bad = CliRunner().invoke(app, ["--jobs", "-1"], env=env)
    assert bad.exit_code == 2 and "Invalid value for '--jobs'" in bad.output
