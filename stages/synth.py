"""DVC stage `synth`: generate the embedded default data, procedural indoor scans with GT, in the posed
RGB-D layout (`gcseg.synth.writer`), plus `splits.json`.

    python -m stages.synth --params params.yaml --out data/scenes
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import Field, ValidationInfo, field_validator

from stages._common import Section, load_params, make_app, run_module, user_errors
from stages._jobs import JobsOption


class SynthSection(Section):
    """`synth:` in params.yaml (ranges enforced here; meanings are commented in params.yaml)."""

    num_scenes: int = Field(8, ge=1, le=10000)
    num_val: int = Field(4, ge=0)
    num_unlabelled: int = Field(0, ge=0, le=10000)
    num_frames: int = Field(70, ge=2, le=100000)
    height: int = Field(240, ge=16, le=4096)
    width: int = Field(320, ge=16, le=4096)
    hfov_deg: float = Field(65.0, ge=20.0, le=140.0)
    depth_noise: float = Field(0.0, ge=0.0, le=0.2)
    hole_fraction: float = Field(0.0, ge=0.0, le=0.9)
    point_spacing: float = Field(0.02, ge=0.002, le=0.5)
    max_furniture: int = Field(8, ge=1, le=64)
    orbit_degrees: float = Field(330.0, ge=10.0, le=1080.0)
    camera_jitter: float = Field(1.0, ge=0.0, le=5.0)

    def scene_options(self) -> dict[str, Any]:
        """The per-scene options `gcseg.synth.write_dataset` passes to generate_scene: every field but the counts."""
        return self.model_dump(exclude={"num_scenes", "num_val", "num_unlabelled"})

    @field_validator("num_val")
    @classmethod
    def _leave_training_scenes(cls, v: int, info: ValidationInfo) -> int:
        n = info.data.get("num_scenes")
        if n is not None and v >= n:
            raise ValueError(f"must be < num_scenes ({n}) so that at least one scene trains")
        return v


class SynthParams(Section):
    """The params.yaml keys this stage reads (dvc.yaml `params: [seed, synth]`)."""

    seed: int
    synth: SynthSection


PARAMS_MODEL = SynthParams  # the DVC contract test compares its fields with dvc.yaml's `params:`

app = make_app("Generate synthetic indoor RGB-D scans with GT instances and parts (the embedded default data).")


@app.command()
@user_errors
def main(params: Path = typer.Option(Path("params.yaml"), "--params", help="params file (reads seed, synth)"),
         out: Path = typer.Option(..., "--out", help="output folder of scenes (replaced atomically)"),
         jobs: JobsOption = 0) -> None:
    """Generate the embedded default data: synthetic indoor RGB-D scans with GT instances, parts and a
    reference cloud, as `<out>/synth_XXX/` scene folders (posed RGB-D layout) plus `<out>/splits.json`."""
    from gcseg.synth import write_dataset

    p = load_params(params, SynthParams)
    s = p.synth
    write_dataset(out, num_scenes=s.num_scenes, num_val=s.num_val, seed=p.seed, num_unlabelled=s.num_unlabelled,
                  jobs=jobs, **s.scene_options())
    extra = f", {s.num_unlabelled} unlabelled" if s.num_unlabelled else ""
    typer.echo(f"synth: wrote {s.num_scenes + s.num_unlabelled} scenes ({s.num_scenes - s.num_val} train, "
               f"{s.num_val} val{extra}) to {out}")


if __name__ == "__main__":
    run_module(app)
