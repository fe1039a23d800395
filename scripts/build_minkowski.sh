#!/usr/bin/env bash
# Build (once) and install MinkowskiEngine 0.5.4 CPU-only into the venv.
# The wheel is cached outside the repo, keyed by torch version, so a second `make` reuses it.
# Recipe and timings: ../shared/notes/dependencies.md section 1.
set -euo pipefail
VENV=${VENV:-.venv}
VENV=$(cd "$VENV" && pwd)
PY="$VENV/bin/python"
if "$PY" -c "import MinkowskiEngine" 2>/dev/null; then exit 0; fi
TORCH=$("$PY" -c "import torch; print(torch.__version__.replace('+', '_'))")
CACHE=${GCSEG_WHEEL_CACHE:-$HOME/.cache/gcseg/wheels}/torch-$TORCH
mkdir -p "$CACHE"
WHEEL=$(ls "$CACHE"/minkowskiengine-0.5.4-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$WHEEL" ]; then
  echo "[gcseg] building MinkowskiEngine 0.5.4 (CPU) against torch $TORCH: about 4-7 minutes on 2 cores, once"
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  # setup.py runs a bare `pip uninstall`: make sure it is the venv's pip.
  export PATH="$(cd "$VENV/bin" && pwd):$PATH"
  SETUPTOOLS_USE_DISTUTILS=stdlib "$PY" -m pip download -q --no-deps --no-build-isolation \
      MinkowskiEngine==0.5.4 -d "$WORK"
  tar xzf "$WORK"/MinkowskiEngine-0.5.4.tar.gz -C "$WORK"
  SRC="$WORK/MinkowskiEngine-0.5.4"
  # Python >= 3.10 removed collections.Sequence: the "small patch".
  sed -i 's/^from collections import Sequence, namedtuple$/from collections import namedtuple\nfrom collections.abc import Sequence/' \
      "$SRC/MinkowskiEngine/MinkowskiKernelGenerator.py"
  sed -i 's/^from collections import Sequence$/from collections.abc import Sequence/' \
      "$SRC/MinkowskiEngine/MinkowskiCommon.py" "$SRC/MinkowskiEngine/MinkowskiCoordinateManager.py" \
      "$SRC/MinkowskiEngine/MinkowskiTensorField.py" "$SRC/MinkowskiEngine/utils/quantization.py"
  (cd "$SRC" && SETUPTOOLS_USE_DISTUTILS=stdlib MAX_JOBS=${MAX_JOBS:-2} "$PY" -m pip wheel -q \
      --no-build-isolation --no-deps . -w "$WORK/dist")
  BUILT=$(ls "$WORK"/dist/minkowskiengine-0.5.4-*.whl)
  # Debug info makes the .so 70 MB; stripped it is ~1 MB.
  (cd "$WORK/dist" && mkdir x && cd x && "$PY" -m zipfile -e "$BUILT" . \
     && find . -name '*.so' -exec strip --strip-debug {} + \
     && "$PY" -m wheel pack . -d "$CACHE" >/dev/null) || cp "$BUILT" "$CACHE/"
  WHEEL=$(ls "$CACHE"/minkowskiengine-0.5.4-*.whl | head -n1)
fi
"$PY" -m pip install -q --no-deps "$WHEEL"
"$PY" -c "import MinkowskiEngine as ME; print('[gcseg] MinkowskiEngine', ME.__version__)"
