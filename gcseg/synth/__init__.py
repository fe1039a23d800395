"""Procedural synthetic indoor scans with GT: the embedded default data of the pipeline (`synth` stage).

`generate_scene(seed, ...)` builds one scan in memory; `write_scene` / `write_dataset` write the posed
RGB-D layout (colour, depth, pose, intrinsics, GT instance/part images, reference.ply, meta.json)."""

from gcseg.synth.generate import SynthScene, generate_scene
from gcseg.synth.layout import LABELS
from gcseg.synth.writer import contact_sheet, scene_seed, write_dataset, write_scene

__all__ = ["LABELS", "SynthScene", "contact_sheet", "generate_scene", "scene_seed", "write_dataset", "write_scene"]
