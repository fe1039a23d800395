"""gcseg.determinism: torch's deterministic mode (warn-only) without importing torch._dynamo; the CPU kernel pins."""

import subprocess
import sys

CODE = """
import sys, torch
from gcseg.determinism import configure_torch
configure_torch()
assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
print("dynamo" if "torch._dynamo" in sys.modules else "lean")
"""


def test_deterministic_mode_without_the_compiler_stack():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "lean"  # stage start-up does not pay for torch._inductor / torch._dynamo


PINS = """
import json, os, torch
import gcseg
from gcseg.determinism import CPU_KERNEL_PINS
x = torch.linspace(0, 1, 257)
(x * x).sum()  # a vectorised kernel has dispatched: the capability is fixed from here on
print(json.dumps({"env": {k: os.environ.get(k) for k in CPU_KERNEL_PINS},
                  "aten": torch.backends.cpu.get_cpu_capability()}))
"""


def _pins(extra_env):  # type: ignore[no-untyped-def]
    import json
    import os

    from gcseg.determinism import CPU_KERNEL_PINS, NATIVE_KERNELS_ENV

    env = {k: v for k, v in os.environ.items() if k not in CPU_KERNEL_PINS and k != NATIVE_KERNELS_ENV}
    out = subprocess.run([sys.executable, "-c", PINS], capture_output=True, text=True, timeout=300,
                         env={**env, **extra_env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_importing_gcseg_pins_the_cpu_kernel_paths():
    """torch imported first, gcseg after it, then the first kernel: the pins still hold (read lazily)."""
    import pytest

    from gcseg.determinism import CPU_KERNEL_PINS, _has_avx2

    if not _has_avx2():
        pytest.skip("no AVX2 + FMA: nothing is pinned on this CPU")
    got = _pins({})
    assert got["env"] == CPU_KERNEL_PINS
    assert got["aten"] == "AVX2"


def test_a_users_own_kernel_settings_win_and_native_opts_out():
    got = _pins({"MKL_CBWR": "AUTO"})
    assert got["env"]["MKL_CBWR"] == "AUTO"
    native = _pins({"GCSEG_NATIVE_KERNELS": "1"})
    assert all(v is None for v in native["env"].values())
