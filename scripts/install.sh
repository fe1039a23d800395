#!/usr/bin/env bash
# Create .venv and install gcseg with every dependency, system packages included. Idempotent:
# `make` reruns it only when requirements change; the MinkowskiEngine wheel is cached per torch version.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

apt_install() {  # install Debian packages that are missing (root, or sudo without a password)
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  echo "[gcseg] apt-get install ${missing[*]}"
  $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
}
# libopenblas: MinkowskiEngine links it; chromium: the report's headless-browser test.
apt_install libopenblas-dev chromium

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade "pip==24.3.1" 2>&1 | grep -v '^WARNING: Location' || true
# torch alone first, pinned to the CPU build (a bare `torch` requirement would pull a CUDA build).
$PIP install -q "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
$PIP install -q -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
# SAM / SAM2 without letting them pull a CUDA torch; torchvision's C ops are replaced by gcseg's nms shim.
$PIP install -q --no-deps "torchvision==0.28.0" "segment-anything==1.0" 2>&1 | grep -v '^WARNING: Location' || true
SAM2_BUILD_CUDA=0 $PIP install -q --no-deps --no-build-isolation "sam2==1.1.0" 2>&1 | grep -v '^WARNING: Location' || true
$PIP install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v '^WARNING: Location' || true
VENV="$VENV" bash scripts/build_minkowski.sh
$PIP check 2>&1 | grep -v '^WARNING: Location' | grep -vi 'torchvision' || true
echo "[gcseg] environment ready in $VENV"
