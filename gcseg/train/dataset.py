"""Training samples from point-sample folders (gcseg.io.samples), augmentation, and voxel batches.

Every random choice is drawn from a generator seeded by (seed, epoch, sample index), so a sample gets the same
augmentation whichever process, rank or batch position handles it: a resumed or distributed run sees exactly the
data an uninterrupted single-process run sees.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator
from scipy.ndimage import convolve1d

from gcseg.errors import ArtifactError, InputError
from gcseg.ids import compact_labels
from gcseg.io.h5 import check_schema
from gcseg.io.samples import POINT_SAMPLE_SCHEMAS, REQUIRED, SCHEMA_VERSIONS
from gcseg.models.decoder import SuperpointPool
from gcseg.models.loss import SceneTarget
from gcseg.models.mask_model import point_features
from gcseg.models.voxelize import scatter_mean, superpoint_labels, superpoint_pool, voxelize
from gcseg.train.config import AugmentConfig

__all__ = ["AugmentConfig", "PointSampleDataset", "Batch", "augment", "elastic_distortion", "list_sample_files",
           "make_batch", "random_crop", "sample_seed", "voxel_labels"]


RAW_CACHE_BYTES = 2 << 30  # 2 GiB: the default's samples take ~60 MB; ScanNet's 1 201 train scenes ~5 GB


def list_sample_files(folder: str | Path) -> list[Path]:
    """Sorted *.h5 files of a point-sample folder; InputError if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("labels folder not found", path=folder,
                         fix="run the upstream stage (sam_keyframes, sam2_track or full_scene_pseudolabel) first")
    files = sorted(folder.glob("*.h5"))
    if not files:
        raise InputError("labels folder holds no .h5 point-sample files", path=folder,
                         fix="run the upstream stage that writes it")
    return files


def _open(path: Path) -> h5py.File:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"not a readable HDF5 file ({exc})", path=path,
                            fix="rerun the stage that wrote it") from exc
    got = f.attrs.get("schema")
    got = got.decode() if isinstance(got, bytes) else got
    schema = got if got in POINT_SAMPLE_SCHEMAS else POINT_SAMPLE_SCHEMAS[0]
    try:
        check_schema(f, path, schema, SCHEMA_VERSIONS[schema])
    except ArtifactError:
        f.close()
        raise
    if "samples" not in f:
        f.close()
        raise ArtifactError("artifact has no 'samples' group", path=path, fix="rerun the stage that wrote it")
    return f


