"""Every DVC stage's deps cover every project file its command can import (static import closure of
stages/<name>.py, gcseg.dvc_deps) and every data path its command reads, so that `dvc repro` reruns a stage
whenever something it runs or reads changes. The code deps are generated: `gcseg dvc-deps --write`."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gcseg import dvc_deps
from gcseg.dvc_deps import FIX, ModuleIndex, Problem, check, collapse, import_closure, regenerate, rewrite

ROOT = Path(__file__).resolve().parents[1]


def assert_deps_complete(dvc_path: Path) -> None:
    problems = check(ROOT, dvc_path)
    assert not problems, "\n".join([str(p) for p in problems] + [f"fix: {FIX}"])
    old, new = regenerate(ROOT, dvc_path)
    assert old == new, f"{dvc_path}: code deps are complete but not in the generated form; fix: {FIX}"


def test_every_stage_dep_list_covers_its_import_closure() -> None:
    assert_deps_complete(ROOT / "dvc.yaml")


def test_a_removed_dep_fails_naming_the_stage_and_file(tmp_path: Path) -> None:
    text = (ROOT / "dvc.yaml").read_text()
    eval_at = text.index("\n  eval:\n")
    line = "      - gcseg/geometry.py\n"
    at = text.index(line, eval_at)
    broken = tmp_path / "dvc.yaml"
    broken.write_text(text[:at] + text[at + len(line):])

    with pytest.raises(AssertionError) as failure:
        assert_deps_complete(broken)
    message = str(failure.value)
    assert "stage 'eval' runs gcseg/geometry.py" in message and FIX in message
    assert [p for p in check(ROOT, broken) if p.kind == "missing"] == [
        Problem("eval", "missing", "gcseg/geometry.py", check_via(broken))]
    # the command puts it back, byte for byte
    assert regenerate(ROOT, broken)[1] == text


def check_via(dvc_path: Path) -> str:
    """The importer the closure reports for gcseg/geometry.py in eval (a shortest chain, not hard-coded)."""
    index = ModuleIndex.build(ROOT)
    return import_closure(index, "stages.eval")["gcseg/geometry.py"] or ""


def test_cli_check_and_write(tmp_path: Path) -> None:
    from stages.cli import app

    text = (ROOT / "dvc.yaml").read_text()
    copy = tmp_path / "dvc.yaml"
    copy.write_text(text.replace("      - gcseg/atomic.py\n", "", 1))
    runner = CliRunner()
    ok = runner.invoke(app, ["dvc-deps", "--root", str(ROOT), "--dvc-yaml", str(ROOT / "dvc.yaml")])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["dvc-deps", "--root", str(ROOT), "--dvc-yaml", str(copy)])
    assert bad.exit_code == 1 and "gcseg/atomic.py" in bad.output and "dvc-deps --write" in bad.output
    fixed = runner.invoke(app, ["dvc-deps", "--write", "--root", str(ROOT), "--dvc-yaml", str(copy)])
    assert fixed.exit_code == 0 and copy.read_text() == text, fixed.output


def test_rewrite_touches_only_code_deps() -> None:
    """Scrambled code deps (two dropped, one stale) come back exactly; comments, data deps, params and outs
    are never touched."""
    text = (ROOT / "dvc.yaml").read_text()
    lines = text.splitlines(keepends=True)
    synth_deps = [i for i, x in enumerate(lines) if x.strip() == "- stages/synth.py"][0]
    scrambled = lines[:synth_deps] + ["      - gcseg/not_imported.py\n"] + lines[synth_deps + 2:]
    scrambled_text = "".join(scrambled)
    wanted = dvc_deps.generate(ROOT)
    assert rewrite(scrambled_text, wanted) == text
    assert yaml.safe_load(rewrite(scrambled_text, wanted)) == yaml.safe_load(text)


def test_rewrite_adds_a_deps_block_and_keeps_comments() -> None:
    text = ("# top comment\nstages:\n  a:\n    cmd: >-\n      python -m stages.a --x data/in\n"
            "    # a comment between keys\n    outs:\n      - data/out\n"
            "  b:\n    cmd: python -m stages.b\n    deps:\n      # data first\n      - data/in  # why\n"
            "      - gcseg/old.py  # kept if still generated\n      - gcseg/gone.py\n    params: [x]\n")
    new = rewrite(text, {"a": ["stages/a.py"], "b": ["stages/b.py", "gcseg/old.py"]})
    assert new == ("# top comment\nstages:\n  a:\n    cmd: >-\n      python -m stages.a --x data/in\n"
                   "    deps:\n      - stages/a.py\n"
                   "    # a comment between keys\n    outs:\n      - data/out\n"
                   "  b:\n    cmd: python -m stages.b\n    deps:\n      # data first\n      - data/in  # why\n"
                   "      - stages/b.py\n      - gcseg/old.py  # kept if still generated\n    params: [x]\n")


def _write(root: Path, rel: str, text: str = "") -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_closure_follows_every_kind_of_import(tmp_path: Path) -> None:
    """Relative imports, `from pkg import submodule`, imports inside functions, importlib with a literal or an
    f-string name, package __init__ files; not `if TYPE_CHECKING:` blocks, nor third-party modules."""
    for rel in ("stages/__init__.py", "gcseg/__init__.py", "gcseg/unused.py", "gcseg/typing_only.py",
                "gcseg/sub/__init__.py", "gcseg/sub/leaf.py", "gcseg/dyn/__init__.py", "gcseg/dyn/a_backend.py",
                "gcseg/dyn/b_backend.py", "gcseg/dyn/other.py", "gcseg/literal.py"):
        _write(tmp_path, rel)
    _write(tmp_path, "stages/s.py", "import numpy\nfrom stages import _c\n\ndef main():\n"
                                    "    from gcseg.pkg import mod\n    from gcseg import sub\n")
    _write(tmp_path, "stages/_c.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                     "    import gcseg.typing_only\nelse:\n    import gcseg.literal\n")
    _write(tmp_path, "gcseg/pkg/__init__.py", "from .mod import f\n")
    _write(tmp_path, "gcseg/pkg/mod.py", "from ..sub.leaf import g\nimport importlib\n"
                                         "importlib.import_module(f'gcseg.dyn.{1}_backend')\n")
    index = ModuleIndex.build(tmp_path)
    closure = import_closure(index, "stages.s")
    assert set(closure) == {"stages/__init__.py", "stages/s.py", "stages/_c.py", "gcseg/__init__.py",
                            "gcseg/literal.py", "gcseg/pkg/__init__.py", "gcseg/pkg/mod.py", "gcseg/sub/__init__.py",
                            "gcseg/sub/leaf.py", "gcseg/dyn/__init__.py", "gcseg/dyn/a_backend.py",
                            "gcseg/dyn/b_backend.py"}
    assert closure["gcseg/sub/leaf.py"] == "gcseg/pkg/mod.py"
    # whole sub-packages become one entry, partly imported ones stay files; the stage's module first
    assert collapse(closure, index, "stages/s.py") == [
        "stages/s.py", "stages/__init__.py", "stages/_c.py", "gcseg/__init__.py", "gcseg/dyn/__init__.py",
        "gcseg/dyn/a_backend.py", "gcseg/dyn/b_backend.py", "gcseg/literal.py", "gcseg/pkg", "gcseg/sub"]


def test_a_computed_import_name_is_an_error(tmp_path: Path) -> None:
    from gcseg.errors import ConfigError

    _write(tmp_path, "stages/__init__.py")
    _write(tmp_path, "stages/s.py", "import importlib\nname = 'x'\nimportlib.import_module(name)\n")
    with pytest.raises(ConfigError, match=r"stages/s.py: line 3"):
        import_closure(ModuleIndex.build(tmp_path), "stages.s")


def _path_args(cmd: str) -> dict[str, str]:
    """--option VALUE pairs of a stage cmd (flags without a value are skipped)."""
    words = shlex.split(cmd)
    return {w: words[i + 1] for i, w in enumerate(words[:-1])
            if w.startswith("--") and not words[i + 1].startswith("--")}


def _related(a: str, b: str) -> bool:
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@pytest.mark.parametrize("name", list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]))
def test_every_path_a_stage_reads_is_a_dep(name: str) -> None:
    """Each path the cmd passes is an output of the stage or a dep (params.yaml is tracked by `params:`)."""
    st = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in st.get("deps", [])]
    outs = [o if isinstance(o, str) else next(iter(o)) for k in ("outs", "metrics", "plots") for o in st.get(k, [])]
    for option, value in _path_args(st["cmd"]).items():
        if option == "--params":
            continue
        assert any(_related(value, p) for p in deps + outs), \
            f"stage {name!r} reads {option} {value} but no dep covers it: add `- {value}` to its deps in dvc.yaml"
