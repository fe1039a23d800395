"""Point-cloud PLY files: binary little-endian, atomic, deterministic (for viewers and reference clouds).

`write_ply` writes a single ``vertex`` element (x, y, z float32; optional red, green, blue uchar; any extra
int32 properties such as ``instance`` or ``label``). `read_ply` reads the vertex element of any PLY
(ASCII or binary; faces are skipped unless asked for) into a dict with ``coord``, ``color`` and one array per
other vertex property.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement, PlyParseError

from gcseg.atomic import atomic_path
from gcseg.colors import instance_palette
from gcseg.errors import InputError

_COORD = ("x", "y", "z")
_COLOR = ("red", "green", "blue")


def write_ply(path: str | Path, coord: np.ndarray, color: np.ndarray | None = None, **int_props: np.ndarray) -> None:
    """Atomically write points (N, 3) with optional uint8 colours (N, 3) and int32 per-point properties."""
    coord = np.asarray(coord)
    if coord.ndim != 2 or coord.shape[1] != 3:
        raise ValueError(f"coord must be (N, 3), got {coord.shape}")
    n = coord.shape[0]
    fields: list[tuple[str, str]] = [(a, "<f4") for a in _COORD]
    if color is not None:
        color = np.asarray(color)
        if color.shape != (n, 3):
            raise ValueError(f"color must be ({n}, 3), got {color.shape}")
        fields += [(c, "u1") for c in _COLOR]
    for name in sorted(int_props):  # sorted: same file whatever the keyword order
        arr = np.asarray(int_props[name]).reshape(-1)
        if arr.shape[0] != n:
            raise ValueError(f"property {name!r} has {arr.shape[0]} values for {n} points")
        if name in _COORD + _COLOR:
            raise ValueError(f"property name {name!r} is reserved")
        fields.append((name, "<i4"))
    rec = np.empty(n, dtype=fields)
    for i, a in enumerate(_COORD):
        rec[a] = coord[:, i]
    if color is not None:
        for i, c in enumerate(_COLOR):
            rec[c] = color[:, i]
    for name in int_props:
        rec[name] = np.asarray(int_props[name]).reshape(-1)
    ply = PlyData([PlyElement.describe(rec, "vertex")], text=False, byte_order="<")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            ply.write(f)


def write_instance_ply(path: str | Path, coord: np.ndarray, instance: np.ndarray) -> None:
    """Write points coloured by instance id (fixed palette, grey for -1/0) with an ``instance`` property."""
    instance = np.asarray(instance).reshape(-1).astype(np.int32)
    write_ply(path, coord, instance_palette(instance), instance=instance)


def _color_u8(rgb: np.ndarray) -> np.ndarray:
    """uint8 colours: integers as stored; floats in [0, 1] (Open3D, PCL) scaled by 255, larger floats taken as
    0..255; floats are rounded and clipped (nan -> 0), not truncated to near-black."""
    if not np.issubdtype(rgb.dtype, np.floating):
        return rgb.astype(np.uint8)
    rgb = np.nan_to_num(rgb.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    if rgb.size and rgb.max() <= 1.0:
        rgb = rgb * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def read_ply(path: str | Path, *, faces: bool = False) -> dict[str, np.ndarray]:
    """Read the ``vertex`` element: ``coord`` float32 (N, 3), ``color`` uint8 (N, 3) if red/green/blue exist,
    and every other vertex property by name (e.g. ``instance``, ``label``, ``alpha``). With ``faces=True`` also
    ``faces`` int64 (F, 3) for triangle meshes. Raises InputError for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("PLY file not found", path=path, fix="check the path (is the dataset fully downloaded?)")
    try:
        with open(path, "rb") as f:
            # triangle meshes (ScanNet, ScanNet++): a known list length lets plyfile read faces vectorised
            try:
                ply = PlyData.read(f, known_list_len={"face": {"vertex_indices": 3}})
            except (PlyParseError, ValueError, KeyError):
                f.seek(0)
                ply = PlyData.read(f)
    except (PlyParseError, ValueError, EOFError, OSError, IndexError, TypeError) as exc:
        raise InputError(f"not a readable PLY file ({type(exc).__name__}: {exc})", path=path,
                         fix="the file is truncated or corrupt: download or regenerate it") from exc
    if "vertex" not in ply:
        raise InputError("PLY file has no 'vertex' element", path=path, fix="give a point cloud or mesh PLY")
    v = ply["vertex"].data
    names = v.dtype.names or ()
    if not all(a in names for a in _COORD):
        raise InputError(f"PLY vertex element lacks x, y, z (has {list(names)})", path=path,
                         fix="give a point cloud or mesh PLY with vertex positions")
    coord = np.stack([np.asarray(v[a], dtype=np.float32) for a in _COORD], axis=1)
    bad = int((~np.isfinite(coord).all(axis=1)).sum())
    if bad:  # caught here, naming the file, not after minutes of tracking
        raise InputError(f"{bad} of {len(coord)} vertices have non-finite coordinates (nan/inf)", path=path,
                         fix="remove or repair those vertices (e.g. drop points without valid depth) and re-export")
    out: dict[str, np.ndarray] = {"coord": coord}
    if all(c in names for c in _COLOR):
        out["color"] = _color_u8(np.stack([np.asarray(v[c]) for c in _COLOR], axis=1))
    for name in names:
        if name not in _COORD + _COLOR:
            out[name] = np.asarray(v[name]).copy()
    if faces and "face" in ply:
        fd = ply["face"].data
        key = "vertex_indices" if "vertex_indices" in (fd.dtype.names or ()) else (fd.dtype.names or ("",))[0]
        out["faces"] = np.stack([np.asarray(x, dtype=np.int64) for x in fd[key]]) if len(fd) else np.zeros((0, 3), np.int64)
    return out
