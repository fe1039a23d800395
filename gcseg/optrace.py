"""Op-level trace of a training step: a digest of every tensor a step computes, in order, to find the first kernel
whose bytes differ between two machines (docs/reliability.md, section 3).

Two machines that train other models from the same inputs differ first at one kernel: every record before it
is equal, so that kernel summed in another order on the two CPUs, and its name says which library computes it.
`OpTracer` records, until `steps` optimiser steps have run:

* `op`: every ATen op's outputs (a `TorchDispatchMode`), tagged with the module it runs in;
* `module`: every module's forward output (MinkowskiEngine's convolutions and poolings call their C++ kernels
  outside ATen's dispatcher, so they show here only, by their module);
* `grad`: every parameter's gradient when autograd has accumulated it (backward order);
* `param`: every parameter after each optimiser step.

Digests are BLAKE2b of the raw bytes (8 bytes, hex): equal digests are equal bits. `first_divergence` compares
two traces. The tracer aborts the run with `TraceDone` after the last traced step, so it can wrap the real
training loop unchanged."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.modules import module as _module
from torch.optim import optimizer as _optimizer
from torch.utils._python_dispatch import TorchDispatchMode

SCHEMA = "gcseg.optrace"
VERSION = 1


class TraceDone(Exception):
    """Raised from the optimiser's step hook after the last traced step (stops the wrapped run)."""


def digest(t: torch.Tensor) -> str:
    """8-byte BLAKE2b of a tensor's values (dtype and shape are recorded beside it)."""
    t = t.detach()
    if t.layout != torch.strided:  # sparse: its coalesced indices and values
        t = t.coalesce()
        return digest(torch.cat([t.indices().flatten().to(torch.float64), t.values().flatten().to(torch.float64)]))
    if t.device.type != "cpu":
        t = t.cpu()
    flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))  # fresh, stride 1 (not a broadcast view)
    return hashlib.blake2b(flat.view(torch.uint8).numpy().tobytes(), digest_size=8).hexdigest()


def _tensors(x: Any) -> Iterator[torch.Tensor]:
    """The tensors in an op's or module's output, in a fixed order (a gcseg.sparse.SparseTensor: its features)."""
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for k in sorted(x, key=str):
            yield from _tensors(x[k])
    elif isinstance(getattr(x, "feats", None), torch.Tensor):  # gcseg.sparse.SparseTensor
        yield x.feats


# ops whose outputs are uninitialised memory: recorded without a digest
_UNINITIALISED = ("empty.", "empty_like.", "empty_strided.", "new_empty.", "new_empty_strided.", "resize_.")


def _record_of(kind: str, name: str, where: str, out: Any) -> dict[str, Any] | None:
    ts = list(_tensors(out))
    if not ts:
        return None
    blind = kind == "op" and name.startswith(_UNINITIALISED)
    return {"kind": kind, "name": name, "where": where,
            "shape": [list(t.shape) for t in ts], "dtype": [str(t.dtype).removeprefix("torch.") for t in ts],
            "digest": [None if blind else digest(t) for t in ts]}


class _Mode(TorchDispatchMode):
    def __init__(self, tracer: OpTracer):
        super().__init__()
        self.tracer = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        if self.tracer.recording and not self.tracer._busy:
            self.tracer._add("op", str(func.overloadpacket.__name__) + "." + func._overloadname, out,
                             self.tracer._where())
        return out


