"""Shared low-level reading for the scene readers: images, matrices, numeric frame order, validation.

Every problem with the user's files becomes an InputError naming the file and the fix."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from gcseg.errors import InputError

IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def numeric_key(stem: str) -> tuple[int, int, str]:
    """Sort key: by the last integer in the stem (ScanNet's `10` after `9`, ScanNet++'s `frame_000010`)."""
    m = re.findall(r"\d+", stem)
    return (0, int(m[-1]), stem) if m else (1, 0, stem)


def list_stems(folder: Path, exts: tuple[str, ...] = IMAGE_EXTS) -> dict[str, Path]:
    """Stem -> file for the images in `folder`, in numeric order. Duplicate stems (0.jpg and 0.png) are errors."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."):
            if p.stem in out:
                raise InputError(f"two images for frame {p.stem!r}: {out[p.stem].name} and {p.name}", path=folder,
                                 fix="keep one file per frame")
            out[p.stem] = p
    return dict(sorted(out.items(), key=lambda kv: numeric_key(kv[0])))


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the image header only (cheap)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"cannot read image ({exc})", path=path, fix="the file is corrupt: re-export it") from exc
    return int(h), int(w)


def read_image(path: Path, *, mode: str | None = None) -> np.ndarray:
    """Decode an image fully; corrupt or truncated files raise InputError."""
    if not path.is_file():
        raise InputError("image file is missing", path=path, fix="re-export the frames of this scene")
    try:
        with Image.open(path) as im:
            im.load()
            if mode is not None and im.mode != mode:
                im = im.convert(mode)
            return np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot decode image ({exc})", path=path, fix="the file is corrupt: re-export it") from exc


def read_depth_png(path: Path, scale: float = 1000.0) -> np.ndarray:
    """uint16 depth PNG (millimetres by default) -> float32 metres, 0 = invalid."""
    raw = read_image(path)
    if raw.ndim != 2 or raw.dtype not in (np.uint16, np.int32, np.uint8, np.int16):
        raise InputError(f"depth image must be single-channel 16-bit, got dtype {raw.dtype} shape {raw.shape}",
                         path=path, fix="write depth as uint16 PNG in millimetres (0 = invalid)")
    return (raw.astype(np.float32) / np.float32(scale)).astype(np.float32)


def read_label_png(path: Path) -> np.ndarray:
    """uint16 (or 8-bit) id image -> int32."""
    raw = read_image(path)
    if raw.ndim != 2:
        raise InputError(f"id image must be single-channel, got shape {raw.shape}", path=path,
                         fix="write ids as a uint16 grey PNG (0 = none)")
    return raw.astype(np.int32)


def resize_color(color: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of uint8 RGB to (H, W) (PIL; identity if already that size)."""
    if color.shape[:2] == hw:
        return color
    return np.asarray(Image.fromarray(color).resize((hw[1], hw[0]), Image.BILINEAR))


def resize_labels(labels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an int id image (ids are never blended)."""
    if labels.shape[:2] == hw:
        return labels
    im = Image.fromarray(labels.astype(np.int32), mode="I")
    return np.asarray(im.resize((hw[1], hw[0]), Image.NEAREST)).astype(np.int32)


def read_matrix(path: Path, shape: tuple[int, int] = (4, 4)) -> np.ndarray:
    """A whitespace-separated text matrix (ScanNet pose/intrinsic files). Non-finite values are returned as is."""
    if not path.is_file():
        raise InputError("matrix file is missing", path=path, fix="re-export the scene (poses and intrinsics)")
    try:
        with warnings.catch_warnings():  # numpy warns (with a source line) on an empty file: we raise instead
            warnings.simplefilter("ignore", UserWarning)
            m = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputError(f"not a text matrix ({exc})", path=path,
                         fix=f"write {shape[0]} rows of {shape[1]} numbers separated by spaces") from exc
    if m.size == 0:  # empty, blank or only comments
        what = "pose file" if path.parent.name == "pose" else "matrix file"
        raise InputError(f"{what} is empty (expected a {shape[0]}x{shape[1]} matrix)", path=path,
                         fix=f"write {shape[0]} rows of {shape[1]} numbers (re-export the scene's poses and "
                             "intrinsics)")
    if m.size == shape[0] * shape[1]:
        m = m.reshape(shape)
    if m.shape != shape:
        raise InputError(f"expected a {shape[0]}x{shape[1]} matrix, got shape {m.shape}", path=path,
                         fix=f"write {shape[0]} rows of {shape[1]} numbers")
    return m


def check_intrinsics(k: np.ndarray, path: Path) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)[:3, :3]
    if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InputError(f"invalid intrinsics (fx={k[0, 0]}, fy={k[1, 1]})", path=path,
                         fix="K must be finite with positive focal lengths")
    return k


def check_size(arr: np.ndarray, expected_hw: tuple[int, int], path: Path, what: str,
               reference: Path | None = None) -> None:
    """`arr` must have the size the scene took from its first depth frame (`reference`). Either of the two may
    be the odd one (a first frame of the wrong size makes every later frame differ), so name both."""
    if arr.shape[:2] != tuple(expected_hw):
        first = f"{reference.parent.name}/{reference.name}" if reference is not None else "the first depth frame"
        raise InputError(f"{what} is {arr.shape[1]}x{arr.shape[0]} but the scene's first depth frame is "
                         f"{expected_hw[1]}x{expected_hw[0]} ({first})", path=path,
                         fix=f"all depth frames of a scene must have one size: re-export whichever of "
                             f"{path.parent.name}/{path.name} and {first} has the wrong size (or delete that frame's "
                             "colour, depth and pose)")


T = TypeVar("T")


def once(fn: Callable[[], T]) -> Callable[[], T]:
    """Compute on first call, then return the same object (a scene's reference cloud is read or fused once)."""
    cache: list[T] = []

    def get() -> T:
        if not cache:
            cache.append(fn())
        return cache[0]

    return get
