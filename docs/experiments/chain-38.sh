#!/bin/bash
# Issue 38 screening: fold 2 of the v1+v2+v3 leave-source-out folds, 8 epochs, one condition after another.
# Rerunning this script resumes: `glass cv` continues a fold from its resume.safetensors, and skips scored folds.
cd "$(dirname "$0")/../.." || exit 1   # the repository root
D=${D:-$HOME/data/glass-train/manifest.csv}
CV="--folds 3 --limit-val 96 --heldout-per-source 40 --only-fold 2"
B="--config recipes/baseline-lite0.json --epochs 8"
R="--config recipes/glass-default.json --epochs 8"
step() {  # name, options...: up to 3 tries (a try can fail while the shared tree is mid-edit)
  name=$1; shift
  for try in 1 2 3; do
    echo "=== $(date -u +%FT%TZ) start $name (try $try): glass cv $D $CV $* --name $name"
    /usr/bin/time -v .venv/bin/glass cv $D $CV "$@" --name "$name"
    rc=$?
    echo "=== $(date -u +%FT%TZ) end $name rc=$rc"
    [ $rc = 0 ] || [ $rc = 3 ] && return 0
    sleep 60
  done
}
step v3-b-e8 $B
step v3-g-e8 $R
step v3-g-e8-ds $R --aux-weight 0.5
step v3-g-e8-lrg5 $R --lr-global 5e-5
step v3-g-e8-lrg5-npr-nat $R --lr-global 5e-5 --local-input npr --local-native 1
step v3-g-e8-lrg5-tex $R --lr-global 5e-5 --placement texture
echo "=== $(date -u +%FT%TZ) chain done"
