"""The install is what the project declares: every dependency of pyproject.toml, requirements.txt and
requirements-nodeps.txt is installed at its pinned version and imports (segment-anything and sam2 through gcseg's
torchvision nms shim, MinkowskiEngine where scripts/build_minkowski.sh builds it). A failed install must fail
here, by name, not turn into skipped tests."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import platform
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = "run `make install` (scripts/install.sh) and read its output"
# MinkowskiEngine is built by scripts/build_minkowski.sh for CPU on Linux x86-64 only (elsewhere gcseg's sparse
# backend `auto` uses pure PyTorch, same weights)
MINKOWSKI_PLATFORM = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")
# distributions installed as build tools only (their modules are never imported by gcseg)
BUILD_ONLY = {"wheel", "setuptools", "ninja"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(line: str) -> tuple[str, str | None] | None:
    line = line.split("#")[0].strip()
    if not line:
        return None
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^\s;,]+))?", line)
    assert m, f"cannot read requirement {line!r}"
    return _norm(m.group(1)), m.group(2)


def declared() -> dict[str, tuple[str | None, str]]:
    """Normalised distribution name -> (exact pin or None, where it is declared)."""
    out: dict[str, tuple[str | None, str]] = {}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [("pyproject.toml", x) for x in project["dependencies"]]
    lines += [("pyproject.toml", x) for extra in project.get("optional-dependencies", {}).values() for x in extra]
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        lines += [(name, x) for x in (ROOT / name).read_text().splitlines()]
    for where, line in lines:
        req = _requirement(line)
        if req is None:
            continue
        dist, pin = req
        old_pin, old_where = out.get(dist, (None, where))
        if pin and old_pin and pin != old_pin:
            raise AssertionError(f"{dist} pinned to {old_pin} in {old_where} and to {pin} in {where}")
        out[dist] = (pin or old_pin, old_where if old_pin else where)
    return out


DECLARED = declared()


def _top_level_modules(dist: str) -> list[str]:
    """The modules a distribution installs (from its metadata), its own name first if it has one."""
    names = sorted({m for m, dists in md.packages_distributions().items() if dist in {_norm(d) for d in dists}
                    and not m.startswith("_") and m.isidentifier()})
    own = [m for m in names if _norm(m) == dist]
    return own or names


def test_every_requirement_is_pinned() -> None:
    loose = [d for d, (pin, _w) in DECLARED.items() if pin is None and d not in BUILD_ONLY]
    assert not loose, f"declared without an exact version in requirements*.txt: {loose}"


@pytest.mark.parametrize("dist", sorted(DECLARED))
def test_declared_dependency_is_installed_at_its_pin_and_imports(dist: str) -> None:
    pin, where = DECLARED[dist]
    if dist == "minkowskiengine" and not MINKOWSKI_PLATFORM:
        pytest.skip(f"MinkowskiEngine is built on Linux x86-64 only, not on {sys.platform}/{platform.machine()}")
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        pytest.fail(f"{dist} (declared in {where}) is not installed: {FIX}")
    if pin is not None:  # a local build label (torch 2.13.0+cpu) is the same release
        assert version.split("+")[0] == pin, f"{dist} {version} is installed, {where} pins {pin}: {FIX}"
    if dist in BUILD_ONLY:
        return
    if dist in {"torchvision", "segment-anything", "sam2"}:
        # torchvision's compiled ops cannot load next to a CPU torch: gcseg's shim must go first, as in gcseg
        from gcseg.compat.torchvision_nms import ensure_torchvision_ops

        ensure_torchvision_ops()
    modules = _top_level_modules(dist)
    assert modules, f"{dist} {version} installs no importable module: {FIX}"
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 (any failure to import is the finding)
            pytest.fail(f"{dist} {version} is installed but `import {module}` fails: {type(exc).__name__}: {exc}. "
                        f"{FIX}")


def test_sam_and_sam2_entry_points_import_through_the_shim() -> None:
    """What the SAM / SAM2 backends import (automatic mask generator, video predictor builder) works."""
    from gcseg.compat.torchvision_nms import ensure_torchvision_ops

    ensure_torchvision_ops()
    from sam2.build_sam import build_sam2_video_predictor  # noqa: F401
    from segment_anything import SamAutomaticMaskGenerator, sam_model_registry  # noqa: F401
    from torchvision.ops import batched_nms  # noqa: F401


@pytest.mark.skipif(not MINKOWSKI_PLATFORM, reason="MinkowskiEngine is built on Linux x86-64 only")
def test_minkowski_backend_is_available() -> None:
    from gcseg.sparse import available_backends

    assert "minkowski" in available_backends(), f"MinkowskiEngine does not import for gcseg.sparse: {FIX}"