def elastic_distortion(coord: np.ndarray, granularity: float, magnitude: float, rng: np.random.Generator
                       ) -> np.ndarray:
    """Smooth random displacement field (Mask3D/SpatioTemporalSegmentation `elastic_distortion`), in metres."""
    lo = coord.min(0)
    dim = ((coord - lo).max(0) // granularity).astype(int) + 3
    noise = rng.standard_normal((*dim, 3)).astype(np.float32)
    k = np.ones(3, np.float32) / 3
    for _ in range(2):
        for ax in range(3):
            noise = convolve1d(noise, k, axis=ax, mode="constant")
    axes = [np.linspace(a - granularity, a + granularity * (d - 2), d) for a, d in zip(lo, dim)]
    interp = RegularGridInterpolator(axes, noise, bounds_error=False, fill_value=0.0)
    return coord + interp(coord).astype(np.float32) * magnitude


def augment(coord: np.ndarray, color: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    coord = coord - coord.mean(0)
    if cfg.rotate_z:
        a = rng.uniform(-np.pi, np.pi)
        c, s = np.cos(a), np.sin(a)
        coord = coord @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float32).T
    if cfg.flip:
        for ax in (0, 1):
            if rng.random() < 0.5:
                coord[:, ax] = -coord[:, ax]
    if cfg.scale:
        coord = coord * rng.uniform(1 - cfg.scale, 1 + cfg.scale)
    for gran, mag in cfg.elastic:
        coord = elastic_distortion(coord, gran, mag, rng)
    if cfg.color_jitter:
        gain, offset = 1 + rng.normal(0, cfg.color_jitter), rng.normal(0, cfg.color_jitter * 255, 3)
        col = color.astype(np.float32) * gain + offset
        color = np.clip(np.rint(col), 0, 255).astype(np.uint8)
    return coord.astype(np.float32), color


class PointSampleDataset:
    """All labelled samples of a list of point-sample files, read lazily (h5py) by index.

    Samples without a single labelled point are dropped; a file none of whose samples has a label is skipped
    with a warning (listed in `unlabelled_files`); no labelled sample at all is an error.
    """

    def __init__(self, files: list[Path], *, augment_cfg: AugmentConfig | None, seed: int,
                 max_points: int | None = None, crop_size: float | None = None,
                 superpoints: str | Path | None = None, cache_bytes: int = RAW_CACHE_BYTES,
                 label_confidence: bool = False):
        self.files = [Path(f) for f in files]
        # also read each label's confidence (point_label_confidence), for the objectness target "confidence"
        self.label_confidence = bool(label_confidence)
        # raw samples read once and kept (least recently used out beyond cache_bytes): an epoch visits every
        # sample `repeats` times, and re-reading a full scene and its superpoints from HDF5 for every crop took
        # 34 of a Stage 2 step's ~400 ms on the default (2 threads); same batches, byte-identical models
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[int, tuple[dict[str, np.ndarray], int]] = OrderedDict()  # sample, its nbytes
        self._cached = 0
        # folder of gcseg.superpoints files named like the label files: a sample's superpoints are its own
        # sample's (keyframe clouds) or the scene's reference cloud's (full-scene samples)
        self.superpoints = None if superpoints is None else Path(superpoints)
        self.augment_cfg = augment_cfg
        self.seed = seed
        self.max_points = max_points
        self.crop_size = crop_size
        self.index: list[tuple[int, str]] = []
        self.dropped = 0
        self.unlabelled_files: list[Path] = []
        for fi, path in enumerate(self.files):
            kept = 0
            with _open(path) as f:
                names = sorted(f["samples"])
                for name in names:
                    g = f["samples"][name]
                    missing = [k for k in REQUIRED if k not in g]
                    if missing:
                        raise ArtifactError(f"sample {name} lacks {missing}", path=path,
                                            fix="rerun the stage that wrote it")
                    if len(g["coord"]) and (g["instance"][()] >= 0).any():
                        self.index.append((fi, name))
                        kept += 1
                    else:
                        self.dropped += 1
            if kept == 0:
                self.unlabelled_files.append(path)
        if not self.index:  # before the warning: a failing command prints its one error line only
            raise InputError(f"none of the {len(self.files)} label file(s) has a labelled point",
                             path=self.files[0].parent if self.files else None,
                             fix="check the upstream stage's thresholds (e.g. min points, tau_conf) and its metrics")
        if self.unlabelled_files:
            # A scene can legitimately end up without labels (e.g. nothing above tau_conf): train on the rest.
            print(f"warning: {len(self.unlabelled_files)} of {len(self.files)} label file(s) have no labelled "
                  f"point and are skipped: {', '.join(p.name for p in self.unlabelled_files)}", file=sys.stderr)

    def __len__(self) -> int:
        return len(self.index)

    def check_superpoints(self) -> None:
        """Read every sample's superpoints once (ArtifactError/InputError naming the file if one is missing or
        belongs to another cloud): a training run fails before it writes anything, not mid-epoch."""
        if self.superpoints is not None:
            for i in range(len(self)):
                self.raw(i)

    def raw(self, i: int) -> dict[str, np.ndarray]:
        """Sample i as stored (coord, color, instance, and superpoint with a superpoints folder), from the cache
        when it was read before: the arrays are shared by every visit, so callers copy before changing them
        (`get` does)."""
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit[0]
        out = self._read(i)
        size = sum(a.nbytes for a in out.values())
        if size <= self.cache_bytes:
            self._cache[i] = (out, size)
            self._cached += size
            while self._cached > self.cache_bytes:
                _, (_, old_size) = self._cache.popitem(last=False)
                self._cached -= old_size
        return out

    def _read(self, i: int) -> dict[str, np.ndarray]:
        fi, name = self.index[i]
        with _open(self.files[fi]) as f:
            g = f["samples"][name]
            out = {k: g[k][()] for k in REQUIRED}
            if self.label_confidence:
                out["confidence"] = point_label_confidence(g, out["instance"], self.files[fi])
        if self.superpoints is not None:
            out["superpoint"] = sample_superpoints(self.superpoints / self.files[fi].name, name, out["coord"])
        return out

    def get(self, i: int, epoch: int, draw: int | None = None) -> dict[str, np.ndarray]:
        """Sample i as augmented for `epoch`: coord float32 [N,3], color uint8 [N,3], instance int64 [N]
        (contiguous 0..K-1, -1 unlabelled).

        `draw` (default i) indexes the random draws: the loop passes its position in the epoch, so that a sample
        visited several times per epoch (TrainConfig.repeats) gets a new crop and augmentation each time."""
        s = self.raw(i)
        rng = np.random.default_rng([self.seed, epoch, i if draw is None else draw])
        # crop the cached arrays (indexing copies them); what is still the cache's is copied below
        coord, color, inst = s["coord"].astype(np.float32, copy=False), s["color"], s["instance"]
        sp, conf = s.get("superpoint"), s.get("confidence")
        if self.crop_size:
            keep = random_crop_mask(coord, inst, self.crop_size, rng)
            if keep is not None:
                coord, color, inst = coord[keep], color[keep], inst[keep]
                sp = None if sp is None else sp[keep]
                conf = None if conf is None else conf[keep]
        if self.max_points and len(coord) > self.max_points:
            keep = np.sort(rng.choice(len(coord), self.max_points, replace=False))
            coord, color, inst = coord[keep], color[keep], inst[keep]
            sp = None if sp is None else sp[keep]
            conf = None if conf is None else conf[keep]
        if color is s["color"]:  # nothing cropped or subsampled: never hand out (or jitter) the cache's arrays
            color = color.copy()
            sp = None if sp is None else sp.copy()
        if self.augment_cfg is not None:  # returns new coordinates (centred), never the cache's
            coord, color = augment(coord, color, self.augment_cfg, rng)
        else:
            coord = coord - coord.mean(0)
        out = {"coord": coord, "color": color, "instance": compact_labels(inst)}
        if sp is not None:
            out["superpoint"] = sp
        if conf is not None:  # never changed in place: the cache's array may be handed out as it is
            out["confidence"] = conf
        return out


def point_label_confidence(group: h5py.Group, instance: np.ndarray, path: Path) -> np.ndarray:
    """Per point, the confidence of its label (0 where unlabelled), float32 [N]: a pseudo-label's score (the
    sample's ``score``, per instance id: full_scene_pseudolabel), or a lifted label's as the lift-only row ranks
    it (the mean over the instance's points of the lower Wilson bound of their vote shares, ``share`` and
    ``votes``: sam2_track). ArtifactError naming `path` for samples that carry neither (Stage 1's keyframes)."""
    from gcseg.lifting import label_confidence

    inst = np.asarray(instance, np.int64)
    out = np.zeros(inst.shape, np.float32)
    lab = inst >= 0
    if "score" in group:
        score = np.asarray(group["score"][()], np.float32)
        if lab.any() and int(inst[lab].max()) >= len(score):
            raise ArtifactError(f"instance id {int(inst[lab].max())} but only {len(score)} scores", path=path,
                                fix="rerun the stage that wrote it")
        out[lab] = score[inst[lab]]
    elif "share" in group and "votes" in group:
        ids, inv = np.unique(inst[lab], return_inverse=True)
        if ids.size:
            out[lab] = label_confidence(inst, group["share"][()], group["votes"][()], ids)[inv]
    else:
        raise ArtifactError("the labels carry no confidence (no score, no vote shares)", path=path,
                            fix="loss.objectness confidence trains on sam2_track or full_scene_pseudolabel "
                                "labels (Stages 2 and 3); use another objectness for this stage")
    return out


def random_crop_mask(coord: np.ndarray, inst: np.ndarray, size: float, rng: np.random.Generator
                     ) -> np.ndarray | None:
    """Which points lie inside a `size` x `size` m box (x, y; all heights) centred on a random labelled point;
    None if the cloud fits in the box (kept whole).

    Why: a full-scene sample is one optimisation step per epoch; crops give many cheaper, varied steps per scene
    (Mask3D trains on crops of large scenes the same way)."""
    x, y = coord[:, 0], coord[:, 1]  # per column: a reduction over a strided (N, 2) view is 30x slower
    if x.max() - x.min() <= size and y.max() - y.min() <= size:
        return None
    labelled = np.flatnonzero(inst >= 0)
    c = coord[labelled[rng.integers(len(labelled))], :2] if len(labelled) else coord[rng.integers(len(coord)), :2]
    return (np.abs(x - c[0]) <= size / 2) & (np.abs(y - c[1]) <= size / 2)


def random_crop(coord: np.ndarray, color: np.ndarray, inst: np.ndarray, size: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points inside the box of :func:`random_crop_mask` (the whole cloud if it fits)."""
    keep = random_crop_mask(coord, inst, size, rng)
    return (coord, color, inst) if keep is None else (coord[keep], color[keep], inst[keep])


def sample_superpoints(path: Path, name: str, coord: np.ndarray) -> np.ndarray:
    """Superpoints of one sample: its own entry in the superpoints file, else the file's reference cloud (a
    full-scene sample is the scene's reference cloud). Checked to belong to `coord`."""
    from gcseg.superpoints import REFERENCE, read_superpoints

    if not path.is_file():
        raise InputError("no superpoints for this label file", path=path,
                         fix="run the superpoints stages (`dvc repro superpoints keyframe_superpoints`)")
    try:
        return read_superpoints(path, name, coord)
    except ArtifactError as exc:
        if "no superpoints for sample" not in exc.message:
            raise
        return read_superpoints(path, REFERENCE, coord)


def mix_samples(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mix3D: one sample of two, their points overlaid as they are (each centred by its augmentation); b's
    instances and superpoints renumbered after a's, so that no label or superpoint spans both."""
    if ("superpoint" in a) != ("superpoint" in b):
        raise ValueError("mix_samples: both samples need superpoints, or neither")
    inst_b = np.where(b["instance"] >= 0, b["instance"] + (int(a["instance"].max()) + 1), -1)
    out = {"coord": np.concatenate([a["coord"], b["coord"]]), "color": np.concatenate([a["color"], b["color"]]),
           "instance": compact_labels(np.concatenate([a["instance"], inst_b]))}
    if "confidence" in a and "confidence" in b:
        out["confidence"] = np.concatenate([a["confidence"], b["confidence"]])
    if "superpoint" in a:
        out["superpoint"] = np.concatenate([a["superpoint"], b["superpoint"] + (int(a["superpoint"].max()) + 1)])
    return out


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of one sample's random draws inside the model and loss (key subsample, matcher points)."""
    return int(np.random.default_rng([seed, epoch, index, 1]).integers(0, 2**31 - 1))


def voxel_labels(inverse: torch.Tensor, labels: torch.Tensor, num_voxels: int) -> torch.Tensor:
    """Majority instance of each voxel's labelled points (ties -> smaller id), -1 if none is labelled."""
    m = labels >= 0
    out = torch.full((num_voxels,), -1, dtype=torch.long)
    if not bool(m.any()):
        return out
    k = int(labels.max()) + 1
    key = inverse[m] * k + labels[m]
    uk, cnt = torch.unique(key, return_counts=True)
    vox, lab = uk // k, uk % k
    # order by voxel, then count descending, then label ascending; first row per voxel wins
    order = np.lexsort((lab.numpy(), -cnt.numpy(), vox.numpy()))
    vox, lab = vox[order], lab[order]
    first = torch.ones(len(vox), dtype=torch.bool)
    first[1:] = vox[1:] != vox[:-1]
    out[vox[first]] = lab[first]
    return out


def instance_confidence(sample: dict[str, np.ndarray]) -> torch.Tensor | None:
    """Per instance index 0..K-1 of a sample (compact labels), its label's confidence (the sample's per-point
    "confidence", equal on all of an instance's points); None without it."""
    if "confidence" not in sample:
        return None
    inst = sample["instance"]
    lab = inst >= 0
    out = np.zeros(int(inst.max()) + 1 if lab.any() else 0, np.float32)
    out[inst[lab]] = sample["confidence"][lab]
    return torch.from_numpy(out)


@dataclass
class Batch:
    coords: torch.Tensor  # [V, 4] (batch, x, y, z)
    feats: torch.Tensor  # [V, C]
    targets: list[SceneTarget]  # labels per voxel, or per superpoint when `sp` is set
    sp: SuperpointPool | None = None

    @property
    def seeds(self) -> list[int]:
        return [t.seed for t in self.targets]


def make_batch(samples: list[dict[str, np.ndarray]], seeds: list[int], *, voxel_size: float, in_channels: int,
               mask_on: str = "voxel") -> Batch:
    """Voxelise samples into one batch; with mask_on "superpoint" every sample needs its "superpoint" ids and
    the targets are per superpoint (majority label of its points)."""
    coords, feats, targets, parts = [], [], [], []
    for b, (s, seed) in enumerate(zip(samples, seeds)):
        vox = voxelize(torch.from_numpy(s["coord"]), voxel_size, None)
        c = vox.coords.clone()
        c[:, 0] = b
        v = len(c)
        coords.append(c)
        feats.append(scatter_mean(point_features(s["coord"], s["color"], in_channels), vox.inverse, v))
        if mask_on == "superpoint":
            if "superpoint" not in s:
                raise InputError("the model predicts on superpoints but a training sample has none",
                                 fix="pass the superpoints folder (--superpoints) to the training stage")
            part, sp = superpoint_pool(s["superpoint"], vox.inverse.numpy(), s["coord"], voxel_size, v)
            parts.append(part)
            targets.append(SceneTarget(torch.from_numpy(superpoint_labels(sp, s["instance"])), seed,
                                       instance_confidence(s)))
        else:
            targets.append(SceneTarget(voxel_labels(vox.inverse, torch.from_numpy(s["instance"]), v), seed,
                                       instance_confidence(s)))
    pool = SuperpointPool(*[list(x) for x in zip(*parts)]) if parts else None
    return Batch(torch.cat(coords), torch.cat(feats), targets, pool)
