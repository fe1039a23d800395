"""What every stage command shares: loading its params keys into a pydantic model, sharding, and turning
gcseg's errors into one line on stderr and exit code 2 (never a traceback, never a partial artifact)."""

from __future__ import annotations

import functools
import os
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

import gcseg
from gcseg.errors import ConfigError, GcsegError

T = TypeVar("T", bound=BaseModel)


class Section(BaseModel):
    """Base of every params section: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _split_name(value: str) -> str:
    from gcseg.readers import split_parts

    try:
        split_parts(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value


# a scene split: train | val | unlabelled | all, or parts joined by "+" ("train+unlabelled"; gcseg.readers)
SplitName = Annotated[str, AfterValidator(_split_name)]


class DataSection(Section):
    """`data:` in params.yaml: where the scans come from (gcseg.readers)."""

    source: Literal["synth", "posed_rgbd", "scannet", "scannetpp"] = "synth"
    root: str = "data/scenes"


def read_params_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("params file not found", path=path, fix="run from the project root or pass --params PATH")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file is not valid YAML ({exc})", path=path, fix="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise ConfigError("params file must be a mapping of keys", path=path, fix="see the params.yaml in the repository")
    return data


def load_params(path: str | Path, model: type[T]) -> T:
    """Load exactly the top-level keys `model` declares (the stage's `params:` in dvc.yaml) and validate."""
    data = read_params_file(path)
    keys = list(model.model_fields)
    missing = [k for k in keys if k not in data]
    if missing:
        raise ConfigError(f"missing key(s) {missing}", path=path, fix="add them (see the repository's params.yaml)")
    try:
        return model.model_validate({k: data[k] for k in keys})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{loc}: {err['msg']} (got {err.get('input')!r})", path=path,
                          fix=f"set '{loc}' to a valid value in {Path(path).name} or with `dvc exp run -S {loc}=...`") from exc


def param_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The top-level params keys a stage reads; the DVC contract test compares them with dvc.yaml."""
    return tuple(model.model_fields)


def split_scenes(source: str, root: Path, split: str) -> list[str]:
    """Sorted scene ids of `split` under the data root; InputError if there is none (no stage has work then)."""
    from gcseg.errors import InputError
    from gcseg.readers import list_scenes

    scene_ids = sorted(list_scenes(source, root, split))
    if not scene_ids:
        raise InputError(f"no {split!r} scenes of source {source!r}", path=root,
                         fix="run the synth stage or point --scenes at the data root")
    return scene_ids


def scene_files(folder: Path, scene_ids: list[str], what: str, fix: str, *, split: str = "") -> dict[str, Path]:
    """``<folder>/<scene>.h5`` of every scene, checked up front: ArtifactError naming the missing scenes (the first
    five) and `fix` ("no <what> for [<split> ]scene(s) ...")."""
    from gcseg.errors import ArtifactError

    paths = {sid: folder / f"{sid}.h5" for sid in scene_ids}
    missing = [sid for sid, path in paths.items() if not path.is_file()]
    if missing:
        raise ArtifactError(f"no {what} for {split + ' ' if split else ''}scene(s) {', '.join(missing[:5])}"
                            + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                            path=paths[missing[0]], fix=fix)
    return paths


def scene_seed(seed: int, scene_id: str) -> int:
    """Per-scene seed: results do not depend on the worker or the order scenes are processed in."""
    return (int(seed) * 1_000_003 + zlib.crc32(scene_id.encode())) % (2**31)


def run_config(params: BaseModel, **inputs: Any) -> dict[str, Any]:
    """What determines a per-scene artifact, stored in it (gcseg.io.samples.is_finished): a rerun (interrupted,
    sharded) reuses a finished scene only if it was written with the same config. Every params key the stage
    reads except `data` (where the scans are), plus `inputs` (e.g. the hash of an upstream model). A section with
    a `checkpoint_dict` (the model's config) is stored as checkpoints store it, without fields added later at their
    off value: adding such a field leaves the artifact's bytes, and so DVC's cache and the lock, as they were."""
    dumped = params.model_dump(mode="json")
    for key in dumped:
        section = getattr(params, key, None)
        if hasattr(section, "checkpoint_dict"):
            dumped[key] = section.checkpoint_dict()
    return {**{k: v for k, v in dumped.items() if k != "data"}, **inputs}


def parse_shard(shard: str | None) -> tuple[int, int]:
    """`--shard i/n` (0-based), else torchrun's RANK/WORLD_SIZE (binding the worker to GPU LOCAL_RANK), else
    (0, 1)."""
    if shard:
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError as exc:
            raise ConfigError(f"--shard must look like i/n, got {shard!r}", fix="e.g. --shard 0/4") from exc
        if not (n >= 1 and 0 <= i < n):
            raise ConfigError(f"--shard {shard}: need 0 <= i < n", fix="e.g. --shard 0/4 ... --shard 3/4")
        return i, n
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and "LOCAL_RANK" in os.environ:
        bind_local_gpu(int(os.environ["LOCAL_RANK"]))
    return rank, world


def bind_local_gpu(local_rank: int) -> None:
    """One GPU per torchrun worker: make `cuda` mean GPU `local_rank` of this node (SAM, SAM2 and the mask
    model all ask for plain "cuda"). No-op without torch or CUDA."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)


def clean_shard_temporaries(folder: str | Path, names: list[str]) -> None:
    """Remove the temporaries (`.<name>.*.tmp`, gcseg.atomic) a killed run left for THIS worker's outputs
    `names`: a worker never deletes a file another worker (torchrun rank, job-array task) is still writing."""
    import shutil

    folder = Path(folder)
    for name in names:
        for p in folder.glob(f".{name}.*.tmp"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


F = TypeVar("F", bound=Callable[..., Any])


# gcseg's own code: its warnings are messages to the user, shown as one line without a source line
_OWN_CODE = tuple(str(Path(m).resolve().parent) + os.sep for m in (__file__, gcseg.__file__ or ""))


def _show_warning(default: Callable[..., None]) -> Callable[..., None]:
    """A `warnings.showwarning` that prints gcseg's and the stages' warnings as ``warning: <message>`` on stderr
    and leaves other libraries' warnings to `default`."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if not str(Path(filename).resolve()).startswith(_OWN_CODE):
            return default(message, category, filename, lineno, file, line)
        typer.echo("warning: " + " ".join(str(message).split()), err=True)

    return show


def user_errors(fn: F) -> F:
    """Report GcsegError (bad input, params, artifacts) as one line and exit 2; gcseg's warnings as one line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():  # restores showwarning afterwards (tests call commands in-process)
                warnings.showwarning = _show_warning(warnings.showwarning)
                return fn(*args, **kwargs)
        except GcsegError as exc:
            typer.echo("error: " + " ".join(str(exc).split()), err=True)  # one line, even if a library's was not
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: no partial artifact was written; rerun to continue", err=True)
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def make_app(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=False, add_completion=False,
                       pretty_exceptions_enable=False)


def run_module(app: typer.Typer) -> None:
    """Entry for `python -m stages.<name>` (what dvc.yaml calls, so queued experiments run their own copy)."""
    sys.exit(app())
