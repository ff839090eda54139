"""Score a finished cross-validation's held-out files with another model, beside the fold models.

    .venv/bin/python bench/cv_other_model.py runs/cv/NAME --weights weights/glass-lite0.safetensors \
        [--exclude-source sd-samples --exclude-source urban100 ...] [--json out.json]

For every scored fold of the cross-validation, the files its fold model was judged on
(``fold-I/heldout.json``) are scored again by ``--weights`` under the same conditions, and the
AUROC per condition and the mean over the real sizes (the cross-validation's objective) are
printed for both models on exactly the same files. ``--exclude-source`` drops files of sources
the other model was trained on (for the shipped train-v1 model: sd-samples,
metadata-extractor-images, urban100), so both columns are scores on sources neither model saw.
A measurement: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glass_cli.data.datasets import Sample  # noqa: E402
from glass_cli.evaluation.cv.options import OBJECTIVE, CvOptions  # noqa: E402
from glass_cli.evaluation.cv.scoring import conditions, fold_numbers, score_fold, size_keys  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="a cross-validation folder (RUNS_DIR/cv/NAME) with scored folds")
    ap.add_argument("--weights", type=Path, required=True, help="the other model (a glass checkpoint)")
    ap.add_argument("--exclude-source", action="append", default=[], help="leave out files of this source (repeatable)")
    ap.add_argument("--json", type=Path, help="write the numbers here as JSON")
    args = ap.parse_args()

    plan = json.loads((args.root / "plan.json").read_text(encoding="utf-8"))
    options = CvOptions.from_plan(plan["options"])
    conds, sizes = conditions(options), size_keys(options)
    keys = [f"auroc_{c.key}" for c in conds] + [OBJECTIVE]
    skip = set(args.exclude_source)
    rows = []
    for fold_file in sorted(args.root.glob("fold-*/heldout.json")):
        fold = json.loads(fold_file.read_text(encoding="utf-8"))
        files = [f for f in fold["files"] if (f.get("source") or f.get("group")) not in skip]
        if not {f["label"] for f in files} >= {0, 1}:
            print(f"{fold_file.parent.name}: nothing left of one class after --exclude-source; skipped")
            continue
        own, _, _ = fold_numbers(files, conds, sizes, fold["threshold"])
        heldout = [Sample(f["path"], f["label"], "heldout", f.get("generator"), f.get("family"), f.get("source")) for f in files]
        t0 = time.perf_counter()
        scored, errors, model = score_fold(args.weights, heldout, options, label=f"{fold_file.parent.name}")
        other, _, _ = fold_numbers(scored, conds, sizes, model.threshold)
        rows.append({"fold": fold_file.parent.name, "files": len(files), "fold_model": {k: own.get(k) for k in keys},
                     "other_model": {k: other.get(k) for k in keys}, "errors": len(errors), "seconds": time.perf_counter() - t0})
    if not rows:
        print("no scored folds")
        return 1

    def mean(which: str, key: str) -> float | None:
        xs = [r[which][key] for r in rows if r[which][key] is not None]
        return statistics.fmean(xs) if xs else None

    print(f"{args.root.name}: fold models vs {args.weights} on the same held-out files"
          + (f" (without {', '.join(sorted(skip))})" if skip else ""))
    print("fold | files | " + " | ".join(keys))
    for r in rows:
        for which in ("fold_model", "other_model"):
            print(f"{r['fold']} {which} | {r['files']} | " + " | ".join("n/a" if r[which][k] is None else f"{r[which][k]:.4f}" for k in keys))
    for which in ("fold_model", "other_model"):
        print(f"mean {which} | | " + " | ".join("n/a" if mean(which, k) is None else f"{mean(which, k):.4f}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps({"root": str(args.root), "weights": str(args.weights), "excluded": sorted(skip), "folds": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
