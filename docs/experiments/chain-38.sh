#!/bin/bash
# Issue 38 runs, one after another. Rerunning resumes: `glass cv` continues a fold from its
# resume.safetensors and skips scored folds; a training run left by an earlier call goes on with --resume.
#   chain-38.sh screen   the six fold-2 screening conditions (8 epochs)
#   chain-38.sh ship     fold 1 of the baseline and of GLASS (lr_global 5e-5), joined to the
#                        kept records of folds 2 and 3, then both models trained on all the data
cd "$(dirname "$0")/../.." || exit 1   # the repository root
D=${D:-$HOME/data/glass-train/manifest.csv}
CV="--folds 3 --limit-val 96 --heldout-per-source 40"
B="--config recipes/baseline-lite0.json"   # 8 epochs, lr 5e-5
R="--config recipes/glass-lite0.json"      # 8 epochs, lr_global 5e-5
step() {  # command words...: up to 3 tries (a try can fail while the shared tree is mid-edit)
  for try in 1 2 3; do
    echo "=== $(date -u +%FT%TZ) start (try $try): glass $*"
    /usr/bin/time -v .venv/bin/glass "$@"
    rc=$?
    echo "=== $(date -u +%FT%TZ) end rc=$rc"
    [ $rc = 0 ] || [ $rc = 3 ] && return 0
    sleep 60
  done
}
screen() {  # name, options...
  name=$1; shift
  step cv "$D" $CV --only-fold 2 "$@" --name "$name"
}
train() {  # name, options...: a run that an earlier call left is resumed (glass train --resume)
  name=$1; shift
  resume=""; [ -f "runs/$name/resume.safetensors" ] && resume=--resume
  step train "$D" "$@" --limit-val 96 --name "$name" $resume
}
join_record() {  # name: start runs/cv/NAME from the folds kept in docs/experiments/cv-NAME
  [ -e "runs/cv/$1" ] || { mkdir -p runs/cv && cp -r "docs/experiments/cv-$1" "runs/cv/$1"; }
}
case ${1:-screen} in
screen)
  screen v3-b-e8 $B
  screen v3-g-e8 $R --lr-global 2e-5   # the GLASS recipe shipped before issue 38
  screen v3-g-e8-ds $R --lr-global 2e-5 --aux-weight 0.5
  screen v3-g-e8-lrg5 $R
  screen v3-g-e8-lrg5-npr-nat $R --local-input npr --local-native 1
  screen v3-g-e8-lrg5-tex $R --placement texture
  ;;
ship)
  join_record v3-b-e8
  step cv "$D" $CV $B --name v3-b-e8
  train baseline-v3-e8 $B
  join_record v3-g-e8-lrg5
  step cv "$D" $CV $R --name v3-g-e8-lrg5
  train glass-v3-e8-lrg5 $R
  ;;
*) echo "usage: $0 [screen|ship]" >&2; exit 2 ;;
esac
echo "=== $(date -u +%FT%TZ) chain done"
