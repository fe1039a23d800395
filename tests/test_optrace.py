"""gcseg.optrace: the op trace of a training step is the same bits run to run, covers every kind of record, and
`first_divergence` names the op where two runs part (the kernel that summed in another order)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from gcseg.optrace import OpTracer, digest, first_divergence, load_trace, save_trace
from gcseg.train.loop import TrainConfig, train
from gcseg.train.toy import tiny_model_config, write_box_samples

MODEL = dict(hidden_dim=16, num_queries=4, ffn_dim=16, planes=(8,) * 8, max_attn_voxels=100)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("optrace")
    return write_box_samples(d, scenes=2, samples_per_scene=1, seed=3, n_boxes=3, points_per_box=120,
                             floor_points=100)


def _trace(files: list[Path], out: Path, steps: int = 2) -> list[dict]:
    torch.set_num_threads(1)
    with OpTracer(steps=steps) as tr:
        train(TrainConfig(epochs=3, lr=1e-3, batch_size=1, bn_recompute_batches=0), files, out,
              model_cfg=tiny_model_config(**MODEL), seed=0, progress=False)
    assert tr.finished and not tr.recording
    return tr.records


def test_trace_is_reproducible_and_complete(files, tmp_path):
    a = _trace(files, tmp_path / "a")
    b = _trace(files, tmp_path / "b")
    assert first_divergence(a, b) is None
    assert [r["digest"] for r in a] == [r["digest"] for r in b]
    kinds = {r["kind"] for r in a}
    assert kinds == {"op", "module", "grad", "param"}
    assert {r["step"] for r in a} == {0, 1}  # stopped after the second optimiser step (TraceDone swallowed)
    assert not (tmp_path / "a" / "model.pt").exists()  # the run was cut short there
    wheres = {r["where"] for r in a}
    assert any(w.startswith("backbone") for w in wheres) and any(w.startswith("decoder") for w in wheres)
    assert any(w.startswith("backward of ") for w in wheres) and {"setup", "loss", "optimizer"} <= wheres
    names = {r["name"] for r in a if r["kind"] == "param"}
    assert names == {n for n, _ in torch.nn.Module.named_parameters(_model())}
    # uninitialised memory is recorded without a digest (it would differ run to run)
    assert all(r["digest"] == [None] * len(r["shape"]) for r in a if r["name"].startswith("empty."))


def _model() -> torch.nn.Module:
    from gcseg.models.mask_model import build_model

    return build_model(tiny_model_config(**MODEL))


def test_first_divergence_names_the_op_that_computes_other_bits(files, tmp_path, monkeypatch):
    ref = _trace(files, tmp_path / "ref")
    # a kernel that computes other bits with the same ops (as another summation order would): LayerNorm with
    # another epsilon
    def perturbed(self, x):
        return torch.nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, 2 * self.eps)

    monkeypatch.setattr(torch.nn.LayerNorm, "forward", perturbed)
    other = _trace(files, tmp_path / "other")
    div = first_divergence(other, ref)
    assert div is not None and div.reason == "digest"
    assert div.a["kind"] == "op" and div.a["name"] == "native_layer_norm.default"
    assert div.a["where"].startswith("decoder")
    assert all(x["digest"] == y["digest"] for x, y in zip(other[:div.index], ref[:div.index]))
    assert "native_layer_norm.default" in div.describe() and f"{div.index} equal records before" in div.describe()


def test_sequence_and_length_divergence():
    rec = {"kind": "op", "name": "mm.default", "where": "x", "shape": [[2, 2]], "dtype": ["float32"],
           "digest": ["00"], "step": 0, "i": 0}
    assert first_divergence([rec], [dict(rec, name="addmm.default")]).reason == "sequence"
    d = first_divergence([rec, rec], [rec])
    assert d.reason == "length" and d.index == 1 and "ends earlier" in d.describe()
    assert first_divergence([rec], [dict(rec)]) is None


def test_save_is_deterministic_and_load_checks_the_file(tmp_path):
    rec = {"kind": "op", "name": "mm.default", "where": "x", "shape": [[2]], "dtype": ["float32"],
           "digest": [digest(torch.tensor([1.0, 2.0]))], "step": 0, "i": 0}
    save_trace(tmp_path / "a.jsonl.gz", [rec], {"cpu": "test"})
    save_trace(tmp_path / "b.jsonl.gz", [rec], {"cpu": "test"})
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    meta, records = load_trace(tmp_path / "a.jsonl.gz")
    assert meta == {"cpu": "test"} and records == [rec]
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="bad.jsonl.gz"):
        load_trace(tmp_path / "bad.jsonl.gz")
    with gzip.open(tmp_path / "other.jsonl.gz", "wt") as f:
        f.write('{"schema": "something.else"}\n')
    with pytest.raises(ValueError, match="not a gcseg.optrace"):
        load_trace(tmp_path / "other.jsonl.gz")


def test_digest_is_of_the_values():
    a = torch.arange(6, dtype=torch.float32)
    assert digest(a) == digest(a.clone()) == digest(a.reshape(2, 3).t().contiguous().t().reshape(-1))
    assert digest(a) != digest(torch.nextafter(a, torch.full_like(a, 100.0)))
    assert digest(torch.tensor(3)) == digest(torch.tensor(3))  # 0-dim
    assert digest(torch.empty(0)) == digest(torch.empty(0, 3))
    assert digest(torch.tensor([2.0]).expand(1)) == digest(torch.tensor([2.0]))  # broadcast views (stride 0)
    assert digest(torch.tensor(2.0).expand(3)) == digest(torch.full((3,), 2.0))
    with pytest.raises(ValueError):
        OpTracer(steps=0)


def test_committed_reference_matches_the_lock():
    """metrics/reliability/optrace_epyc.jsonl.gz was traced on Stage 1's current code, params and data (dvc.lock's
    stage1_train inputs): after a change to them, re-trace it (`python scripts/train_fingerprint.py --trace
    metrics/reliability/optrace_epyc.jsonl.gz`, 7 s once the data stages are in the workspace) so that a comparison
    on another machine names the CPU's difference, not the code's."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("train_fingerprint", root / "scripts/train_fingerprint.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    meta, records = load_trace(root / "metrics/reliability/optrace_epyc.jsonl.gz")
    assert meta["stage1_inputs"] == script._stage1_inputs(root), "re-trace the committed reference (docstring)"
    assert len(records) > 1000 and meta["steps"] == 2


def test_a_run_shorter_than_the_traced_steps_is_not_finished(files, tmp_path):
    torch.set_num_threads(1)
    with OpTracer(steps=100) as tr:  # 2 samples x 1 epoch at batch 1: 2 steps
        train(TrainConfig(epochs=1, lr=1e-3, batch_size=1, bn_recompute_batches=0), files, tmp_path / "m",
              model_cfg=tiny_model_config(**MODEL), seed=0, progress=False)
    assert not tr.finished and {0, 1} <= {r["step"] for r in tr.records}  # then what follows the last step
