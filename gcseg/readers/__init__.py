"""Scene readers: every data source becomes a `gcseg.scene.Scene` (lazy posed RGB-D frames + reference cloud).

Sources: ``synth`` (gcseg's synthetic scenes: posed_rgbd layout with GT extras), ``posed_rgbd`` (ScanNet's
exported layout, any capture), ``scannet`` (ScanNet v2 / ScanNet200), ``scannetpp`` (ScanNet++ iPhone).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from gcseg.errors import ConfigError, InputError
from gcseg.scene import Scene

SOURCES = ("synth", "posed_rgbd", "scannet", "scannetpp")
# "unlabelled": scans listed under that key of splits.json, which no label stage reads by default (they have no
# tracked labels) and Stage 3 may pseudo-label; never val. Splits combine with "+", e.g. "train+unlabelled".
SPLITS = ("train", "val", "unlabelled", "all")


def split_parts(split: str) -> tuple[str, ...]:
    """The parts of a split name ("train+unlabelled" -> ("train", "unlabelled")); ConfigError if one is unknown,
    repeated, or "all" is combined."""
    parts = tuple(split.split("+"))
    if (any(p not in SPLITS for p in parts) or len(set(parts)) != len(parts)
            or ("all" in parts and len(parts) > 1)):
        raise ConfigError(f"unknown split {split!r}",
                          fix=f"use one of {list(SPLITS)} or several of {list(SPLITS[:-1])} joined by '+'")
    return parts


def _check(source: str, split: str | None = None) -> None:
    if source not in SOURCES:
        raise ConfigError(f"unknown data source {source!r}", fix=f"data.source must be one of {list(SOURCES)}")
    if split is not None:
        split_parts(split)


def _is_scene_folder(path: Path) -> bool:
    return (path / "pose").is_dir() and (path / "depth").is_dir()


def _split_ids(root: Path, split: str, source: str) -> list[str] | None:
    """Scene ids of `split` (its parts' union) from root/splits.json, or ScanNet's scannetv2_<split>.txt; None = no
    split file (every scene is then in train and val). Unlabelled scans are only ever declared in splits.json (an
    absent "unlabelled" list: none)."""
    parts = split_parts(split)
    if len(parts) > 1:
        per = [_split_ids(root, p, source) for p in parts]
        if any(ids is None for ids in per):
            return None
        return sorted({i for ids in per for i in ids or ()})
    sj = root / "splits.json"
    if sj.is_file():
        try:
            data = json.loads(sj.read_text())
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc})", path=sj, fix='write {"train": [...], "val": [...]}') from exc
        if split == "unlabelled" and isinstance(data, dict) and "unlabelled" not in data:
            return []
        if not isinstance(data, dict) or not isinstance(data.get(split), list):
            raise InputError(f"no list under {split!r}", path=sj, fix='write {"train": [ids...], "val": [ids...]}')
        return [str(s) for s in data[split]]
    if split == "unlabelled":
        return []
    txt = root / f"scannetv2_{split}.txt" if source == "scannet" else None
    if txt is not None and txt.is_file():
        return [ln.strip() for ln in txt.read_text().splitlines() if ln.strip()]
    return None


def _scene_parent(source: str, root: Path) -> Path:
    if source == "scannet":
        from gcseg.readers.scannet import scans_dir
        return scans_dir(root)
    if source == "scannetpp":
        from gcseg.readers.scannetpp import data_dir
        return data_dir(root)
    return root


def list_scenes(source: str, root: str | Path, split: str = "all") -> list[str]:
    """Scene ids under a dataset root, sorted. `split` = train | val | unlabelled | all, or parts joined by "+"
    ("train+unlabelled"); a split file (splits.json, or ScanNet's scannetv2_train.txt / scannetv2_val.txt) restricts
    the list, else every scene is in train and val (and none is unlabelled). For
    posed_rgbd/synth a root that is itself a scene folder (has pose/ and depth/) is that single scene."""
    _check(source, split)
    root = Path(root)
    if not root.is_dir():
        raise InputError("data root not found", path=root,
                         fix="set data.root in params.yaml (for synth: run the synth stage first)")
    if source in ("posed_rgbd", "synth") and _is_scene_folder(root):
        return [root.name]
    parent = _scene_parent(source, root)
    present = sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    if source in ("posed_rgbd", "synth"):
        present = [s for s in present if _is_scene_folder(parent / s)]
    elif source == "scannetpp":
        present = [s for s in present if (parent / s / "iphone").is_dir()]
    if split == "all":
        ids = present
    else:
        wanted = _split_ids(root, split, source)
        ids = present if wanted is None else sorted(set(wanted) & set(present))
        absent = [] if wanted is None else sorted(set(wanted) - set(present))
        if absent:
            warnings.warn(f"{root}: {len(absent)} scene(s) of split {split!r} are not present (e.g. {absent[0]}); "
                          "using the others", stacklevel=2)
    if not ids:
        raise InputError(f"no {source} scenes found for split {split!r}", path=root,
                         fix="check data.root / data.source (and the split file, if any)")
    return ids


def open_scene(source: str, root: str | Path, scene_id: str) -> Scene:
    """Open one scene lazily (cheap checks now, per-frame checks when frames load)."""
    _check(source)
    root = Path(root)
    if source in ("posed_rgbd", "synth"):
        from gcseg.readers.posed_rgbd import open_posed_rgbd
        folder = root if _is_scene_folder(root) and root.name == scene_id else root / scene_id
        return open_posed_rgbd(folder, scene_id=scene_id, source=source)
    if source == "scannet":
        from gcseg.readers.scannet import open_scannet
        return open_scannet(root, scene_id)
    from gcseg.readers.scannetpp import open_scannetpp
    return open_scannetpp(root, scene_id)
