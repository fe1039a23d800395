"""Write synthetic scans in the posed RGB-D layout (the ScanNet "exported" layout plus GT images):

    <scene>/color/<i>.jpg            RGB, JPEG quality 95, 4:4:4 chroma (lossy; depth and GT are lossless)
    <scene>/depth/<i>.png            uint16 millimetres, 0 = invalid
    <scene>/pose/<i>.txt             4x4 camera-to-world (OpenCV axes, world +z up), '%.8f'
    <scene>/intrinsic/intrinsic_depth.txt, intrinsic_color.txt   4x4 (colour and depth share one camera)
    <scene>/instance/<i>.png         uint16 GT object instance id per pixel, 0 = void
    <scene>/part/<i>.png             uint16 GT part id per pixel, 0 = void
    <scene>/reference.ply            binary little-endian vertex: x,y,z float, red,green,blue uchar,
                                     instance int, label int (GT per point, 0 = void)
    <scene>/meta.json                seed, options, room, objects with their parts, label names
    <scene>/contact_sheet.png        a few frames: RGB / depth / GT instances / GT parts (for eyes only)
    <root>/splits.json               {"train": [...], "val": [...]}

Every file is a deterministic function of the scene (no timestamps, no absolute paths).
"""

from __future__ import annotations

import io
import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from plyfile import PlyData, PlyElement

from gcseg.atomic import atomic_path
from gcseg.errors import ConfigError
from gcseg.parallel import map_ordered
from gcseg.synth.generate import SynthScene, generate_scene

JPEG_QUALITY = 95


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _uint16(array: np.ndarray, what: str) -> np.ndarray:
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise ConfigError(f"{what} ids exceed the uint16 range of the PNG layout", fix="generate fewer objects")
    return array.astype(np.uint16)


def _matrix_text(m: np.ndarray) -> str:
    return "".join(" ".join(f"{float(x):.8f}" for x in row) + "\n" for row in m)


