#!/usr/bin/env bash
# GPU checks for BENCHMARKS.md: run by a GPU owner from the repository root (never run on the 2-core CPU
# machines: no GPU was lent when BENCHMARKS.md was generated). What it does:
#   1. builds MinkowskiEngine 0.5.4 for CUDA (the recipe of shared/notes/dependencies.md "CUDA build": the
#      collections.abc patch, missing Thrust includes, NVTX disabled for CUDA >= 12.2) unless it already imports
#      with CUDA; a failed build is recorded, the other checks still run (pure-torch backend);
#   2. python -m bench.gpu_check: device, ME CUDA conv vs CPU, SAM2 frames/s (random weights, 1024 px),
#      train step time of Res16UNet34C + Mask3D decoder (paper sizes) per sparse backend
#      -> metrics/bench_gpu.json;
#   3. python -m bench report: BENCHMARKS.md with the GPU figures merged.
# Needs: an NVIDIA driver, CUDA toolkit (nvcc) matching torch's CUDA, and a venv with a CUDA build of torch 2.13.0
# plus requirements.txt (PYTHON=/path/to/python to use another interpreter). ME_SDIST=path/to/
# MinkowskiEngine-0.5.4.tar.gz when the machine has no PyPI access. SKIP_ME_BUILD=1 skips step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export PATH="$(dirname "$PY"):$PATH"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no GPU"; exit 1; }
"$PY" -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda); sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "torch sees no CUDA device: install a CUDA build of torch==2.13.0 into the venv"; exit 1; }

build_me() {
  "$PY" -c "import MinkowskiEngine as ME, sys; sys.exit(0 if ME.is_cuda_available() else 1)" 2>/dev/null && return 0
  local work=build/me-cuda
  mkdir -p "$work"
  if [ -n "${ME_SDIST:-}" ]; then cp "$ME_SDIST" "$work/"; else
    SETUPTOOLS_USE_DISTUTILS=stdlib "$PY" -m pip download --no-deps --no-build-isolation MinkowskiEngine==0.5.4 -d "$work"
  fi
  rm -rf "$work/MinkowskiEngine-0.5.4"
  tar xzf "$work"/MinkowskiEngine-0.5.4.tar.gz -C "$work"
  local src="$work/MinkowskiEngine-0.5.4"
  # Python >= 3.10: collections.abc
  sed -i 's/^from collections import Sequence, namedtuple$/from collections import namedtuple\nfrom collections.abc import Sequence/' \
    "$src/MinkowskiEngine/MinkowskiKernelGenerator.py"
  sed -i 's/^from collections import Sequence$/from collections.abc import Sequence/' \
    "$src/MinkowskiEngine/MinkowskiCommon.py" "$src/MinkowskiEngine/MinkowskiCoordinateManager.py" \
    "$src/MinkowskiEngine/MinkowskiTensorField.py" "$src/MinkowskiEngine/utils/quantization.py"
  # newer CUDA/Thrust: headers no longer included transitively (ME issues #543 #594 #601 #614, PRs #607 #626)
  add_includes() { local f="$1"; shift; for h in "$@"; do grep -q "#include <thrust/$h>" "$f" || sed -i "1i #include <thrust/$h>" "$f"; done; }
  add_includes "$src/src/convolution_kernel.cuh" execution_policy.h
  add_includes "$src/src/3rdparty/concurrent_unordered_map.cuh" execution_policy.h
  add_includes "$src/src/coordinate_map_gpu.cu" unique.h remove.h
  add_includes "$src/src/spmm.cu" execution_policy.h reduce.h sort.h
  # CUDA >= 12.2: NVTX3 clashes in src/3rdparty/cudf/detail/nvtx -> compile NVTX out
  sed -i "s/define_macros=\[\]/define_macros=[('NVTX_DISABLE', None)]/" "$src/setup.py" || true
  grep -q "NVTX_DISABLE" "$src/setup.py" || export CXXFLAGS="${CXXFLAGS:-} -DNVTX_DISABLE" NVCC_FLAGS="${NVCC_FLAGS:-} -DNVTX_DISABLE"
  (cd "$src" && MAX_JOBS="${MAX_JOBS:-8}" "$PY" setup.py bdist_wheel --force_cuda --blas=openblas) > "$work/build.log" 2>&1 || {
    echo "MinkowskiEngine CUDA build failed: see $work/build.log (CUDA 12.8+/13: ME issue #632 fork, #638)"; return 1; }
  "$PY" -m pip install --no-deps --force-reinstall "$src"/dist/*.whl
}

ME_STATUS=ok
if [ "${SKIP_ME_BUILD:-0}" != 1 ]; then
  mkdir -p build
  start=$SECONDS
  build_me || ME_STATUS=failed
  echo $((SECONDS - start)) > build/me_cuda_build_s.txt
fi
"$PY" -m bench.gpu_check --out metrics/bench_gpu.json "$@"
"$PY" - "$ME_STATUS" <<'PY'
import json, pathlib, sys
p = pathlib.Path("metrics/bench_gpu.json"); d = json.loads(p.read_text())
f = d["areas"]["gpu"]["figures"]; f["minkowski_cuda_build"] = sys.argv[1]
t = pathlib.Path("build/me_cuda_build_s.txt")
if t.is_file() and t.read_text().strip(): f["minkowski_cuda_build_s"] = float(t.read_text().split()[-1])
p.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
PY
"$PY" -m bench report --merge metrics/bench_gpu.json
echo "GPU figures: metrics/bench_gpu.json; BENCHMARKS.md updated (commit both)"
