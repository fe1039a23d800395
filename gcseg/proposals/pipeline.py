"""Stage 1 data for one scene: keyframes -> mask proposals -> containment filter -> id map -> lifted partial
cloud with pseudo-instance labels; one HDF5 (gcseg.io.samples layout, schema ``gcseg.sam_keyframes``) and an
overlay PNG per scene.

File layout (on top of the shared point-sample layout):
  samples/kf_<frame:06d>/{coord, color, instance, score (K,) per instance id, frame}  (keyframes with >= 1 instance)
  keyframes     int32 (F,)   every processed keyframe (frame indices, ascending)
  num_proposals int32 (F,)   masks proposed per keyframe (before the filter)
  num_kept      int32 (F,)   masks surviving the containment filter (before min_points)
  masks/kf_*    uint16 (H, W) final id map: v >= 1 is sample instance v - 1, 0 = no instance
  scores/kf_*   float32 (K,) score per instance id
  summary       JSON string: per-keyframe counts and GT coverage hits (for the stage metrics)
  config        JSON string: what produced the file (a rerun with another config recomputes it)
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import ArtifactError, InputError
from gcseg.geometry import voxel_downsample
from gcseg.io.h5 import open_h5
from gcseg.io.samples import SCHEMA_VERSION, config_json, write_point_samples
from gcseg.lifting import lift_frame
from gcseg.masks import masks_to_id_map
from gcseg.proposals.base import MaskProposer
from gcseg.proposals.containment import containment_filter
from gcseg.proposals.coverage import best_iou_per_instance
from gcseg.proposals.keyframes import select_keyframes
from gcseg.scene import Frame, Scene

SCHEMA = "gcseg.sam_keyframes"


@dataclass
class KeyframeStats:
    frame: int
    proposals: int  # masks proposed
    kept: int  # after the containment filter (and min_area)
    instances: int  # after min_points (labelled instances of the sample)
    points: int  # lifted points (valid depth pixels, after optional voxel downsampling)
    labelled_points: int
    gt_instances: int = 0  # GT instances >= coverage_min_area px (0 without GT)
    gt_hits_proposals: int = 0  # of those, matched at IoU >= coverage_iou by a proposal
    gt_hits_kept: int = 0  # ... by a mask surviving the filter


@dataclass
class SceneResult:
    scene_id: str
    keyframes: list[int]
    stats: list[KeyframeStats] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(s.instances for s in self.stats)

    def to_json(self) -> dict[str, Any]:
        return {"scene_id": self.scene_id, "keyframes": self.keyframes, "stats": [asdict(s) for s in self.stats]}


def sample_name(frame_index: int) -> str:
    return f"kf_{frame_index:06d}"


def check_frame(scene: Scene, frame: Frame) -> None:
    """A keyframe must match the scene's image size (depth, colour, GT) and carry uint8 RGB colour."""
    where = f"{scene.root}/{scene.scene_id}" if scene.root else scene.scene_id
    h, w = scene.image_size
    if frame.depth.shape != (h, w):
        raise InputError(f"frame {frame.index} ({frame.name or frame.index}): depth is {frame.depth.shape[:2]}, "
                         f"the scene's image size is {(h, w)}", path=where,
                         fix="every frame of a scene must have the same size: re-export the scan")
    if frame.color.shape != (h, w, 3) or frame.color.dtype != np.uint8:
        raise InputError(f"frame {frame.index} ({frame.name or frame.index}): colour is {frame.color.dtype} "
                         f"{frame.color.shape}, expected uint8 {(h, w, 3)} (resized to the depth resolution)",
                         path=where, fix="re-export the scan; readers resize colour to the depth size")
    for name in ("instance", "part"):
        gt = getattr(frame, name)
        if gt is not None and gt.shape != (h, w):
            raise InputError(f"frame {frame.index}: GT {name} map is {gt.shape}, expected {(h, w)}", path=where,
                             fix="regenerate the GT images at the depth resolution")


