"""gcseg.determinism.configure_torch: torch's deterministic mode (warn-only) without importing torch._dynamo."""

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
