"""gcseg: class-agnostic 3D instance segmentation from posed RGB-D scans by granularity-consistent
2D mask tracking (arXiv 2511.00785). The library never reads params.yaml; `stages/` does."""

from gcseg.determinism import pin_cpu_kernels

__version__ = "0.1.0"

pin_cpu_kernels()  # before any torch / MKL kernel runs: machine-independent training bytes (gcseg.determinism)
