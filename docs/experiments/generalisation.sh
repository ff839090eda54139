#!/usr/bin/env bash
# Issue 9 experiments: every leave-family-out cross-validation in generalisation.md, in the
# order they were run (2-core CPU, about 15-30 min each), then the comparison tables.
# Run from the repository root with train-v1 beside it. Each command resumes if rerun.
set -euo pipefail
D=../shared/data/train-v1/manifest.csv
CV="glass cv $D --folds 3 --epochs 2"

# first measurement (previous session): default augmentation
$CV --backbone tf_efficientnet_lite0 --name glass-lite0-e2-3fold
$CV --backbone tf_efficientnet_lite0 --baseline --lr-global 5e-5 --name baseline-lite0-e2-3fold
# Lite2 baseline
$CV --backbone tf_efficientnet_lite2 --baseline --lr-global 5e-5 --name baseline-lite2-e2-3fold
# size-aware augmentation, GLASS and baseline (--limit-val only trims the per-epoch monitor)
$CV --backbone tf_efficientnet_lite0 --size-aug 0.7 --name glass-lite0-e2-size-3fold
$CV --backbone tf_efficientnet_lite0 --baseline --lr-global 5e-5 --size-aug 0.7 --limit-val 16 --name baseline-lite0-e2-size-3fold
# per-crop auxiliary loss on top of size-aware augmentation (--crop-loss, removed from glass after this measurement; branch crop-scores)
# (the option existed up to commit 1d9692a: git checkout 1d9692a to rerun it)
# $CV --backbone tf_efficientnet_lite0 --size-aug 0.7 --crop-loss 0.5 --limit-val 16 --name glass-lite0-e2-size-aux-3fold
# two crop scales at the same crop count (2 native + 2 of 448 px shrunk to 224)
$CV --backbone tf_efficientnet_lite0 --size-aug 0.7 -k 2 --crop-scales 1,2 --limit-val 16 --name glass-lite0-e2-size-ms-3fold
# the same recipe on Lite2 backbones
$CV --backbone tf_efficientnet_lite2 --size-aug 0.7 -k 2 --crop-scales 1,2 --limit-val 16 --name glass-lite2-e2-size-ms-3fold
# the winning recipe at 4 epochs, GLASS and baseline (the shipped models' measurement; see weights/MODEL_CARD.md)
glass cv $D --folds 3 --epochs 4 --backbone tf_efficientnet_lite0 --size-aug 0.7 -k 2 --crop-scales 1,2 --limit-val 16 --name glass-lite0-e4-size-ms-3fold
glass cv $D --folds 3 --epochs 4 --backbone tf_efficientnet_lite0 --baseline --lr-global 5e-5 --size-aug 0.7 --limit-val 16 --name baseline-lite0-e4-size-3fold
# K at inference on the shipped recipe's folds (crops per scale: 4 = 8 crops, 1 = 2 crops), with a script
# since removed (git show e51afac:bench/cv_rescore.py):
# python bench/cv_rescore.py runs/cv/glass-lite0-e4-size-ms-3fold --crops 4 --crops 1 --json docs/experiments/rescore-k-glass-lite0-e4-size-ms-3fold.json

python bench/cv_compare.py runs/cv/glass-lite0-e2-3fold runs/cv/glass-lite0-e2-size-3fold runs/cv/glass-lite0-e2-size-aux-3fold \
  runs/cv/glass-lite0-e2-size-ms-3fold runs/cv/glass-lite0-e4-size-ms-3fold runs/cv/glass-lite2-e2-size-ms-3fold \
  runs/cv/baseline-lite0-e2-3fold runs/cv/baseline-lite0-e2-size-3fold runs/cv/baseline-lite2-e2-3fold runs/cv/baseline-lite0-e4-size-3fold \
  --markdown --sources
# the fusion rows of generalisation.md came from two --fuse options, since removed
# (git show e51afac:bench/cv_compare.py): --fuse runs/cv/glass-lite0-e2-3fold,runs/cv/baseline-lite0-e2-3fold
# --fuse runs/cv/glass-lite0-e2-size-ms-3fold,runs/cv/baseline-lite0-e2-size-3fold
