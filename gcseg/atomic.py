"""Atomic outputs: write to a temporary sibling, then rename, so a killed stage never leaves a
half-written file or folder that a later stage (or DVC) could pick up."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gcseg.errors import InputError


def _check_writable(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, a read-only file system, no permission
        raise InputError(f"cannot create the output folder ({exc.strerror})", path=parent,
                         fix="choose another output path or fix its permissions") from exc
    if not os.access(parent, os.W_OK):
        raise InputError("output folder is not writable", path=parent,
                         fix="choose another output path or fix its permissions")


def check_output(path: str | Path, *, folder: bool | None = None, what: str = "output") -> None:
    """Fail before any work if `path` (a file or folder a stage will write) could not be created: its nearest
    existing ancestor must be a writable folder. `folder`: True = `path` must be (or become) a folder, False = a
    file, None = either; `what` names it in the error (e.g. "--out"). Creates nothing, so a failing stage leaves
    nothing behind."""
    path = Path(path).absolute()
    if path.exists():
        # caught now, not as a NotADirectoryError traceback after all the work
        if folder is True and not path.is_dir():
            raise InputError(f"{what} is a file, not a folder", path=path,
                             fix="give a folder for the outputs (new or existing) or move that file away")
        if folder is False and path.is_dir():
            raise InputError(f"{what} is a folder, not a file", path=path,
                             fix="give a file name for the output or move that folder away")
        if path.is_dir() and not os.access(path, os.W_OK):
            raise InputError("output folder is not writable", path=path,
                             fix="choose another output path or fix its permissions")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot create the output: {parent} is a file, not a folder", path=path,
                         fix="choose another output path or move that file away")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot create the output: {parent} is not writable", path=path,
                         fix="choose another output path or fix its permissions")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` atomically.

    Works for files and folders alike (the caller creates what it needs at the yielded path).
    On any exception the temporary is removed and `path` is left as it was.
    """
    path = Path(path)
    _check_writable(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Atomically write UTF-8 text with '\\n' line endings (DVC hashes bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def clean_stale_temporaries(folder: str | Path) -> None:
    """Remove temporaries a killed run left behind (`.<name>.*.tmp`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for p in folder.glob(".*.tmp"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
