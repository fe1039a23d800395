"""ScanNet++ iPhone captures (`data/<scene>/`):

    iphone/rgb/frame_%06d.jpg        extracted from rgb.mkv (1920x1440; resized to depth resolution)
    iphone/depth/frame_%06d.png      uint16 millimetres (256x192), as the toolkit's prepare_iphone_data writes
    iphone/pose_intrinsic_imu.json   {"frame_%06d": {"aligned_pose": 4x4 c2w (mesh frame), "intrinsic": 3x3 for RGB}}
    scans/mesh_aligned_0.05.ply      benchmark mesh (reference points = its vertices)
    scans/segments.json, scans/segments_anno.json   per-vertex GT (ScanNet's segIndices / segGroups scheme)

Frames: those present in all three of iphone/rgb, iphone/depth and pose_intrinsic_imu.json, in frame order; the
others are dropped with one warning. Real captures need this: the poses cover only part of the video (scannetpp
issue #104; e.g. ffmpeg extracts one frame more than the JSON has), and the toolkit's `extract_only_rgb_in_colmap`
extracts the RGB of only some frames but all depth.

GT, as the toolkit's benchmark GT preparation (semantic/prep/prepare_training_data.py + semantic/transforms/mesh.py),
from the files it finds in `<root>/metadata/semantic_benchmark/`:
- `map_benchmark.csv` (columns `class`, `semantic_map_to`): each object's raw label is mapped first (e.g. "books" ->
  "book"); a label mapped to None or absent from the CSV makes the object void. Without the CSV the raw label is used.
- `top100_instance.txt`: only objects whose (mapped) label is in it are instances, and segment = 1-based line number
  of the label. Without it every object is an instance and there is no segment.
- `top100.txt` (the semantic classes): objects of these classes that are not instance classes (wall, floor, ...)
  still compete for shared vertices (and leave the vertices they win void), as in the toolkit. Without it only
  instance classes compete.
Objects sharing over-segments: each vertex keeps the smallest object covering it (fewest vertices; the earlier
segGroup on ties; the first 3 per vertex considered), the toolkit's rule. instance = objectId + 1 (0 = none).
Only extracted PNG depth is read; `depth.bin` must be extracted with the ScanNet++ toolkit first.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from gcseg.errors import InputError
from gcseg.geometry import scale_intrinsics
from gcseg.io.ply import read_ply
from gcseg.readers import _io
from gcseg.readers._gt import read_json, read_seg_groups, read_seg_indices, vertex_gt_smallest
from gcseg.readers.posed_rgbd import make_frame_loader
from gcseg.scene import PointCloud, Scene

RGB_HW = (1440, 1920)  # iPhone RGB resolution that `intrinsic` refers to
BENCHMARK = Path("metadata") / "semantic_benchmark"
CLASS_LIST = BENCHMARK / "top100_instance.txt"  # instance classes (84)
SEMANTIC_LIST = BENCHMARK / "top100.txt"  # semantic classes (100)
LABEL_MAP = BENCHMARK / "map_benchmark.csv"  # raw label -> benchmark label
# pandas (which the toolkit reads the CSV with) reads these cells as missing: an empty `semantic_map_to` keeps the
# label as it is; "None" drops the class (pandas >= 2 also reads "None" as missing, but such classes are not in the
# class lists, so they are void either way)
_MISSING = frozenset({"", "nan", "NaN", "NA", "N/A", "n/a", "null", "NULL", "<NA>", "#N/A", "-nan", "-NaN"})


def data_dir(root: Path) -> Path:
    return root / "data" if (root / "data").is_dir() else root


def read_class_names(path: Path | None) -> list[str] | None:
    """A class list (one name a line), or None when the file is absent."""
    if path is None or not path.is_file():
        return None
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def read_benchmark_map(path: Path | None) -> dict[str, str] | None:
    """`map_benchmark.csv` -> {raw label: benchmark label}, as the toolkit builds it (semantic/prep/map_semantic.py
    with mapping_type 'semantic' and its default count threshold 0); labels not in the result are void. None when
    the file is absent. Columns are found by header name; `class` and `semantic_map_to` are required."""
    if path is None or not path.is_file():
        return None
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in ("class", "semantic_map_to") if c not in header]
            if missing:
                raise InputError(f"label map lacks column(s) {', '.join(missing)} (header: {', '.join(header)})",
                                 path=path, fix="give the dataset's metadata/semantic_benchmark/map_benchmark.csv "
                                                "(columns class, count, semantic_map_to, instance_map_to)")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the label map ({exc})", path=path,
                         fix="download metadata/semantic_benchmark/map_benchmark.csv again") from exc
    out: dict[str, str] = {}
    for row in rows:
        name = row.get("class")
        if name is None or name in _MISSING:
            continue
        if "count" in header:  # the toolkit keeps rows with count >= 0: an empty count drops the row
            try:
                if not float(row.get("count") or "nan") >= 0:
                    continue
            except ValueError:
                continue
        target = row.get("semantic_map_to") or ""
        if target in _MISSING:
            out.setdefault(name, name)  # no mapping: the label is kept as it is
        elif target != "None":
            out[name] = target
    return out


def load_scannetpp_reference(scene_dir: Path, class_list: Path | None, semantic_list: Path | None = None,
                             label_map: Path | None = None) -> PointCloud:
    scans = scene_dir / "scans"
    v = read_ply(scans / "mesh_aligned_0.05.ply")
    anno = scans / "segments_anno.json"
    if not anno.is_file():
        return PointCloud(coord=v["coord"], color=v.get("color"))  # test split: no annotation
    seg_idx = read_seg_indices(scans / "segments.json", v["coord"].shape[0])
    groups = read_seg_groups(anno)
    mapping = read_benchmark_map(label_map)
    names = read_class_names(class_list)
    class_of = None if names is None else {n: i + 1 for i, n in enumerate(names)}
    semantic = read_class_names(semantic_list)
    semantic_set = None if semantic is None else set(semantic)
    roles: list[tuple[bool, int] | None] = []
    for g in groups:
        raw = str(g.get("label", ""))
        label = raw if mapping is None else mapping.get(raw)
        is_instance = label is not None and (class_of is None or label in class_of)
        takes_part = label is not None and (label in semantic_set if semantic_set is not None else is_instance)
        roles.append((is_instance, 0 if class_of is None or not is_instance else class_of[label])
                     if takes_part else None)
    inst, sem = vertex_gt_smallest(seg_idx, groups, roles)
    return PointCloud(coord=v["coord"], color=v.get("color"), instance=inst, segment=sem if class_of else None)


def open_scannetpp(root: str | Path, scene_id: str) -> Scene:
    """Open `data/<scene_id>` under the ScanNet++ `root` (or `<root>/<scene_id>`)."""
    root = Path(root)
    scene_dir = data_dir(root) / scene_id
    iphone = scene_dir / "iphone"
    if not iphone.is_dir():
        raise InputError(f"ScanNet++ scene {scene_id!r} has no iphone/ folder", path=scene_dir,
                         fix="check data.root (the folder holding data/) and the scene id; download the iPhone data")
    rgb_dir, depth_dir = iphone / "rgb", iphone / "depth"
    if not rgb_dir.is_dir():
        raise InputError("extracted RGB frames are missing", path=rgb_dir,
                         fix="ffmpeg -i iphone/rgb.mkv -start_number 0 -q:v 1 iphone/rgb/frame_%06d.jpg")
    if not depth_dir.is_dir():
        raise InputError("extracted depth frames are missing", path=depth_dir,
                         fix="extract iphone/depth.bin to depth/frame_%06d.png with the ScanNet++ toolkit "
                             "(iphone/prepare_iphone_data.py)")
    rgb = _io.list_stems(rgb_dir)
    depth = _io.list_stems(depth_dir, (".png",))
    if not rgb:
        raise InputError("scene has no RGB frames (empty scene)", path=rgb_dir, fix="extract the frames from rgb.mkv")
    meta_path = iphone / "pose_intrinsic_imu.json"
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise InputError("not a JSON object of frames ({\"frame_%06d\": {\"aligned_pose\": ..., \"intrinsic\": ...}})",
                         path=meta_path, fix="use the pose_intrinsic_imu.json of this capture")
    posed = {s for s, e in meta.items()
             if isinstance(e, dict) and "aligned_pose" in e and "intrinsic" in e}
    stems = [s for s in rgb if s in depth and s in posed]  # frame order of the RGB
    if not stems:
        raise InputError(f"no frame has RGB, depth and a pose: {len(rgb)} RGB frames (e.g. {next(iter(rgb))!r}), "
                         f"{len(depth)} depth frames, {len(posed)} frames with 'aligned_pose' and 'intrinsic' in "
                         f"{meta_path.name}", path=iphone,
                         fix="extract RGB and depth of this capture with the toolkit (frame_%06d names, "
                             "iphone/prepare_iphone_data.py) and use its pose_intrinsic_imu.json")
    if len(stems) < len(rgb) or len(stems) < len(depth):
        kept = set(stems)
        warnings.warn(
            f"ScanNet++ scene {scene_id}: using the {len(stems)} frames present in all of iphone/rgb, iphone/depth "
            f"and {meta_path.name}; dropped {len(rgb) - len(stems)} of {len(rgb)} RGB frames "
            f"({sum(s not in depth for s in rgb)} without depth, {sum(s not in posed for s in rgb)} without a pose), "
            f"{len(depth) - len(stems)} of {len(depth)} depth frames ({sum(s not in rgb for s in depth)} without "
            f"RGB, {sum(s not in posed for s in depth)} without a pose) and left {len(posed - kept)} of {len(posed)} "
            "poses unused (as expected for real captures: the poses cover only part of the video, and "
            "extract_only_rgb_in_colmap extracts the RGB of only some frames)", UserWarning, stacklevel=2)
    depth_hw = _io.image_size(depth[stems[0]])

    def pose_of(i: int) -> np.ndarray:
        return np.asarray(meta[stems[i]]["aligned_pose"], dtype=np.float64)

    def k_of(i: int) -> np.ndarray:
        k = _io.check_intrinsics(np.asarray(meta[stems[i]]["intrinsic"], dtype=np.float64), meta_path)
        return scale_intrinsics(k, RGB_HW, depth_hw)  # `intrinsic` is for the full-size RGB whatever was extracted

    loader = make_frame_loader(stems=stems, color_paths=[rgb[s] for s in stems],
                               depth_paths=[depth[s] for s in stems], pose_of=pose_of,
                               pose_path_of=lambda i: Path(f"{meta_path}[{stems[i]}]"), intrinsics=k_of,
                               depth_hw=depth_hw)
    return Scene(scene_id=scene_id, num_frames=len(stems), image_size=depth_hw, load_frame=loader,
                 load_reference=_io.once(lambda: load_scannetpp_reference(
                     scene_dir, root / CLASS_LIST, root / SEMANTIC_LIST, root / LABEL_MAP)),
                 source="scannetpp", root=str(scene_dir))
