"""Point-label training samples: the one layout that Stage 1, 2 and 3 supervision share.

A file holds one scene's samples under ``samples/<name>`` (Stage 1: one per keyframe, partial single-view
clouds; Stage 2 and 3: one full-scene sample). Each sample group has

  coord     float32 (N, 3)  world metres
  color     uint8   (N, 3)
  instance  int32   (N,)    pseudo-label instance id; -1 = unlabelled (ignored by the loss)

plus optional per-sample datasets a stage adds (e.g. ``score`` float32 (K,) per instance id, ``frame`` int32).
Root attributes: ``schema`` (which stage wrote it), ``schema_version``, ``scene_id``.
Readers accept any of POINT_SAMPLE_SCHEMAS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gcseg.errors import ArtifactError
from gcseg.io.h5 import open_h5, write_h5

SCHEMA_VERSION = 1  # the shared point-sample layout (and the version of schemas that add nothing else)
POINT_SAMPLE_SCHEMAS = ("gcseg.sam_keyframes", "gcseg.sam2_track", "gcseg.full_scene_pseudolabel")
# per schema: a stage's additions to the layout have their own version (sam2_track 2: per-point vote shares of
# the lifted labels and the diagnostics group, gcseg.tracking.artifact)
SCHEMA_VERSIONS: dict[str, int] = {"gcseg.sam_keyframes": SCHEMA_VERSION, "gcseg.sam2_track": 3,
                                   "gcseg.full_scene_pseudolabel": SCHEMA_VERSION}
REQUIRED = ("coord", "color", "instance")


def write_point_samples(path: str | Path, samples: Mapping[str, Mapping[str, Any]], *, schema: str, scene_id: str,
                        extra: Mapping[str, Any] | None = None) -> None:
    """Write samples (name -> {coord, color, instance, ...}) plus optional extra top-level datasets."""
    if schema not in POINT_SAMPLE_SCHEMAS:
        raise ValueError(f"unknown point-sample schema {schema}")
    tree: dict[str, Any] = {"samples": {}}
    for name, s in samples.items():
        for k in REQUIRED:
            if k not in s:
                raise ValueError(f"sample {name} lacks {k}")
        n = len(s["coord"])
        tree["samples"][name] = {
            **{k: v for k, v in s.items() if k not in REQUIRED},
            "coord": np.asarray(s["coord"], np.float32).reshape(n, 3),
            "color": np.asarray(s["color"], np.uint8).reshape(n, 3),
            "instance": np.asarray(s["instance"], np.int32).reshape(n),
        }
    if extra:
        tree.update(extra)
    write_h5(path, tree, schema=schema, version=SCHEMA_VERSIONS[schema], attrs={"scene_id": scene_id})


def config_json(config: Mapping[str, Any] | None) -> str:
    """A run config as stored in an artifact's `config` dataset: canonical JSON, so equal configs compare equal."""
    return json.dumps(dict(config or {}), sort_keys=True)


def is_finished(path: str | Path, schema: str, config: Mapping[str, Any] | None) -> bool:
    """True if `path` is a `schema` artifact of the current version written with run config `config` (stored by
    its writer as `config`; None accepts any). Files are written atomically, so one that opens with the right
    header is complete: a rerun (interrupted, sharded) skips it, and recomputes one written under other params."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with open_h5(path, schema=schema, version=SCHEMA_VERSIONS[schema]) as f:
            if config is None:
                return True
            if "config" not in f:
                return False
            raw = f["config"][()]
            return (raw.decode() if isinstance(raw, bytes) else raw) == config_json(config)
    except (ArtifactError, OSError):
        return False


def read_point_samples(path: str | Path, schemas: tuple[str, ...] = POINT_SAMPLE_SCHEMAS
                       ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Yield (sample name, {coord, color, instance, ...}) in sorted name order, lazily."""
    path = Path(path)
    for schema in schemas:
        try:
            f = open_h5(path, schema=schema, version=SCHEMA_VERSIONS[schema])
            break
        except ArtifactError as exc:
            if "expected a" not in exc.message:
                raise
    else:
        raise ArtifactError(f"not a point-sample artifact (expected one of {list(schemas)})", path=path,
                            fix="pass the output folder of sam_keyframes, sam2_track or full_scene_pseudolabel")
    with f:
        if "samples" not in f:
            raise ArtifactError("artifact has no 'samples' group", path=path, fix="rerun the stage that wrote it")
        for name in sorted(f["samples"]):
            g = f["samples"][name]
            yield name, {k: g[k][()] for k in g}
