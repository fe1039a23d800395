"""`gcseg dvc-deps`: keep every DVC stage's code deps equal to what its command imports (gcseg.dvc_deps).

    gcseg dvc-deps            # check: exit 1 naming each stage and file that is missing or superfluous
    gcseg dvc-deps --write    # rewrite the code entries of each stage's deps: in dvc.yaml (nothing else)

Run `--write` after adding an import, a module or a stage. Not a DVC stage (it maintains dvc.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages._common import make_app, run_module, user_errors

app = make_app(__doc__ or "")


@app.command()
@user_errors
def main(
    write: Annotated[bool, typer.Option("--write/--check", help="Rewrite dvc.yaml's code deps (default: only "
                                        "check, exit 1 if they are not what the imports give).")] = False,
    dvc_yaml: Annotated[Path, typer.Option("--dvc-yaml", help="The dvc.yaml to check or rewrite.")] = Path("dvc.yaml"),
    root: Annotated[Path, typer.Option("--root", help="Project root holding gcseg/ and stages/.")] = Path("."),
) -> None:
    """Check (or --write) every stage's code deps in dvc.yaml against its static import closure."""
    from gcseg.atomic import write_text
    from gcseg.dvc_deps import FIX, check, regenerate

    old, new = regenerate(root, dvc_yaml)
    if write:
        if new != old:
            problems = check(root, dvc_yaml)
            write_text(dvc_yaml, new)
            for p in problems:
                typer.echo(("+ " if p.kind == "missing" else "- ") + f"{p.stage}: {p.path}")
            typer.echo(f"{dvc_yaml}: code deps rewritten from the stages' imports")
        else:
            typer.echo(f"{dvc_yaml}: code deps already match the stages' imports")
        return
    problems = check(root, dvc_yaml)
    for p in problems:
        typer.echo(str(p), err=True)
    if problems or new != old:
        if not problems:
            typer.echo(f"{dvc_yaml}: code deps cover the imports but are not in the generated form (order, "
                       "folders)", err=True)
        typer.echo(f"fix: {FIX}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"{dvc_yaml}: code deps match the stages' imports")


if __name__ == "__main__":
    run_module(app)
