#!/usr/bin/env bash
# Create .venv and install gcseg with every dependency, system packages included. Idempotent:
# `make` reruns it only when requirements change; the MinkowskiEngine wheel is cached per torch version.
# Every step fails loudly: a failing command stops the install (and `make test` / `make repro`) with its output.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

run_logged() {  # run "$@" quietly; on failure print its whole output and stop with its exit status
  local log status=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    rm -f "$log"
    echo "[gcseg] install failed (exit $status): $*" >&2
    exit "$status"
  fi
  sed '/^WARNING: Location/d' "$log"  # pip's noise about user-site locations; everything else is shown
  rm -f "$log"
}

apt_install() {  # install Debian packages that are missing (root, or sudo without a password)
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  echo "[gcseg] apt-get install ${missing[*]}"
  if ! $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then  # a stale package list: update once
    run_logged $SUDO apt-get update -q
    run_logged $SUDO apt-get install -y -q "${missing[@]}"
  fi
}
# libopenblas: MinkowskiEngine links it; chromium: the report's headless-browser test.
apt_install libopenblas-dev chromium

[ -x "$VENV/bin/python" ] || run_logged "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
run_logged "${PIP[@]}" install -q --upgrade "pip==24.3.1"
# torch alone first, so that the CPU build is resolved before anything can ask for another one.
TORCH=$(grep -E '^torch==' requirements.txt) || { echo "[gcseg] requirements.txt must pin torch==<version>" >&2; exit 1; }
run_logged "${PIP[@]}" install -q "$TORCH"
run_logged "${PIP[@]}" install -q -r requirements.txt
# SAM / SAM2 / torchvision without their dependencies (they would pull a CUDA torch); torchvision's C ops are
# replaced by gcseg's nms shim (gcseg/compat).
run_logged env SAM2_BUILD_CUDA=0 "${PIP[@]}" install -q --no-deps --no-build-isolation -r requirements-nodeps.txt
run_logged "${PIP[@]}" install -q --no-deps --no-build-isolation -e .
VENV="$VENV" bash scripts/build_minkowski.sh
run_logged "${PIP[@]}" check
echo "[gcseg] environment ready in $VENV"
