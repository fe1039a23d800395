"""Make `torchvision.ops.nms` usable when torchvision's compiled ops cannot load.

torchvision 0.28's `_C.so` links CUDA libraries that a CPU-only torch 2.13 lacks, so `import torchvision` fails
with "operator torchvision::nms does not exist" (its meta registrations refer to an op that never got defined).
SAM's automatic mask generator needs only `nms` (through `batched_nms`). `ensure_torchvision_ops()`, called
before the first `import torchvision`, loads `_C` if it can and otherwise defines `torchvision::nms` (and the
`qnms` schema) with a pure-torch CPU kernel. It never probes `torch.ops.torchvision.nms` first: in an
environment where `_C` does load, that probe would define a duplicate and `_C` would abort on registration.
See shared/notes/dependencies.md section 4.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_LIB: torch.library.Library | None = None  # kept referenced: dropping it unregisters the op
_DONE = False


def nms_reference(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS on (N, 4) x1,y1,x2,y2 boxes: indices (int64) of kept boxes by descending score."""
    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=dets.device)
    dets, scores = dets.float(), scores.float()
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = dets[order]
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    iou = inter / (area[:, None] + area[None, :] - inter)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in range(len(boxes)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def _compiled_ops_path() -> Path | None:
    spec = importlib.util.find_spec("torchvision")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("_C*.so")) + sorted(
        Path(spec.submodule_search_locations[0]).glob("_C*.pyd"))
    return found[0] if found else None


def ensure_torchvision_ops() -> bool:
    """Idempotent. Returns True if torchvision's own compiled ops loaded, False if the fallback is in use."""
    global _LIB, _DONE
    if _DONE:
        return _LIB is None
    native = False
    so = _compiled_ops_path()
    if so is not None:
        try:
            torch.ops.load_library(str(so))
            native = True
        except (OSError, RuntimeError, ImportError):
            native = False
    if not native:
        _LIB = torch.library.Library("torchvision", "DEF")
        _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.impl("nms", nms_reference, "CPU")
    _DONE = True
    if not native and importlib.util.find_spec("torchvision") is not None:
        import torchvision.extension

        torchvision.extension._has_ops = lambda: True  # its ops check this flag before calling nms
    return native
