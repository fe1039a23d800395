#!/usr/bin/env bash
# Time the whole default pipeline (dvc repro -f) per stage -> metrics/pipeline_timing.json, then show it.
# Run from the repository root on a quiet machine; `python -m bench run && python -m bench report` picks it up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
python -m bench pipeline "$@"