class OpTracer:
    """Context manager recording digests of a run's first `steps` optimiser steps (see the module docstring).

    Usage: `with OpTracer(steps=1) as tr: train(...)`; `TraceDone` ends the run after the last step and is
    swallowed by the context manager; then `tr.records` (`save_trace` writes them), and `tr.finished` says whether
    the run got as far as the last traced step."""

    def __init__(self, steps: int = 1):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = steps
        self.records: list[dict[str, Any]] = []
        self.recording = False
        self._busy = False                    # hashing: the digests' own ops are not the run's
        self._names: dict[int, str] = {}      # id(module) -> qualified name in the traced root
        self._params: dict[int, str] = {}     # id(parameter) -> qualified name
        self._stack: list[str] = []
        self._phase = "setup"                 # outside any module and backward: setup | loss | optimizer
        self._step = 0
        self._handles: list[Any] = []
        self._mode = _Mode(self)

    # -- recording --
    def _where(self) -> str:
        """The module an op runs in, the autograd node it computes the backward of, or the phase."""
        if self._stack:
            return self._stack[-1]
        node = torch._C._current_autograd_node()
        return f"backward of {node.name()}" if node is not None else self._phase

    def _add(self, kind: str, name: str, out: Any, where: str) -> None:
        self._busy = True
        try:
            rec = _record_of(kind, name, where, out)
        finally:
            self._busy = False
        if rec is not None:
            rec["step"] = self._step
            rec["i"] = len(self.records)
            self.records.append(rec)

    def _pre(self, mod: torch.nn.Module, args: Any) -> None:
        if id(mod) not in self._names and not self._stack:  # an untraced root: name its tree, hook its params
            for name, m in mod.named_modules():
                self._names.setdefault(id(m), name or type(m).__name__)
            for name, p in mod.named_parameters():
                if id(p) not in self._params:
                    self._params[id(p)] = name
                    self._handles.append(p.register_post_accumulate_grad_hook(self._grad_hook(name)))
        self._stack.append(self._names.get(id(mod), type(mod).__name__))

    def _post(self, mod: torch.nn.Module, args: Any, out: Any) -> None:
        where = self._stack.pop() if self._stack else type(mod).__name__
        if not self._stack:
            self._phase = "loss"
        if self.recording:
            self._add("module", type(mod).__name__, out, where)

    def _grad_hook(self, name: str):  # noqa: ANN202
        def hook(p: torch.Tensor) -> None:
            if self.recording and p.grad is not None:
                self._add("grad", name, p.grad, name)
        return hook

    def _opt_pre(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._phase = "optimizer"

    def _opt_post(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._phase = "loss"  # until the next forward: the scheduler, the next batch's preparation
        if not self.recording:
            return
        for group in opt.param_groups:
            for p in group["params"]:
                name = self._params.get(id(p), "?")
                self._add("param", name, p, name)
        self._step += 1
        if self._step >= self.steps:
            self.recording = False
            raise TraceDone

    def __enter__(self) -> OpTracer:
        self._handles += [_module.register_module_forward_pre_hook(self._pre),
                          _module.register_module_forward_hook(self._post),
                          _optimizer.register_optimizer_step_pre_hook(self._opt_pre),
                          _optimizer.register_optimizer_step_post_hook(self._opt_post)]
        self._mode.__enter__()
        self.recording = True
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:  # noqa: ANN001
        self.recording = False
        self._mode.__exit__(None, None, None)
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return exc_type is TraceDone

    @property
    def finished(self) -> bool:
        """Whether all `steps` optimiser steps were traced (a run that ends earlier leaves a shorter trace)."""
        return self._step >= self.steps


def save_trace(path: str | Path, records: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """gzip'd JSON lines: a header ({"schema", "version", "meta"}), then one record per line. mtime 0 and sorted
    keys: the same trace gives the same bytes."""
    from gcseg.atomic import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write((json.dumps({"schema": SCHEMA, "version": VERSION, "meta": meta}, sort_keys=True) + "\n").encode())
        for r in records:
            f.write((json.dumps(r, sort_keys=True) + "\n").encode())


def load_trace(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(meta, records) of a trace written by `save_trace`; ValueError naming the file if it is none."""
    path = Path(path)
    try:
        with gzip.open(path, "rt") as f:
            head = json.loads(f.readline())
            if head.get("schema") != SCHEMA or head.get("version") != VERSION:
                raise ValueError(f"{path}: not a {SCHEMA} v{VERSION} trace (header {head})")
            return head["meta"], [json.loads(line) for line in f]
    except (OSError, EOFError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable trace ({exc}); write it again with scripts/train_fingerprint.py "
                         "--trace") from exc


@dataclass(frozen=True)
class Divergence:
    """Where two traces part: `index` into both record lists, the two records, and why ("digest": the same op
    on equal-looking inputs computed other bits; "sequence": the runs executed other ops; "length")."""

    index: int
    reason: str
    a: dict[str, Any] | None
    b: dict[str, Any] | None
    equal_before: int

    def describe(self) -> str:
        r = self.a or self.b or {}
        where = f" in {r.get('where')}" if r.get("where") else ""
        head = (f"first difference at record {self.index} (step {r.get('step')}, {self.equal_before} equal "
                f"records before): {r.get('kind')} {r.get('name')}{where}")
        if self.reason == "digest":
            return head + f", shapes {r.get('shape')} dtypes {r.get('dtype')}: other bits"
        if self.reason == "sequence":
            b = self.b or {}
            return head + f" here, {b.get('kind')} {b.get('name')} there: the runs executed other ops"
        return head + ": one trace ends earlier"


def first_divergence(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> Divergence | None:
    """The first record where two traces differ, or None if they are equal."""
    for i, (ra, rb) in enumerate(zip(a, b)):
        if (ra["kind"], ra["name"], ra["shape"], ra["dtype"]) != (rb["kind"], rb["name"], rb["shape"], rb["dtype"]):
            return Divergence(i, "sequence", ra, rb, i)
        if ra["digest"] != rb["digest"]:
            return Divergence(i, "digest", ra, rb, i)
    if len(a) != len(b):
        n = min(len(a), len(b))
        return Divergence(n, "length", a[n] if n < len(a) else None, b[n] if n < len(b) else None, n)
    return None
