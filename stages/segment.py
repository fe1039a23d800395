"""`gcseg segment`: instances of one scan without training. Keyframe mask proposals, Algorithm 1 tracking and
voting onto the scan's points (its reference.ply or mesh, else a cloud fused from depth) with the pipeline's
settings; writes what `gcseg predict` writes (ScanNet benchmark files, an instance-coloured PLY, a summary) plus a
preview PNG. With --checkpoint the trained model's prediction on the same points (Stage 3 quality, slower to get:
it needs the pipeline's training) replaces the training-free instances, and the summary says how far the two
agree. No DVC needed. Defaults are the pipeline's: the typed params sections of `sam_keyframes` and `sam2_track`
(or a params.yaml given with --params); options below override single keys."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from pydantic import Field, ValidationError

from stages._common import Section, load_params, make_app, run_module, user_errors
from stages.sam2_track import Sam2TrackSection
from stages.sam_keyframes import SamKeyframesSection

app = make_app(__doc__ or "")


class SegmentParams(Section):
    """The params.yaml keys `gcseg segment` uses: those `sam_keyframes` and `sam2_track` read (same sections,
    same defaults; the thresholds' defaults equal params.yaml's, which tests/test_segment.py checks)."""

    seed: int = 0
    tau_contain: float = Field(0.8, ge=0.0, le=1.0)
    tau_iou: float = Field(0.7, ge=0.0, lt=1.0)
    tau_dorm: int = Field(3, ge=0)
    sam_keyframes: SamKeyframesSection = SamKeyframesSection()
    sam2_track: Sam2TrackSection = Sam2TrackSection()


DEFAULTS = SegmentParams()
# command-line option -> the params key it sets (dotted)
OPTION_KEYS: dict[str, str] = {
    "seed": "seed", "tau_contain": "tau_contain", "tau_iou": "tau_iou", "tau_dorm": "tau_dorm",
    "proposer": "sam_keyframes.backend", "sam_checkpoint": "sam_keyframes.sam.checkpoint",
    "sam_model_type": "sam_keyframes.sam.model_type", "min_area_frac": "sam_keyframes.min_area_frac",
    "tracker": "sam2_track.backend", "sam2_checkpoint": "sam2_track.sam2.checkpoint",
    "sam2_config": "sam2_track.sam2.config", "keyframe_stride": "sam2_track.keyframe_stride",
    "min_points": "sam2_track.lift.min_points",
}


def default_of(key: str) -> Any:
    """The default of a dotted params key (for --help)."""
    value: Any = DEFAULTS
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _field(key: str) -> Any:
    """The pydantic FieldInfo of a dotted params key, or None if `key` names no field of a section."""
    model: Any = SegmentParams
    *parents, last = key.split(".")
    for part in parents:
        model = getattr(model, "model_fields", {}).get(part)
        model = None if model is None else model.annotation
    fields = getattr(model, "model_fields", {})
    return fields.get(last)


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def allowed_range(key: str) -> str | None:
    """The range pydantic enforces on a params key (its Field's ge/gt/le/lt), e.g. "in [0, 1)" or ">= 1"; None
    if it has none."""
    import annotated_types as at

    info = _field(key)
    lo = hi = None
    for c in [] if info is None else info.metadata:
        if isinstance(c, at.Ge):
            lo = ("[", ">=", c.ge)
        elif isinstance(c, at.Gt):
            lo = ("(", ">", c.gt)
        elif isinstance(c, at.Le):
            hi = ("]", "<=", c.le)
        elif isinstance(c, at.Lt):
            hi = (")", "<", c.lt)
    if lo and hi:
        return f"in {lo[0]}{_num(lo[2])}, {_num(hi[2])}{hi[0]}"
    if lo or hi:
        bound = lo or hi
        return f"{bound[1]} {_num(bound[2])}"
    return None


def _help(text: str, key: str) -> str:
    rng = allowed_range(key)
    return f"{text} Default {default_of(key)}{', ' + rng if rng else ''} (params key {key})."


def resolve_params(params: Path | None, overrides: dict[str, Any]) -> SegmentParams:
    """The typed defaults (or `params`' keys), then every option given on the command line, validated."""
    from gcseg.errors import ConfigError

    base = load_params(params, SegmentParams) if params is not None else DEFAULTS
    data = base.model_dump()
    for option, value in overrides.items():
        if value is None:
            continue
        *parents, last = OPTION_KEYS[option].split(".")
        node = data
        for k in parents:
            node = node[k]
        node[last] = value
    try:
        return SegmentParams.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        option = next((o for o, k in OPTION_KEYS.items() if k == loc), None)
        name = f"--{option.replace('_', '-')}" if option else loc
        rng = allowed_range(loc)
        fix = (f"give {name} a value {rng}" if rng else f"see `gcseg segment --help` for {name}" if option
               else f"check {name} in the --params file")
        raise ConfigError(f"{name}: {err['msg']} (got {err.get('input')!r})", fix=fix) from exc


def build_policy(p: SegmentParams, hw: tuple[int, int]) -> Any:
    """Algorithm 1's policy as the sam2_track stage builds it for an image of size `hw`: the thresholds plus every
    policy option of the `sam2_track` section, by name (`<name>_frac` pixel areas converted with the section's
    `<name>_px`), so an option added to both is picked up here too."""
    import dataclasses

    from gcseg.tracking.policy import TrackingPolicy

    cfg = p.sam2_track
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(TrackingPolicy):
        if not f.init or f.name in ("tau_iou", "tau_dorm"):
            continue
        if f.name in type(cfg).model_fields:
            kwargs[f.name] = getattr(cfg, f.name)
        elif f"{f.name}_frac" in type(cfg).model_fields:
            kwargs[f.name] = getattr(cfg, f"{f.name}_px")(hw)
    return TrackingPolicy(tau_iou=p.tau_iou, tau_dorm=p.tau_dorm, **kwargs)


# The library's fixes for these errors speak the pipeline's language (`dvc add`, `dvc exp run -S ...`); segment
# gives its own options instead. backend -> (segment's fix, a phrase of the error message it applies to)
SAM_FIX = ("download the official SAM weights (sam_vit_b_01ec64.pth for vit_b: "
           "https://github.com/facebookresearch/segment-anything#model-checkpoints) and pass --sam-checkpoint PATH "
           "(with --sam-model-type to match), or use the weight-free proposer: --proposer rgbd")
SAM2_FIX = ("download sam2.1_hiera_tiny.pt (https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
            "sam2.1_hiera_tiny.pt) and pass --sam2-checkpoint PATH (with --sam2-config to match), or track "
            "without weights: --tracker reprojection")
PROPOSER_FIXES = {"sam": (SAM_FIX, "checkpoint"),
                  "gt_sim": ("use --proposer rgbd: gt_sim simulates proposals from GT instance maps, which only "
                             "synthetic scans have", "GT instance map")}
TRACKER_FIXES = {"sam2": (SAM2_FIX, "checkpoint")}
_PIPELINE_WORDS = ("dvc ", "sam_keyframes.", "sam2_track.")


@contextlib.contextmanager
def own_fix(hint: tuple[str, str] | None) -> Iterator[None]:
    """`hint` = (fix, phrase): a library error whose message contains `phrase` and whose fix names params keys or
    dvc is re-raised as the same class with the same message and path, and segment's `fix`."""
    from gcseg.errors import GcsegError

    try:
        yield
    except GcsegError as exc:
        pipeline_fix = any(w in (exc.fix or "") for w in _PIPELINE_WORDS)
        if hint is None or hint[1] not in exc.message or not pipeline_fix:
            raise
        raise type(exc)(exc.message, path=exc.path, fix=hint[0]) from exc


def with_own_fix(proposer: Callable[[Any], Any], hint: tuple[str, str] | None) -> Callable[[Any], Any]:
    """`proposer` whose errors at first use (gt_sim on a scan without GT) get segment's fix (`own_fix`)."""

    def propose(frame: Any) -> Any:
        with own_fix(hint):
            return proposer(frame)

    return propose


PROPOSERS = "|".join(get_args(SamKeyframesSection.model_fields["backend"].annotation))
TRACKERS = "|".join(get_args(Sam2TrackSection.model_fields["backend"].annotation))


@app.command()
@user_errors
def main(
    input: Annotated[Path, typer.Option("--input", help="The scan: a posed RGB-D folder (color/, depth/, pose/, "
                                                        "intrinsic/), a ScanNet or a ScanNet++ scene folder.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created; several scans may share it).")],
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="A trained model.pt (e.g. "
                          "data/models/stage3/model.pt): its prediction replaces the training-free instances.")] = None,
    params: Annotated[Path | None, typer.Option("--params", help="Read the thresholds and the sam_keyframes / "
                      "sam2_track sections from this params.yaml instead of the defaults. Not tau_conf: its 0.6 "
                      "there picks Stage 3's pseudo-labels, while --tau-conf keeps every mask by default (see "
                      "--tau-conf).")] = None,
    source: Annotated[str, typer.Option("--source", help="auto | posed_rgbd | scannet | scannetpp.")] = "auto",
    scene_id: Annotated[str | None, typer.Option("--scene-id", help="Name of the outputs (default: folder name).")] = None,
    proposer: Annotated[str | None, typer.Option("--proposer", help=_help(f"Keyframe mask proposer: {PROPOSERS}.",
                                                                          "sam_keyframes.backend"))] = None,
    sam_checkpoint: Annotated[str | None, typer.Option("--sam-checkpoint", help=_help(
        "SAM weights for --proposer sam.", "sam_keyframes.sam.checkpoint"))] = None,
    sam_model_type: Annotated[str | None, typer.Option("--sam-model-type", help=_help(
        "vit_b | vit_l | vit_h.", "sam_keyframes.sam.model_type"))] = None,
    tracker: Annotated[str | None, typer.Option("--tracker", help=_help(f"Mask propagation: {TRACKERS}.",
                                                                        "sam2_track.backend"))] = None,
    sam2_checkpoint: Annotated[str | None, typer.Option("--sam2-checkpoint", help=_help(
        "SAM2 weights for --tracker sam2.", "sam2_track.sam2.checkpoint"))] = None,
    sam2_config: Annotated[str | None, typer.Option("--sam2-config", help=_help(
        "SAM2 config name.", "sam2_track.sam2.config"))] = None,
    tau_contain: Annotated[float | None, typer.Option("--tau-contain", help=_help(
        "Containment filter threshold.", "tau_contain"))] = None,
    tau_iou: Annotated[float | None, typer.Option("--tau-iou", help=_help(
        "A proposal continues a track if IoU > tau-iou.", "tau_iou"))] = None,
    tau_dorm: Annotated[int | None, typer.Option("--tau-dorm", help=_help(
        "Missed keyframes before a dormant object ends.", "tau_dorm"))] = None,
    keyframe_stride: Annotated[int | None, typer.Option("--keyframe-stride", help=_help(
        "Frames between keyframes.", "sam2_track.keyframe_stride"))] = None,
    min_area_frac: Annotated[float | None, typer.Option("--min-area-frac", help=_help(
        "Smallest proposal, as a fraction of the image area.", "sam_keyframes.min_area_frac"))] = None,
    min_points: Annotated[int | None, typer.Option("--min-points", help=_help(
        "Smallest instance in points.", "sam2_track.lift.min_points"))] = None,
    seed: Annotated[int | None, typer.Option("--seed", help=_help("Random seed.", "seed"))] = None,
    tau_conf: Annotated[float, typer.Option("--tau-conf", help="With --checkpoint: keep masks with score > "
                    "tau-conf (as gcseg predict), in [0, 1). The default keeps every mask, ranked by score, as the "
                    "benchmark's AP wants; --params does not set it (params.yaml's tau_conf, 0.6, selects Stage "
                    "3's pseudo-labels, a different use).")] = 0.0,
) -> None:
    """Instances of one scan without training (add --checkpoint for the trained model's prediction)."""
    from gcseg.atomic import check_output
    from gcseg.errors import InputError

    overrides = {"seed": seed, "tau_contain": tau_contain, "tau_iou": tau_iou, "tau_dorm": tau_dorm,
                 "proposer": proposer, "sam_checkpoint": sam_checkpoint, "sam_model_type": sam_model_type,
                 "min_area_frac": min_area_frac, "tracker": tracker, "sam2_checkpoint": sam2_checkpoint,
                 "sam2_config": sam2_config, "keyframe_stride": keyframe_stride, "min_points": min_points}
    p = resolve_params(params, overrides)  # options checked before any work
    if not 0.0 <= tau_conf < 1.0:
        raise InputError(f"--tau-conf must be in [0, 1), got {tau_conf}", fix="e.g. --tau-conf 0.6")
    check_output(out, folder=True, what="--out")  # an existing file there: fail now, not after tracking
    import numpy as np

    from gcseg.eval.gt_free import agreement
    from gcseg.predict import (ScanInput, _safe_scene_id, check_cloud, load_checkpoint, predict_masks,
                               write_prediction)
    from gcseg.proposals.factory import build_proposer, for_scene
    from gcseg.pseudolabel.resolve import assign_points
    from gcseg.segment import TrackSettings, open_scan, preview_png, segment_scene
    from gcseg.tracking.run import LiftConfig
    from gcseg.upright import scene_up
    from stages.sam2_track import build_propagator_from, scene_seed
    from stages.sam_keyframes import backend_options

    t0 = time.perf_counter()
    scene = open_scan(input, source=source, scene_id=scene_id)  # folders, frame lists, intrinsics
    sid = _safe_scene_id(scene.scene_id, Path(input))
    model = load_checkpoint(checkpoint)[0] if checkpoint is not None else None  # before minutes of tracking
    sk, cfg = p.sam_keyframes, p.sam2_track
    with own_fix(TRACKER_FIXES.get(cfg.backend)):
        propagator = build_propagator_from(cfg, p.seed)  # checks a SAM2 checkpoint up front
    s = scene_seed(p.seed, sid)  # as the sam2_track stage seeds this scene: the same labels
    np.random.seed(s)
    with own_fix(PROPOSER_FIXES.get(sk.backend)):
        proposer = build_proposer(sk.backend, backend_options(sk), seed=p.seed if sk.backend == "sam" else s)
    proposer = for_scene(proposer, scene)  # rgbd: the scene's world up, as the sam2_track stage gives it
    proposer = with_own_fix(proposer, PROPOSER_FIXES.get(sk.backend))
    hw = scene.image_size
    settings = TrackSettings(keyframe_stride=cfg.keyframe_stride, tau_contain=p.tau_contain,
                             min_area=sk.min_area_px(hw), lift=LiftConfig(**cfg.lift.model_dump()),
                             merge=cfg.merge_settings())
    seg = segment_scene(scene, proposer, propagator, build_policy(p, hw), settings, progress=sys.stderr.isatty())
    check_cloud(seg.cloud, Path(input))
    free_labels = assign_points(seg.masks, seg.scores)[0] if len(seg.masks) else np.full(len(seg.cloud), -1)
    extra: dict[str, Any] = {
        "method": "training-free (proposals, Algorithm 1 tracking, lifting by voting)",
        "settings": {"proposer": sk.backend, "tracker": cfg.backend, "seed": p.seed, "tau_contain": p.tau_contain,
                     "tau_iou": p.tau_iou, "tau_dorm": p.tau_dorm, "keyframe_stride": cfg.keyframe_stride,
                     "min_area_px": sk.min_area_px(hw), "min_points": cfg.lift.min_points},
        "track_stats": seg.stats,
    }
    masks, scores = seg.masks, seg.scores
    if model is not None:
        from gcseg.models.config import FragmentConfig

        fragments = FragmentConfig()  # as gcseg predict's default: a mask's connected pieces too
        masks, scores = predict_masks(model, seg.cloud, tau_conf=tau_conf, fragments=fragments)
        model_labels = assign_points(masks, scores)[0] if len(masks) else np.full(len(seg.cloud), -1)
        a = agreement(model_labels, free_labels)
        extra.update(method="trained model (gcseg predict) on the scan's points", checkpoint=checkpoint.name,
                     tau_conf=float(tau_conf), fragments=fragments.model_dump(),
                     training_free={"num_masks": int(len(seg.masks)), "labelled_points": int((free_labels >= 0).sum())},
                     agreement_with_training_free=None if a is None else round(a, 6))
    scan = ScanInput(scene_id=sid, source=scene.source, cloud=seg.cloud)
    labels = assign_points(masks, scores)[0] if len(masks) else np.full(len(seg.cloud), -1)
    title = f"{sid}: {len(masks)} instances ({'model' if model is not None else 'training-free'})"

    def preview(folder: Path) -> None:  # staged with the other files: the scene's outputs appear as one set
        preview_png(folder / f"{sid}_preview.png", seg.cloud, labels + 1, scene_up(scene), title=title)

    summary = write_prediction(out, scan, masks, scores, extra=extra, extra_files=preview)
    typer.echo(f"{sid}: {summary['num_masks']} instances on {summary['num_points']} points "
               f"({summary['labelled_points']} labelled), {scene.num_frames} frames, "
               f"{time.perf_counter() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    run_module(app)
