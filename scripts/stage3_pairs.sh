#!/bin/bash
# Exact pairs for a Stage 3 setting (docs/model_study.md round 32): for each seed, a finished `make study`
# experiment is checked out (its models, labels and pseudo-labels from the DVC cache), then only stage3_train and
# eval rerun (`dvc repro -s`) with KEY=VALUE set in params.yaml. Every row but Stage 1 + 2 + 3 stays the
# experiment's, so the change is the setting's alone, without rerunning Stages 1 and 2; it works across commits
# whose code changes no model byte (which `gcseg.study`'s run-cache reuse cannot see).
#
#   scripts/stage3_pairs.sh STUDY_CLONE OUT_DIR KEY=VALUE[,KEY=VALUE...] SEED:EXP_REV [SEED:EXP_REV ...]
#   e.g. scripts/stage3_pairs.sh /work/study6 /tmp/pairs stage3_train.loss.objectness=confidence 0:f181e30 1:6ccc813
#
# FROM=stage2_train reruns stage2_train and full_scene_pseudolabel first (a Stage 2 setting; about 10 minutes a seed).
#
# STUDY_CLONE: the clone holding the experiments (`dvc exp list`), sharing this repository's DVC cache. Runs in a
# scratch clone of this repository's HEAD; writes OUT_DIR/eval_<seed>.json (the eval stage's metrics) and the lock.
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,14p "$0"; exit 2; }
case "${FROM:-stage3_train}" in
  stage3_train) stages="stage3_train eval" ;;
  stage2_train) stages="stage2_train full_scene_pseudolabel stage3_train eval" ;;
  *) echo "FROM must be stage3_train or stage2_train" >&2; exit 2 ;;
esac
study=$1; out=$(realpath -m "$2"); setting=$3; shift 3
here=$(git rev-parse --show-toplevel)
cache=$(cd "$here" && dvc cache dir)
work=$(mktemp -d)
git clone -q "$here" "$work/repo"
cd "$work/repo"
printf '[cache]\n    dir = %s\n' "$cache" > .dvc/config.local
[ -e "$here/.venv" ] && ln -s "$here/.venv" .venv
mkdir -p "$out"
for pair in "$@"; do
  seed=${pair%%:*}; rev=${pair#*:}
  git -C "$study" show "$rev:dvc.lock" > dvc.lock
  git -C "$study" show "$rev:params.yaml" > params.yaml
  dvc checkout -f -q
  python - "$setting" <<'PY'
import sys
from ruamel.yaml import YAML
y = YAML()
p = y.load(open("params.yaml"))
for setting in sys.argv[1].split(","):
    key, value = setting.split("=", 1)
    node, parts = p, key.split(".")
    for k in parts[:-1]:
        node = node[k]
    if parts[-1] not in node:
        sys.exit(f"{key}: not in params.yaml")
    node[parts[-1]] = y.load(value)
y.dump(p, open("params.yaml", "w"))
PY
  echo "seed $seed ($rev): $stages with $setting"
  : > "$out/log_$seed.txt"
  for st in $stages; do dvc repro -s "$st" >> "$out/log_$seed.txt" 2>&1; done
  cp metrics/eval.json "$out/eval_$seed.json"
  cp dvc.lock "$out/lock_$seed.yaml"
done
rm -rf "$work"
