"""ScanNet v2 scans with exported frames (as MaskClustering / OpenMask3D keep them):

    <root>/scans/<scene>/{color,depth,pose,intrinsic}/   exported frames (see posed_rgbd)
    <root>/scans/<scene>/<scene>_vh_clean_2.ply          benchmark mesh (reference points = its vertices)
    <root>/scans/<scene>/<scene>_vh_clean_2.0.010000.segs.json
    <root>/scans/<scene>/<scene>.aggregation.json
    <root>/scannetv2-labels.combined.tsv                  raw category -> ScanNet200 id (or pass labels_tsv)

Frames whose pose is non-finite (ScanNet marks lost tracking with -inf) are skipped with one warning giving
their count; `Frame.name` keeps the original frame number. GT per vertex: instance = objectId + 1 for objects
of the 198 ScanNet200 instance classes (0 otherwise), segment = their ScanNet200 class id (0 otherwise).
Test-split scans without annotation give a reference without GT.
"""

from __future__ import annotations

import csv
from pathlib import Path

from gcseg.errors import InputError
from gcseg.io.ply import read_ply
from gcseg.readers import _io
from gcseg.readers._gt import read_seg_groups, read_seg_indices, vertex_gt
from gcseg.readers.posed_rgbd import open_posed_rgbd
from gcseg.readers.scannet200_constants import INSTANCE_CLASS_IDS_200
from gcseg.scene import PointCloud, Scene

LABELS_TSV = "scannetv2-labels.combined.tsv"


def scans_dir(root: Path) -> Path:
    return root / "scans" if (root / "scans").is_dir() else root


def read_label_map(path: Path) -> dict[str, int]:
    """raw_category -> id (ScanNet200 ids) from scannetv2-labels.combined.tsv."""
    if not path.is_file():
        raise InputError("ScanNet label table not found", path=path,
                         fix=f"put {LABELS_TSV} (shipped with ScanNet) in the dataset root or pass labels_tsv")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        return {r["raw_category"]: int(r["id"]) for r in rows}
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"label table lacks a valid 'raw_category'/'id' column ({exc})", path=path,
                         fix=f"give ScanNet's original {LABELS_TSV} (tab-separated with a header row)") from exc


def load_scannet_reference(scene_dir: Path, scene_id: str, labels_tsv: Path) -> PointCloud:
    mesh = scene_dir / f"{scene_id}_vh_clean_2.ply"
    v = read_ply(mesh)
    segs = scene_dir / f"{scene_id}_vh_clean_2.0.010000.segs.json"
    agg = scene_dir / f"{scene_id}.aggregation.json"
    if not agg.is_file() and not segs.is_file():
        return PointCloud(coord=v["coord"], color=v.get("color"))  # test split: no annotation
    seg_idx = read_seg_indices(segs, v["coord"].shape[0])
    groups = read_seg_groups(agg)
    inst, sem = vertex_gt(seg_idx, groups, read_label_map(labels_tsv), set(INSTANCE_CLASS_IDS_200))
    return PointCloud(coord=v["coord"], color=v.get("color"), instance=inst, segment=sem)


def open_scannet(root: str | Path, scene_id: str, *, labels_tsv: str | Path | None = None) -> Scene:
    """Open `scans/<scene_id>` under the dataset `root` (or `<root>/<scene_id>` when root is the scans folder)."""
    root = Path(root)
    scene_dir = scans_dir(root) / scene_id
    if not scene_dir.is_dir():
        raise InputError(f"ScanNet scene {scene_id!r} not found", path=scene_dir,
                         fix="check data.root (the folder holding scans/) and the scene id")
    tsv = Path(labels_tsv) if labels_tsv is not None else root / LABELS_TSV
    scene = open_posed_rgbd(scene_dir, scene_id=scene_id, source="scannet", skip_nonfinite_poses=True)
    scene.load_reference = _io.once(lambda: load_scannet_reference(scene_dir, scene_id, tsv))
    return scene