def _id_colors(ids: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random colour per id (0 = black), the same in every scene and run."""
    x = ids.astype(np.uint64) * np.uint64(2654435761) % np.uint64(2**32)
    rgb = np.stack([(x >> np.uint64(s)) & np.uint64(255) for s in (0, 8, 16)], axis=-1).astype(np.uint8)
    rgb = (rgb.astype(np.uint16) // 2 + 100).astype(np.uint8)  # bright, never black
    rgb[ids == 0] = 0
    return rgb


def contact_sheet(scene: SynthScene, columns: int = 4) -> np.ndarray:
    """A (rows x columns) image grid of evenly spaced frames: RGB, depth (viridis; black = invalid),
    GT instances, GT parts. Small images are upscaled (nearest) so the sheet is at least ~640 px wide."""
    from matplotlib import colormaps

    n = scene.num_frames
    idx = np.unique(np.linspace(0, n - 1, min(columns, n)).round().astype(int))
    h, w = scene.image_size
    scale = max(1, int(np.ceil(160 / w)))
    dmax = max(float(scene.depth.max()), 1e-3)
    cmap = colormaps["viridis"]
    rows = []
    for kind in ("color", "depth", "instance", "part"):
        tiles = []
        for i in idx:
            if kind == "color":
                tile = scene.color[i]
            elif kind == "depth":
                d = scene.depth[i]
                tile = (cmap(np.clip(d / dmax, 0, 1))[..., :3] * 255).astype(np.uint8)
                tile[d <= 0] = 0
            else:
                tile = _id_colors(getattr(scene, kind)[i])
            tile = np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1)
            tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=255))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def _write_scene_files(scene: SynthScene, folder: Path, sheet: bool) -> None:
    for sub in ("color", "depth", "pose", "intrinsic", "instance", "part"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    depth_mm = np.round(scene.depth.astype(np.float64) * 1000.0).astype(np.uint16)
    instance = _uint16(scene.instance, "instance")
    part = _uint16(scene.part, "part")
    for i in range(scene.num_frames):
        buf = io.BytesIO()
        Image.fromarray(scene.color[i]).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        (folder / "color" / f"{i}.jpg").write_bytes(buf.getvalue())
        (folder / "depth" / f"{i}.png").write_bytes(_png_bytes(depth_mm[i]))
        (folder / "instance" / f"{i}.png").write_bytes(_png_bytes(instance[i]))
        (folder / "part" / f"{i}.png").write_bytes(_png_bytes(part[i]))
        (folder / "pose" / f"{i}.txt").write_text(_matrix_text(scene.poses[i]))
    k4 = np.eye(4)
    k4[:3, :3] = scene.intrinsics
    (folder / "intrinsic" / "intrinsic_depth.txt").write_text(_matrix_text(k4))
    (folder / "intrinsic" / "intrinsic_color.txt").write_text(_matrix_text(k4))
    ref = scene.reference
    vertex = np.empty(len(ref), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"),
                                       ("blue", "u1"), ("instance", "<i4"), ("label", "<i4")])
    vertex["x"], vertex["y"], vertex["z"] = ref.coord[:, 0], ref.coord[:, 1], ref.coord[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = ref.color[:, 0], ref.color[:, 1], ref.color[:, 2]
    vertex["instance"], vertex["label"] = ref.instance, ref.segment
    PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<").write(str(folder / "reference.ply"))
    (folder / "meta.json").write_text(json.dumps(scene.meta(), indent=2, sort_keys=True) + "\n")
    if sheet:
        (folder / "contact_sheet.png").write_bytes(_png_bytes(contact_sheet(scene)))


def write_scene(scene: SynthScene, folder: str | Path, *, sheet: bool = True) -> None:
    """Write one scene folder atomically (a temporary sibling renamed into place; an old folder is replaced)."""
    with atomic_path(folder) as tmp:
        _write_scene_files(scene, tmp, sheet)


def scene_seed(seed: int, index: int) -> int:
    """The generator seed of scene `index` of a dataset with master `seed` (independent streams per scene)."""
    return int(np.random.SeedSequence(int(seed), spawn_key=(int(index),)).generate_state(1, np.uint32)[0])


def _generate_and_write(job: tuple[int, str, Path], scene_options: dict) -> None:
    seed, sid, folder = job
    _write_scene_files(generate_scene(seed, scene_id=sid, **scene_options), folder, sheet=True)


def write_dataset(root: str | Path, *, num_scenes: int, num_val: int, seed: int, progress: bool | None = None,
                  num_unlabelled: int = 0, jobs: int = 1, **scene_options) -> None:
    """Generate `num_scenes` scenes `synth_000`, ... into `root` (atomically: built in a temporary sibling,
    then renamed) plus `splits.json`: the first num_scenes - num_val scenes train, the rest val. `num_unlabelled`
    more scenes after them form the "unlabelled" split (scans without tracked labels, for Stage 3; the first
    num_scenes are the same scenes whatever it is: each scene draws from its own seed stream).

    `scene_options` go to `generate_scene` (num_frames, height, width, depth_noise, hole_fraction, ...). `jobs`
    worker processes generate the scenes (gcseg.parallel; 0 = one per core): the bytes do not depend on it."""
    if num_scenes < 1:
        raise ConfigError(f"num_scenes = {num_scenes} must be >= 1", fix="generate at least one scene")
    if not 0 <= num_val < num_scenes:
        raise ConfigError(f"num_val = {num_val} must be in [0, num_scenes - 1 = {num_scenes - 1}]",
                          fix="leave at least one training scene")
    if num_unlabelled < 0:
        raise ConfigError(f"num_unlabelled = {num_unlabelled} must be >= 0", fix="use 0 for no unlabelled scans")
    ids = [f"synth_{i:03d}" for i in range(num_scenes + num_unlabelled)]
    root = Path(root)
    # a killed earlier run may have left its temporary sibling (.<name>.*.tmp): only ours, never others'
    for stale in sorted(root.parent.glob(f".{root.name}.*.tmp")) if root.parent.is_dir() else []:
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    with atomic_path(root) as tmp:
        tmp.mkdir(parents=True)
        work = [(scene_seed(seed, i), sid, tmp / sid) for i, sid in enumerate(ids)]
        map_ordered(partial(_generate_and_write, scene_options=scene_options), work, jobs=jobs,
                    desc="synth scenes", progress=progress)
        splits = {"train": ids[: num_scenes - num_val], "val": ids[num_scenes - num_val:num_scenes]}
        if num_unlabelled:  # (absent: the default's splits.json bytes stay as they were)
            splits["unlabelled"] = ids[num_scenes:]
        (tmp / "splits.json").write_text(json.dumps(splits, indent=2) + "\n")
