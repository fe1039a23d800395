"""MinkowskiEngine's CPU gradients are bit-identical run to run with 2 threads (its hash map inserts with
``omp atomic capture``; the backend builds coordinate and kernel maps on one thread, see
``minkowski_backend._one_openmp_thread``). Separate processes: thread scheduling differs between them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("MinkowskiEngine")

SCRIPT = textwrap.dedent("""
    import hashlib, torch
    torch.set_num_threads(2)
    from gcseg.models.backbone import RES16UNET_TINY, Res16UNet
    g = torch.Generator().manual_seed(0)
    xyz = torch.unique(torch.randint(-40, 40, (20000, 3), generator=g), dim=0)
    coords = torch.unique(torch.cat([torch.randint(0, 2, (len(xyz), 1), generator=g), xyz], 1), dim=0)
    torch.manual_seed(0)
    model = Res16UNet(3, RES16UNET_TINY["planes"], RES16UNET_TINY["layers"], "minkowski")
    x = torch.rand(coords.shape[0], 3, generator=torch.Generator().manual_seed(3)).requires_grad_()
    out = model(coords, x)
    sum((f * torch.linspace(-1, 1, f.numel()).view_as(f)).sum() for f, _ in out.levels).backward()
    h = hashlib.sha1(x.grad.numpy().tobytes())
    for f, c in out.levels:
        h.update(f.detach().numpy().tobytes()); h.update(c.numpy().tobytes())
    for p in model.parameters():
        h.update(p.grad.numpy().tobytes())
    print(h.hexdigest())
""")


def test_minkowski_backward_bit_identical_across_runs_with_two_threads():
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    digests = {subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                              check=True).stdout.strip() for _ in range(3)}
    assert len(digests) == 1, f"3 runs gave {len(digests)} different gradients"