def relabel_min_points(id_map: np.ndarray, point_ids: np.ndarray, min_points: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop ids with fewer than `min_points` lifted points. Returns (old ids kept, ascending; new point labels
    0..K-1 or -1; new id map uint16 with v = label + 1, 0 = none)."""
    ids, counts = np.unique(point_ids[point_ids > 0], return_counts=True)
    keep = ids[counts >= min_points]
    lut = np.full(int(id_map.max(initial=0)) + 1, -1, np.int64)
    lut[keep] = np.arange(len(keep))
    labels = np.where(point_ids > 0, lut[np.clip(point_ids, 0, None)], -1).astype(np.int32)
    new_map = (lut[id_map] + 1).astype(np.uint16)
    return keep, labels, new_map


def process_keyframe(frame: Frame, proposer: MaskProposer, *, tau_contain: float, min_area: int, min_points: int,
                     voxel_size: float = 0.0, coverage_min_area: int = 500, coverage_iou: float = 0.5
                     ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, KeyframeStats]:
    """One keyframe -> (sample {coord, color, instance, score, frame}, id map uint16, scores, stats). With
    `voxel_size` > 0 the lifted points are downsampled (one per voxel) first; min_points, the instance ids, the
    scores and the id map then count only the points that are stored."""
    props = proposer(frame)
    if props.masks.shape[1:] != frame.hw:
        raise InputError(f"proposer {getattr(proposer, 'name', '?')} returned masks of size {props.masks.shape[1:]} "
                         f"for a {frame.hw} frame", fix="a proposer must return masks at the frame's resolution")
    kept = containment_filter(props.masks, props.scores, tau_contain, min_area)
    masks, scores = props.masks[kept], props.scores[kept]
    id_map = masks_to_id_map(masks, order=np.arange(len(kept)))  # kept is area-descending: small on top
    coord, color, point_ids = lift_frame(frame, id_map)
    if voxel_size > 0 and len(coord):  # before min_points: every listed instance has min_points stored points
        sel = voxel_downsample(coord, voxel_size)
        coord, color, point_ids = coord[sel], color[sel], point_ids[sel]
    old_ids, labels, new_map = relabel_min_points(id_map, point_ids, min_points)
    inst_scores = scores[old_ids - 1].astype(np.float32) if len(old_ids) else np.zeros((0,), np.float32)
    stats = KeyframeStats(frame=int(frame.index), proposals=len(props), kept=len(kept), instances=len(old_ids),
                          points=int(len(coord)), labelled_points=int((labels >= 0).sum()))
    if frame.instance is not None:
        gt = np.asarray(frame.instance)
        before = best_iou_per_instance(gt, props.masks, coverage_min_area)
        after = best_iou_per_instance(gt, masks, coverage_min_area)
        stats.gt_instances = int(len(before))
        stats.gt_hits_proposals = int((before >= coverage_iou).sum())
        stats.gt_hits_kept = int((after >= coverage_iou).sum())
    sample = {"coord": coord, "color": color, "instance": labels, "score": inst_scores,
              "frame": np.int32(frame.index)}
    return sample, new_map, inst_scores, stats


def render_overlay(tiles: list[tuple[np.ndarray, np.ndarray, int]], image_size: tuple[int, int],
                   max_tiles: int = 16, columns: int = 4) -> bytes:
    """PNG bytes: a grid of keyframes (colour blended with a fixed colour per id; no-instance pixels dimmed).
    `tiles`: (colour uint8 HxWx3, id map, frame index). At most `max_tiles`, evenly spread over the scene."""
    from PIL import Image, ImageDraw

    from gcseg.colors import instance_palette

    h, w = image_size
    if len(tiles) > max_tiles:
        pick = np.unique(np.linspace(0, len(tiles) - 1, max_tiles).round().astype(int))
        tiles = [tiles[i] for i in pick]
    if not tiles:
        tiles = [(np.full((h, w, 3), 96, np.uint8), np.zeros((h, w), np.uint16), -1)]
    up = max(1, 320 // max(w, 1))  # small frames (the synthetic 160x120) are shown enlarged, pixels kept sharp
    tiles = [(np.repeat(np.repeat(c, up, 0), up, 1), np.repeat(np.repeat(m, up, 0), up, 1), i) for c, m, i in tiles]
    h, w = h * up, w * up
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    canvas = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for t, (color, id_map, _) in enumerate(tiles):
        ids = id_map.astype(np.int64)
        pal = instance_palette(ids.ravel()).reshape(h, w, 3).astype(np.float32)
        base = color.astype(np.float32)
        img = np.where((ids > 0)[..., None], 0.45 * base + 0.55 * pal, 0.6 * base)
        # mask boundaries in black
        edge = np.zeros((h, w), bool)
        edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
        edge[1:, :] |= ids[1:, :] != ids[:-1, :]
        img[edge & (ids > 0)] = 0
        r, c = divmod(t, cols)
        canvas[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = img.astype(np.uint8)
    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    for t, (_, _, idx) in enumerate(tiles):
        if idx >= 0:
            r, c = divmod(t, cols)
            draw.text((c * (w + 2) + 3, r * (h + 2) + 2), str(idx), fill=(255, 255, 255))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")  # no timestamps or text chunks: same pixels -> same bytes
    return buf.getvalue()


def run_sam_keyframes(scene: Scene, proposer: MaskProposer, *, stride: int, min_valid_depth: float,
                      tau_contain: float, min_area: int, min_points: int, out_h5: str | Path,
                      overlay_png: str | Path | None = None, voxel_size: float = 0.0,
                      coverage_min_area: int = 500, coverage_iou: float = 0.5,
                      config: Mapping[str, Any] | None = None, progress: bool | None = None) -> SceneResult:
    """Process one scene end to end and write its HDF5 (and overlay PNG). Nothing is written if any keyframe
    fails (errors are raised before the atomic writes). A scene without usable keyframes, or whose keyframes
    all end up without instances, gives a valid file with no samples and a warning."""
    from tqdm import tqdm

    from gcseg.atomic import write_bytes

    keyframes = select_keyframes(scene, stride, min_valid_depth)
    result = SceneResult(scene.scene_id, keyframes)
    samples: dict[str, dict[str, Any]] = {}
    id_maps: dict[str, np.ndarray] = {}
    score_sets: dict[str, np.ndarray] = {}
    tiles: list[tuple[np.ndarray, np.ndarray, int]] = []
    disable = None if progress is None else not progress  # None: a bar on a terminal only
    for i in tqdm(keyframes, desc=f"{scene.scene_id} keyframes", unit="kf", leave=False, disable=disable):
        frame = scene.frame(i)
        check_frame(scene, frame)
        sample, id_map, scores, stats = process_keyframe(
            frame, proposer, tau_contain=tau_contain, min_area=min_area, min_points=min_points,
            voxel_size=voxel_size, coverage_min_area=coverage_min_area, coverage_iou=coverage_iou)
        name = sample_name(i)
        result.stats.append(stats)
        id_maps[name] = id_map
        score_sets[name] = scores
        tiles.append((frame.color, id_map, i))
        if stats.instances:
            samples[name] = sample
    if result.empty:
        why = "no keyframe has enough valid depth" if not keyframes else "no mask survived on any keyframe"
        warnings.warn(f"scene {scene.scene_id}: {why}; writing an empty Stage 1 result", RuntimeWarning, stacklevel=2)
    n = len(keyframes)
    extra = {
        "keyframes": np.asarray(keyframes, np.int32).reshape(n),
        "num_proposals": np.asarray([s.proposals for s in result.stats], np.int32).reshape(n),
        "num_kept": np.asarray([s.kept for s in result.stats], np.int32).reshape(n),
        "masks": id_maps,
        "scores": score_sets,
        "summary": json.dumps(result.to_json(), sort_keys=True),
        "config": config_json(config),
    }
    png = render_overlay(tiles, scene.image_size) if overlay_png is not None else None
    write_point_samples(out_h5, samples, schema=SCHEMA, scene_id=scene.scene_id, extra=extra)
    if png is not None:
        write_bytes(overlay_png, png)
    return result


def scene_coverage(scene: Scene, proposer: MaskProposer, *, stride: int, min_valid_depth: float,
                   tau_contain: float, min_area: int, coverage_min_area: int = 500, coverage_iou: float = 0.5
                   ) -> tuple[int, int, int]:
    """GT coverage on a scene's keyframes without writing anything (for val scenes Stage 1 does not train on):
    (GT instances >= coverage_min_area px, matched by a proposal, matched by a mask surviving the filter)."""
    total = hits = hits_kept = 0
    for i in select_keyframes(scene, stride, min_valid_depth):
        frame = scene.frame(i)
        if frame.instance is None:
            continue
        check_frame(scene, frame)
        props = proposer(frame)
        kept = containment_filter(props.masks, props.scores, tau_contain, min_area)
        before = best_iou_per_instance(np.asarray(frame.instance), props.masks, coverage_min_area)
        after = best_iou_per_instance(np.asarray(frame.instance), props.masks[kept], coverage_min_area)
        total += len(before)
        hits += int((before >= coverage_iou).sum())
        hits_kept += int((after >= coverage_iou).sum())
    return total, hits, hits_kept


def read_summary(path: str | Path) -> dict[str, Any]:
    """The per-keyframe summary a file holds (schema checked)."""
    with open_h5(path, schema=SCHEMA, version=SCHEMA_VERSION) as f:
        if "summary" not in f:
            raise ArtifactError("no 'summary' dataset", path=path, fix="rerun the sam_keyframes stage")
        raw = f["summary"][()]
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
