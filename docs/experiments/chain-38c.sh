#!/bin/bash
# Issue 38, second session: texture-aware placement on fold 2 (8 epochs, fp32), after chain-38.sh and chain-38b.sh.
# Rerunning resumes (glass cv continues a fold from its resume.safetensors and skips scored folds).
cd /work/main || exit 1
while pgrep -f "chain-38b?.sh" > /dev/null; do sleep 30; done
D=/root/data/glass-train/manifest.csv
CV="--folds 3 --limit-val 96 --heldout-per-source 40 --only-fold 2"
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
step v3-g-e8-lrg5-tex $R --lr-global 5e-5 --placement texture
echo "=== $(date -u +%FT%TZ) chain done"
