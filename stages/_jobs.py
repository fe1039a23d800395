"""The `--jobs` option of the commands that spread their scenes over worker processes (gcseg.parallel), declared
once: its name, environment variable, range and help are the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

from gcseg.parallel import JOBS_ENV, JOBS_HELP

JobsOption = Annotated[int, typer.Option("--jobs", envvar=JOBS_ENV, min=0, help=JOBS_HELP)]
# the stages that run SAM: its weights are loaded once, so a SAM backend keeps them in one process
SamJobsOption = Annotated[int, typer.Option("--jobs", envvar=JOBS_ENV, min=0,
                                            help=JOBS_HELP + " SAM runs in one process.")]
