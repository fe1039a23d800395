"""ScanNet++ iPhone captures (`data/<scene>/`):

    iphone/rgb/frame_%06d.jpg        extracted from rgb.mkv (1920x1440; resized to depth resolution)
    iphone/depth/frame_%06d.png      uint16 millimetres (256x192), as the toolkit's prepare_iphone_data writes
    iphone/pose_intrinsic_imu.json   {"frame_%06d": {"aligned_pose": 4x4 c2w (mesh frame), "intrinsic": 3x3 for RGB}}
    scans/mesh_aligned_0.05.ply      benchmark mesh (reference points = its vertices)
    scans/segments.json, scans/segments_anno.json   per-vertex GT (ScanNet's segIndices / segGroups scheme)

GT: instance = objectId + 1 per vertex (0 = none). If `<root>/metadata/semantic_benchmark/top100_instance.txt`
exists, only objects whose label is in it are instances and segment = 1-based line number of the label.
Only extracted PNG depth is read; `depth.bin` must be extracted with the ScanNet++ toolkit first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcseg.errors import InputError
from gcseg.geometry import scale_intrinsics
from gcseg.io.ply import read_ply
from gcseg.readers import _io
from gcseg.readers._gt import read_json, read_seg_groups, read_seg_indices, vertex_gt
from gcseg.readers.posed_rgbd import make_frame_loader
from gcseg.scene import PointCloud, Scene

RGB_HW = (1440, 1920)  # iPhone RGB resolution that `intrinsic` refers to
CLASS_LIST = Path("metadata") / "semantic_benchmark" / "top100_instance.txt"


def data_dir(root: Path) -> Path:
    return root / "data" if (root / "data").is_dir() else root


def load_scannetpp_reference(scene_dir: Path, class_list: Path | None) -> PointCloud:
    scans = scene_dir / "scans"
    v = read_ply(scans / "mesh_aligned_0.05.ply")
    anno = scans / "segments_anno.json"
    if not anno.is_file():
        return PointCloud(coord=v["coord"], color=v.get("color"))  # test split: no annotation
    seg_idx = read_seg_indices(scans / "segments.json", v["coord"].shape[0])
    groups = read_seg_groups(anno)
    class_of = keep = None
    if class_list is not None and class_list.is_file():
        names = [ln.strip() for ln in class_list.read_text().splitlines() if ln.strip()]
        class_of = {n: i + 1 for i, n in enumerate(names)}
        keep = set(class_of.values())
    inst, sem = vertex_gt(seg_idx, groups, class_of, keep)
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
    stems = [s for s in rgb]
    if len(rgb) != len(depth) or set(rgb) != set(depth):
        missing = [s for s in rgb if s not in depth]
        detail = f"e.g. {missing[0]!r} has RGB but no depth" if missing else "depth has frames without RGB"
        raise InputError(f"{len(rgb)} RGB frames but {len(depth)} depth frames ({detail})", path=iphone,
                         fix="extract RGB and depth for the same frames")
    meta_path = iphone / "pose_intrinsic_imu.json"
    meta = read_json(meta_path)
    for s in stems:
        entry = meta.get(s) if isinstance(meta, dict) else None
        if not isinstance(entry, dict) or "aligned_pose" not in entry or "intrinsic" not in entry:
            raise InputError(f"no 'aligned_pose'/'intrinsic' for frame {s!r}", path=meta_path,
                             fix="use the pose_intrinsic_imu.json of this capture (or delete frames it lacks)")
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
    class_list = root / CLASS_LIST
    return Scene(scene_id=scene_id, num_frames=len(stems), image_size=depth_hw, load_frame=loader,
                 load_reference=_io.once(lambda: load_scannetpp_reference(scene_dir, class_list)),
                 source="scannetpp", root=str(scene_dir))
