"""One HDF5 file per scene per stage, written atomically and deterministically.

Every file carries two root attributes, ``schema`` (e.g. ``"gcseg.sam_keyframes"``) and ``schema_version``
(int), checked on read so that a stale or foreign artifact is rejected instead of misread.
Determinism: no timestamps (``track_times=False``), fixed gzip level + shuffle, datasets and attributes
written in sorted key order, no absolute paths or host names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gcseg.atomic import atomic_path
from gcseg.errors import ArtifactError

Tree = Mapping[str, Any]  # nested mapping: str -> np.ndarray | scalar | str | Tree


def _write_group(group: h5py.Group, tree: Tree) -> None:
    for key in sorted(tree):
        value = tree[key]
        if isinstance(value, Mapping):
            _write_group(group.create_group(key, track_order=False), value)
            continue
        if hasattr(value, "write_h5_dataset"):  # streamed dataset (e.g. per-frame maps too large for memory)
            value.write_h5_dataset(group, key)
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "US":
            group.create_dataset(key, data=arr.astype(h5py.string_dtype()) if arr.ndim else str(arr),
                                 track_times=False)
            continue
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)  # h5py stores bool as enum; uint8 is plainer for other readers
        kwargs: dict[str, Any] = {}
        if arr.ndim >= 1 and arr.size >= 1024:
            kwargs = dict(compression="gzip", compression_opts=4, shuffle=True, chunks=True)
        group.create_dataset(key, data=arr, track_times=False, **kwargs)


def write_h5(path: str | Path, data: Tree, *, schema: str, version: int, attrs: Mapping[str, Any] | None = None) -> None:
    """Atomically write `data` (nested dict of arrays) to `path` with a schema header."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            f.attrs["schema"] = schema
            f.attrs["schema_version"] = int(version)
            for k in sorted(attrs or {}):
                v = (attrs or {})[k]
                f.attrs[k] = v
            _write_group(f, data)


def _read_group(group: h5py.Group) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _read_group(item)
        else:
            val = item[()]
            if isinstance(val, bytes):
                val = val.decode()
            elif isinstance(val, np.ndarray) and val.dtype.kind == "O":
                val = np.array([v.decode() if isinstance(v, bytes) else v for v in val.ravel()]).reshape(val.shape)
            out[key] = val
    return out


def check_schema(f: h5py.File, path: str | Path, schema: str, version: int) -> None:
    got_schema = f.attrs.get("schema")
    got_version = f.attrs.get("schema_version")
    if isinstance(got_schema, bytes):
        got_schema = got_schema.decode()
    if got_schema != schema:
        found = "a file without a gcseg schema attribute" if got_schema is None else f"schema '{got_schema}'"
        raise ArtifactError(f"expected a '{schema}' artifact, found {found}", path=path,
                            fix="point this stage at the output of the right upstream stage, or rerun `dvc repro`")
    if got_version is None or int(got_version) != version:
        raise ArtifactError(f"schema version {got_version} of '{schema}' is not the supported version {version}",
                            path=path, fix="the artifact is stale: rerun the stage that writes it (`dvc repro -f <stage>`)")


def read_h5(path: str | Path, *, schema: str, version: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a whole artifact: returns (data tree, root attributes). Raises ArtifactError if foreign/stale."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("artifact is missing", path=path, fix="run the upstream stage first (`dvc repro`)")
    try:
        with h5py.File(path, "r") as f:
            check_schema(f, path, schema, version)
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            return _read_group(f), attrs
    except OSError as exc:
        raise ArtifactError(f"not a readable HDF5 file ({exc})", path=path,
                            fix="the file is truncated or corrupt: delete it and rerun the stage that writes it") from exc


def open_h5(path: str | Path, *, schema: str, version: int) -> h5py.File:
    """Open for lazy reads (large per-frame arrays); the caller closes it. Schema checked."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("artifact is missing", path=path, fix="run the upstream stage first (`dvc repro`)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"not a readable HDF5 file ({exc})", path=path,
                            fix="the file is truncated or corrupt: delete it and rerun the stage that writes it") from exc
    try:
        check_schema(f, path, schema, version)
    except ArtifactError:
        f.close()
        raise
    return f
