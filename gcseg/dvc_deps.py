"""The code deps of every DVC stage, computed from the imports of its command (a maintenance tool, as spaCy's
weasel generates dvc.yaml). A stage `python -m stages.<name>` runs every project file that module imports,
transitively; if one of them is not a dep in dvc.yaml, changing it leaves the stage "up to date" with stale
artifacts. This module computes that closure statically from the AST (imports anywhere, also inside functions,
since stages import lazily; relative imports; `from pkg import submodule`; `importlib.import_module` with a
literal or f-string name; not `if TYPE_CHECKING:` blocks, which never run) and rewrites only the code entries of
each stage's `deps:` in dvc.yaml, as text, so comments, order, data deps, params and outs stay as they are.

A package folder is listed as one dep when the stage imports every module in it, else the exact files.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gcseg.errors import ConfigError, InputError

PACKAGES = ("gcseg", "stages")  # the project's importable code; everything else is third-party or data
FIX = "gcseg dvc-deps --write  (or: python -m stages.dvc_deps --write)"
_CMD = re.compile(r"^\s*python3?\s+-m\s+(stages(?:\.\w+)+)\b")


@dataclass
class ModuleIndex:
    """Every project module by dotted name -> file path relative to the project root."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)
    _parsed: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, root: str | Path, packages: Iterable[str] = PACKAGES) -> "ModuleIndex":
        root = Path(root)
        index = cls(root)
        for pkg in packages:
            for path in sorted((root / pkg).rglob("*.py")):
                rel = path.relative_to(root)
                if "__pycache__" in rel.parts:
                    continue
                parts = list(rel.with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                index.files[".".join(parts)] = rel.as_posix()
        return index

    def is_package(self, module: str) -> bool:
        return self.files.get(module, "").endswith("/__init__.py")

    def imports(self, module: str) -> list[tuple[str, int]]:
        """Project modules `module` imports (each with the line), parsed once per index."""
        if module not in self._parsed:
            self._parsed[module] = _module_imports(self, module)
        return self._parsed[module]


def _with_parents(index: ModuleIndex, module: str) -> list[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = module.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in index.files]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _dynamic_name(node: ast.Call) -> ast.expr | None:
    """The name argument of `importlib.import_module(...)` / `import_module(...)` / `__import__(...)`."""
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    if name in ("import_module", "__import__") and node.args:
        return node.args[0]
    return None


def _module_imports(index: ModuleIndex, module: str) -> list[tuple[str, int]]:
    rel = index.files[module]
    path = index.root / rel
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise InputError(f"cannot parse ({exc})", path=rel, fix="fix the file; its imports decide the stage deps")
    package = module if index.is_package(module) else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def add(name: str, line: int) -> None:
        # `import gcseg.x.y.f` where f is a function, or a module that does not exist: the parts that exist run
        while name and name not in index.files:
            name = name.rpartition(".")[0]
        if name:
            found.extend((m, line) for m in _with_parents(index, name))

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # only the else branch runs
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            add(target, node.lineno)
            for alias in node.names:  # `from pkg import submodule`
                sub = f"{target}.{alias.name}"
                if sub in index.files:
                    add(sub, node.lineno)
        elif isinstance(node, ast.Call) and (arg := _dynamic_name(node)) is not None:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                add(arg.value, node.lineno)
            elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                # f"gcseg.sparse.{name}_backend": every project module the f-string can name
                pattern = "".join(v.value if isinstance(v, ast.Constant) else "*" for v in arg.values)
                for m in sorted(index.files):
                    if fnmatch.fnmatchcase(m, pattern):
                        add(m, node.lineno)
            else:
                raise ConfigError(f"line {node.lineno}: a module imported by a name computed at run time cannot "
                                  "be followed statically", path=rel,
                                  fix="import it by a literal name (or an f-string whose literal parts name it)")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_closure(index: ModuleIndex, module: str) -> dict[str, str | None]:
    """Every project file `python -m <module>` can import: file -> the file that first imports it (None for
    the entry and its packages). Breadth-first, so the 'via' chain is a shortest one."""
    if module not in index.files:
        raise InputError(f"module {module} not found", path=index.root,
                         fix="check the stage's cmd (python -m stages.<name>) against the files in stages/")
    via: dict[str, str | None] = {m: None for m in _with_parents(index, module)}
    queue = list(via)
    while queue:
        current = queue.pop(0)
        for imported, _line in index.imports(current):
            if imported not in via:
                via[imported] = current
                queue.append(imported)
    return {index.files[m]: (index.files[v] if v else None) for m, v in via.items()}


def collapse(files: Iterable[str], index: ModuleIndex, first: str | None = None) -> list[str]:
    """The files as deps: a package folder (below the top-level packages) whose every module is in `files`
    becomes one entry. Order: `first` (the stage's own module), then stages/, then gcseg/, each sorted."""
    files = set(files)
    all_files = set(index.files.values())
    folders = sorted({Path(f).parent.as_posix() for f in all_files if f.count("/") >= 2}, key=lambda f: (len(f), f))
    chosen: list[str] = []
    for folder in folders:
        if any(folder.startswith(c + "/") for c in chosen):
            continue
        inside = {f for f in all_files if f.startswith(folder + "/")}
        if inside and inside <= files:
            chosen.append(folder)
    deps = chosen + [f for f in files if not any(f.startswith(c + "/") for c in chosen)]
    top = {p: i for i, p in enumerate(reversed(PACKAGES))}  # stages/ before gcseg/
    return sorted(deps, key=lambda d: (d != first, top.get(d.split("/")[0], -1), d))


def is_code_dep(dep: str) -> bool:
    """A dep naming project code (generated) rather than data, params or a ${} path (kept by hand)."""
    return dep.split("/")[0] in PACKAGES and "${" not in dep


def stage_modules(dvc: dict) -> dict[str, str]:
    """Stage name -> module its cmd runs, for every stage whose cmd is `python -m stages.<...>`."""
    out = {}
    for name, st in (dvc.get("stages") or {}).items():
        cmd = st.get("cmd") if isinstance(st, dict) else None
        cmd = " ".join(cmd) if isinstance(cmd, list) else cmd
        m = _CMD.match(cmd or "")
        if m:
            out[name] = m.group(1)
    return out


def _load(dvc_path: Path) -> tuple[str, dict]:
    try:
        text = dvc_path.read_text(encoding="utf-8")
        return text, yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read ({exc})", path=dvc_path, fix="run from the project root; fix the YAML")


def generate(root: str | Path, dvc_path: str | Path | None = None) -> dict[str, list[str]]:
    """Stage -> its generated code deps (see the module doc)."""
    root = Path(root)
    _text, dvc = _load(Path(dvc_path) if dvc_path else root / "dvc.yaml")
    index = ModuleIndex.build(root)
    return {stage: collapse(import_closure(index, mod), index, index.files[mod])
            for stage, mod in stage_modules(dvc).items()}


@dataclass(frozen=True)
class Problem:
    stage: str
    kind: str  # "missing": imported but not covered by a dep; "extra": a code dep that is not generated
    path: str
    detail: str = ""  # missing: the file that imports it; extra: why it is not generated

    def __str__(self) -> str:
        if self.kind == "missing":
            how = f" (imported by {self.detail})" if self.detail else ""
            return f"stage {self.stage!r} runs {self.path}{how}, but its deps in dvc.yaml do not cover it"
        return f"stage {self.stage!r} lists {self.path} in deps, but {self.detail}"


def _covered(path: str, deps: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def check(root: str | Path, dvc_path: str | Path | None = None) -> list[Problem]:
    """What is wrong with dvc.yaml's code deps: every closure file must be covered by a dep (missing), and
    every code dep must be exactly one generated entry (extra: stale or too broad, causing spurious reruns)."""
    root = Path(root)
    _text, dvc = _load(Path(dvc_path) if dvc_path else root / "dvc.yaml")
    index = ModuleIndex.build(root)
    problems = []
    for stage, mod in stage_modules(dvc).items():
        declared = [str(d) if not isinstance(d, dict) else next(iter(d)) for d in dvc["stages"][stage].get("deps") or []]
        closure = import_closure(index, mod)
        wanted = collapse(closure, index, index.files[mod])
        problems += [Problem(stage, "missing", f, closure[f] or "") for f in closure if not _covered(f, declared)]
        for d in declared:
            if not is_code_dep(d) or d in wanted:
                continue
            if d in closure:
                why = f"it is part of {next(w for w in wanted if _covered(d, [w]))}, listed as a whole"
            elif any(_covered(f, [d]) for f in closure):
                why = "the stage does not import every module under it (other changes there would rerun it)"
            else:
                why = "the stage does not import it (a change to it would rerun the stage for nothing)"
            problems.append(Problem(stage, "extra", d, why))
    return problems


# --- the text rewrite --------------------------------------------------------------------------------------

_KEY = re.compile(r"^(\s*)([^\s#:-][^:#]*?):(\s*(#.*)?)$")
_ITEM = re.compile(r"^(\s*)-\s+(.*?)(\s+#.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_blank_or_comment(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index after the block that begins at lines[start] (a key at `indent`): the following lines indented
    deeper; trailing blank/comment lines at or above `indent` are not part of it."""
    end = start + 1
    last = start
    while end < len(lines):
        line = lines[end]
        if _is_blank_or_comment(line):
            if line.strip() and _indent(line) <= indent:
                break
            end += 1
            continue
        if _indent(line) <= indent:
            break
        last = end
        end += 1
    return last + 1


def _stage_spans(lines: list[str]) -> dict[str, tuple[int, int, int]]:
    """Stage name -> (first line, end, indent of its keys), found in the `stages:` mapping."""
    top = next((i for i, line in enumerate(lines) if re.match(r"^stages:\s*(#.*)?$", line)), None)
    if top is None:
        return {}
    end = _block_end(lines, top, 0)
    spans = {}
    stage_indent = None
    i = top + 1
    while i < end:
        line = lines[i]
        m = _KEY.match(line.rstrip("\n"))
        if m and not _is_blank_or_comment(line):
            if stage_indent is None:
                stage_indent = len(m.group(1))
            if len(m.group(1)) == stage_indent:
                stop = _block_end(lines, i, stage_indent)
                keys = next((_indent(x) for x in lines[i + 1:stop] if not _is_blank_or_comment(x)), stage_indent + 2)
                spans[m.group(2).strip().strip("'\"")] = (i, stop, keys)
                i = stop
                continue
        i += 1
    return spans


def _unquote(value: str) -> str:
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def rewrite(text: str, wanted: dict[str, list[str]]) -> str:
    """`text` (dvc.yaml) with each stage's code deps replaced by `wanted[stage]`, placed where its first code
    dep stood (or first); data deps, comments and everything outside `deps:` untouched."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    # bottom-up, so earlier spans stay valid
    for stage, (start, stop, key_indent) in sorted(_stage_spans(lines).items(), key=lambda kv: -kv[1][0]):
        if stage not in wanted:
            continue
        deps_at = next((i for i in range(start + 1, stop) if not _is_blank_or_comment(lines[i])
                        and _indent(lines[i]) == key_indent and lines[i].strip().startswith("deps:")), None)
        if deps_at is None:  # no deps yet: a block right after the cmd
            cmd_at = next((i for i in range(start + 1, stop) if _indent(lines[i]) == key_indent
                           and lines[i].strip().startswith("cmd:")), start)
            insert = _block_end(lines, cmd_at, key_indent) if cmd_at != start else start + 1
            lines[insert:insert] = [" " * key_indent + "deps:\n"]
            deps_at, stop = insert, stop + 1
        if lines[deps_at].strip() != "deps:" and not re.match(r"^deps:\s*#", lines[deps_at].strip()):
            raise ConfigError(f"stage {stage}: deps must be a block list (one '- path' a line) to be rewritten",
                              path="dvc.yaml", fix="write it as a block list, then rerun")
        block_end = _block_end(lines, deps_at, key_indent)
        body = lines[deps_at + 1:block_end]
        # groups: (leading comment lines, the item's lines: its line + deeper continuation lines, its value)
        groups: list[tuple[list[str], list[str], str]] = []
        pending: list[str] = []
        item_indent = None
        for line in body:
            m = _ITEM.match(line.rstrip("\n"))
            if m and (item_indent is None or len(m.group(1)) == item_indent):
                item_indent = len(m.group(1))
                groups.append((pending, [line], _unquote(m.group(2))))
                pending = []
            elif groups and not _is_blank_or_comment(line):
                groups[-1][1].append(line)  # continuation of a mapping item
            else:
                pending.append(line)
        pad = " " * (item_indent if item_indent is not None else key_indent + 2)
        # inline comments of code deps that stay are kept on them
        comments = {v: m.group(3) for _c, item, v in groups if is_code_dep(v)
                    and (m := _ITEM.match(item[0].rstrip("\n"))) and m.group(3)}
        code_block = [f"{pad}- {d}{comments.get(d, '')}\n" for d in wanted[stage]]
        placed = not any(is_code_dep(v) for _c, _i, v in groups)
        new: list[str] = list(code_block) if placed else []  # no code deps yet: they go first
        for comment_lines, item, value in groups:
            new.extend(comment_lines)
            if not is_code_dep(value):
                new.extend(item)
            elif not placed:  # the generated list stands where the first code dep stood
                new.extend(code_block)
                placed = True
        lines[deps_at + 1:block_end] = new + pending
    return "".join(lines)


def regenerate(root: str | Path, dvc_path: str | Path | None = None) -> tuple[str, str]:
    """(old, new) text of dvc.yaml with generated code deps; the caller decides whether to write it."""
    root = Path(root)
    path = Path(dvc_path) if dvc_path else root / "dvc.yaml"
    text, _dvc = _load(path)
    return text, rewrite(text, generate(root, path))
