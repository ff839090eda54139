"""Score a finished cross-validation's fold models again with another K at inference time.

    .venv/bin/python bench/cv_rescore.py runs/cv/glass-lite0-e2-size-3fold --crops 8 [--crops 2]

GLASS's attention pool takes any number of crops, so a model trained with K=4 can be run
with K=2 or K=8. For each --crops value this re-scores every fold's held-out files with the
fold's last checkpoint (the same one glass cv scored), under the same conditions, and prints
the fold numbers and the objective next to the stored K. A measurement of K at inference
only (training with another K is a separate cross-validation); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glass_cli.evaluation.cv import OBJECTIVE, conditions, fold_numbers, load_result, score_fold, size_keys  # noqa: E402
from glass_cli.training.data import Sample  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="a finished cross-validation folder (RUNS_DIR/cv/NAME)")
    ap.add_argument("--crops", type=int, action="append", required=True, help="K at inference (repeatable)")
    ap.add_argument("--json", help="write the numbers here as JSON")
    args = ap.parse_args()

    result = load_result(args.root)
    options = result.options
    keys = [f"auroc_{c.key}" for c in conditions(options)] + [OBJECTIVE]
    out = {"root": str(args.root), "stored": {k: statistics.fmean(f.metrics[k] for f in result.folds) for k in keys}, "by_k": {}}
    for k in args.crops:
        t0 = time.perf_counter()
        per_fold = []
        for fold in result.folds:
            heldout = [Sample(f["path"], f["label"], "heldout", f.get("generator"), f["family"]) for f in fold.files]
            files, errors, model = score_fold(Path(fold.checkpoint), heldout, options, label=f"K={k} fold {fold.fold.index}", crops=k)
            metrics, _, _ = fold_numbers(files, conditions(options), size_keys(options), model.threshold)
            per_fold.append(metrics)
        out["by_k"][k] = {key: statistics.fmean(m[key] for m in per_fold) for key in keys}
        out["by_k"][k]["folds"] = [m[OBJECTIVE] for m in per_fold]
        out["by_k"][k]["seconds"] = time.perf_counter() - t0
    trained = result.config.num_crops
    print(f"{Path(args.root).name} (trained with K={trained}): mean over {len(result.folds)} folds")
    print("K at inference | " + " | ".join(keys))
    print(f"{trained} (stored) | " + " | ".join(f"{out['stored'][k]:.4f}" for k in keys))
    for k, row in out["by_k"].items():
        print(f"{k} | " + " | ".join(f"{row[key]:.4f}" for key in keys) + f"  (folds {', '.join(f'{x:.4f}' for x in row['folds'])}; {row['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
