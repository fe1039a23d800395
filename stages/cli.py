"""The `gcseg` console script: every DVC stage as a command, plus the tools that work without DVC.

Commands are the stage modules' own Typer commands (kebab-case names); `dvc.yaml` calls the same code as
`python -m stages.<name>` so that queued experiments run their own copy of it.
"""

from __future__ import annotations

import importlib
import inspect

import typer

# (command name, module under stages/, one-line help): pipeline order first, then standalone tools.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("synth", "synth", "Generate the embedded default: synthetic indoor scenes with GT (first DVC stage)."),
    ("superpoints", "superpoints", "Superpoints of every reference cloud (segs.json or graph oversegmentation)."),
    ("sam-keyframes", "sam_keyframes", "Stage 1 data: keyframe mask proposals, containment filter, lifting."),
    ("keyframe-superpoints", "keyframe_superpoints", "Superpoints of every Stage 1 keyframe cloud."),
    ("stage1-train", "stage1_train", "Train the sparse-conv UNet + query decoder on Stage 1 labels."),
    ("sam2-track", "sam2_track", "Stage 2 data: granularity-consistent tracking (Algorithm 1) and lifting."),
    ("stage2-train", "stage2_train", "Fine-tune the Stage 1 model on tracked multi-view labels."),
    ("full-scene-pseudolabel", "full_scene_pseudolabel", "Stage 3 data: full-scene pseudo-labels above tau_conf."),
    ("stage3-train", "stage3_train", "Fine-tune the Stage 2 model on full-scene pseudo-labels (+ tracked labels)."),
    ("baselines", "baselines", "Training-free baselines (MaskClustering, SAI3D) as ablation rows."),
    ("eval", "eval", "Class-agnostic AP/AP50/AP25 of every stage side by side (the ablation table)."),
    ("report", "report", "Write the HTML report with tables, curves and 3D views."),
    ("predict", "predict", "Segment a scan or point cloud with a trained model (no DVC needed)."),
    ("segment", "segment", "Instances of one scan without training: proposals, tracking, lifting (no DVC needed)."),
    ("evaluate", "evaluate", "Score ScanNet-format predictions against GT files (no DVC needed)."),
    ("unseen", "unseen", "A trained model on the rooms of fresh synth seeds, beside its val figure (leak check)."),
    ("sweep", "sweep", "Threshold study: queue DVC experiments over values of a tau and plot AP."),
    ("dvc-deps", "dvc_deps", "Check or rewrite each stage's code deps in dvc.yaml from its imports."),
)

app = typer.Typer(
    name="gcseg",
    help="Class-agnostic 3D instance segmentation from posed RGB-D scans (arXiv 2511.00785) as a DVC pipeline. "
    "Run the whole method with `dvc repro`; each command below is one stage or tool.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def reflow(doc: str) -> str:
    """A docstring as help text: each paragraph's lines joined into one (Typer's rich help keeps a docstring's line
    breaks and the terminal wraps again, which left half-empty lines), blank-line paragraphs and lists kept."""
    out = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        lines = para.splitlines()
        listed = any(ln.lstrip().startswith(("-", "*", "|")) or ln.startswith(" ") for ln in lines)
        out.append(para if listed else " ".join(ln.strip() for ln in lines))
    return "\n\n".join(out)


for _name, _module, _help in COMMANDS:
    _mod = importlib.import_module(f"stages.{_module}")  # stage modules import torch & co. lazily
    app.command(name=_name, help=reflow(_mod.main.__doc__) if _mod.main.__doc__ else _help)(_mod.main)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
