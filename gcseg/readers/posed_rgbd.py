"""Posed RGB-D folders in ScanNet's exported layout (SensReader `reader.py --export_*`):

    <root>/color/<i>.jpg|png      colour (any size; resized to depth resolution, bilinear)
    <root>/depth/<i>.png          uint16 millimetres, 0 = invalid
    <root>/pose/<i>.txt           4x4 camera-to-world (OpenCV axes)
    <root>/intrinsic/intrinsic_depth.txt   4x4, K of the depth image (else intrinsic_color.txt, scaled)
  optional (synthetic scenes):
    <root>/instance/<i>.png       uint16 GT instance id per pixel (0 = void)
    <root>/part/<i>.png           uint16 GT part id per pixel
    <root>/reference.ply          reference cloud: x, y, z, red, green, blue (+ int `instance`, `label`)

Frame stems are sorted numerically (`10` after `9`; no zero padding needed). File presence and counts are
checked when the scene is opened; pose, size and decoding checks when a frame is loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gcseg.errors import InputError
from gcseg.geometry import check_pose, scale_intrinsics
from gcseg.io.ply import read_ply
from gcseg.readers import _io
from gcseg.readers.fusion import fuse_reference
from gcseg.scene import Frame, PointCloud, Scene


def _require_dir(path: Path, fix: str) -> Path:
    if not path.is_dir():
        raise InputError("folder is missing", path=path, fix=fix)
    return path


def _match_stems(color: dict[str, Path], depth: dict[str, Path], color_dir: Path, depth_dir: Path) -> list[str]:
    """Colour and depth must list the same frames; say which one lacks what."""
    if not color:
        raise InputError("scene has no colour frames (empty scene)", path=color_dir,
                         fix="export the frames (color/<i>.jpg, depth/<i>.png, pose/<i>.txt) into this folder")
    if len(color) != len(depth) or set(color) != set(depth):
        only_c = [s for s in color if s not in depth]
        only_d = [s for s in depth if s not in color]
        detail = (f"e.g. frame {only_c[0]!r} has colour but no depth" if only_c
                  else f"e.g. frame {only_d[0]!r} has depth but no colour")
        raise InputError(f"{len(color)} colour frames but {len(depth)} depth frames ({detail})", path=depth_dir.parent,
                         fix="export colour and depth for the same frames (or delete the unmatched files)")
    return list(color)


def load_intrinsics(intr_dir: Path, depth_hw: tuple[int, int], color_hw: tuple[int, int]) -> np.ndarray:
    """K of the depth image: intrinsic_depth.txt, else intrinsic_color.txt scaled from colour to depth size."""
    kd = intr_dir / "intrinsic_depth.txt"
    kc = intr_dir / "intrinsic_color.txt"
    if kd.is_file():
        return _io.check_intrinsics(_io.read_matrix(kd), kd)
    if kc.is_file():
        return scale_intrinsics(_io.check_intrinsics(_io.read_matrix(kc), kc), color_hw, depth_hw)
    raise InputError("no intrinsics found", path=intr_dir,
                     fix="write intrinsic/intrinsic_depth.txt (4x4, K of the depth image) or intrinsic_color.txt")


def make_frame_loader(*, stems: list[str], color_paths: list[Path], depth_paths: list[Path],
                      pose_of: Callable[[int], np.ndarray], pose_path_of: Callable[[int], Path],
                      intrinsics: np.ndarray | Callable[[int], np.ndarray], depth_hw: tuple[int, int], depth_scale: float = 1000.0,
                      instance_paths: list[Path] | None = None, part_paths: list[Path] | None = None,
                      depth_ref: Path | None = None) -> Callable[[int], Frame]:
    """The per-frame loader every reader shares: decode, validate size and pose, resize colour to depth size.
    `intrinsics`: one K for all frames, or a function of the frame position (ScanNet++ has K per frame).
    `depth_ref`: the depth image `depth_hw` was read from (default: the first of `depth_paths`)."""
    ref = depth_ref if depth_ref is not None else (depth_paths[0] if depth_paths else None)

    def load(i: int) -> Frame:
        pose = check_pose(pose_of(i), path=pose_path_of(i))
        depth = _io.read_depth_png(depth_paths[i], depth_scale)
        _io.check_size(depth, depth_hw, depth_paths[i], "depth frame", reference=ref)
        color = _io.read_image(color_paths[i], mode="RGB")
        color = _io.resize_color(color, depth_hw)
        inst = part = None
        if instance_paths is not None:
            inst = _io.resize_labels(_io.read_label_png(instance_paths[i]), depth_hw)
        if part_paths is not None:
            part = _io.resize_labels(_io.read_label_png(part_paths[i]), depth_hw)
        return Frame(index=i, color=np.ascontiguousarray(color, dtype=np.uint8), depth=depth,
                     intrinsics=np.array(intrinsics(i) if callable(intrinsics) else intrinsics, dtype=np.float64), pose=pose, instance=inst, part=part, name=stems[i])

    return load


def _extra_paths(root: Path, name: str, stems: list[str]) -> list[Path] | None:
    folder = root / name
    if not folder.is_dir():
        return None
    files = _io.list_stems(folder, (".png",))
    missing = [s for s in stems if s not in files]
    if missing:
        raise InputError(f"{name}/ has no image for frame {missing[0]!r} ({len(missing)} missing)", path=folder,
                         fix=f"write {name}/<i>.png for every frame, or remove the {name}/ folder")
    return [files[s] for s in stems]


def read_reference_ply(path: Path) -> PointCloud:
    """reference.ply -> PointCloud (``instance`` -> instance, ``label`` -> segment)."""
    d = read_ply(path)
    inst = d.get("instance")
    seg = d.get("label")
    return PointCloud(coord=d["coord"], color=d.get("color"),
                      instance=None if inst is None else inst.astype(np.int32),
                      segment=None if seg is None else seg.astype(np.int32))


def finite_pose_frames(pose_paths: list[Path]) -> tuple[list[int], list[np.ndarray]]:
    """Read every pose once (cheap text) and keep the frames whose pose is finite (ScanNet marks lost
    tracking with -inf/nan). Returns (kept positions, their poses)."""
    keep, poses = [], []
    for j, p in enumerate(pose_paths):
        m = _io.read_matrix(p)
        if np.all(np.isfinite(m)):
            keep.append(j)
            poses.append(m)
    return keep, poses


def open_posed_rgbd(root: str | Path, *, scene_id: str | None = None, source: str = "posed_rgbd",
                    depth_scale: float = 1000.0, skip_nonfinite_poses: bool = False,
                    fuse_every: int = 10, fuse_voxel: float = 0.025) -> Scene:
    """Open a scene folder in the exported layout; frames load lazily.

    `skip_nonfinite_poses`: drop frames whose pose has inf/nan (reads all poses at open, warns with the count)
    instead of raising when such a frame is loaded. `load_reference` reads reference.ply if present, else
    fuses every `fuse_every`-th frame at `fuse_voxel` metres."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("scene folder not found", path=root, fix="check the data root and scene id")
    fix = "a scene folder needs color/, depth/, pose/ and intrinsic/ (ScanNet exported layout)"
    color_dir = _require_dir(root / "color", fix)
    depth_dir = _require_dir(root / "depth", fix)
    pose_dir = _require_dir(root / "pose", fix)
    color = _io.list_stems(color_dir)
    depth = _io.list_stems(depth_dir, (".png",))
    stems = _match_stems(color, depth, color_dir, depth_dir)
    pose_paths = [pose_dir / f"{s}.txt" for s in stems]
    for s, p in zip(stems, pose_paths):
        if not p.is_file():
            raise InputError(f"colour frame {s!r} has no pose file", path=p,
                             fix="export a 4x4 camera-to-world pose for every frame, or delete the frame's images")
    depth_hw = _io.image_size(depth[stems[0]])
    k = load_intrinsics(root / "intrinsic", depth_hw, _io.image_size(color[stems[0]]))
    inst_paths = _extra_paths(root, "instance", stems)
    part_paths = _extra_paths(root, "part", stems)

    idx = list(range(len(stems)))
    cached: list[np.ndarray] | None = None
    if skip_nonfinite_poses:
        idx, cached = finite_pose_frames(pose_paths)
        if len(idx) < len(stems):
            warnings.warn(f"{root}: skipped {len(stems) - len(idx)} of {len(stems)} frames with non-finite poses",
                          stacklevel=2)
        if not idx:
            raise InputError("every frame has a non-finite pose (empty scene)", path=pose_dir,
                             fix="the scan's tracking failed: re-export or drop this scene")
    sel = lambda xs: None if xs is None else [xs[j] for j in idx]  # noqa: E731
    pose_sel = sel(pose_paths)
    loader = make_frame_loader(
        stems=sel(stems), color_paths=sel([color[s] for s in stems]), depth_paths=sel([depth[s] for s in stems]),
        pose_of=(lambda i: cached[i]) if cached is not None else (lambda i: _io.read_matrix(pose_sel[i])),
        pose_path_of=lambda i: pose_sel[i], intrinsics=k, depth_hw=depth_hw, depth_scale=depth_scale,
        instance_paths=sel(inst_paths), part_paths=sel(part_paths), depth_ref=depth[stems[0]])
    scene = Scene(scene_id=scene_id or root.name, num_frames=len(idx), image_size=depth_hw, load_frame=loader,
                  source=source, root=str(root))
    ref = root / "reference.ply"

    def load_reference() -> PointCloud:
        if ref.is_file():
            return read_reference_ply(ref)
        return fuse_reference(scene, every=fuse_every, voxel=fuse_voxel)

    scene.load_reference = _io.once(load_reference)
    return scene
