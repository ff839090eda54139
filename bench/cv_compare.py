"""Compare finished cross-validations (glass cv) side by side.

    .venv/bin/python bench/cv_compare.py runs/cv/glass-lite0-e2-3fold runs/cv/baseline-lite0-e2-3fold
    .venv/bin/python bench/cv_compare.py runs/cv/A runs/cv/B --markdown --target-fpr 0.01

For each cross-validation: the objective (held-out AUROC averaged over the real sizes) and
the AUROC under every condition as mean ± standard deviation over folds, the share of
held-out reals flagged at the model's threshold, and the worst real source (sources with at
least --min-source images); then the same at the leave-family-out (LFO) threshold for
--target-fpr, each fold judged at the threshold computed from the other folds
(glass_cli.evaluation.cv.calibration). A measurement: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glass_cli.evaluation.cv.calibration import calibration  # noqa: E402
from glass_cli.evaluation.cv.folds import FoldResult  # noqa: E402
from glass_cli.evaluation.cv.options import FOLD_FILE, CvOptions  # noqa: E402

COLUMNS = ["auroc_sizes_mean", "auroc_native", "auroc_long1024", "auroc_long512", "auroc_jpeg75", "auroc_down0.5", "fpr_native", "fpr_long512"]


def cell(summary: dict, key: str) -> str:
    s = summary.get(key)
    if not s or s["mean"] is None:
        return "n/a"
    return f"{s['mean']:.3f} ± {s['std']:.3f}" if s.get("std") is not None else f"{s['mean']:.3f}"


def worst_source(folds: list[dict], key: str, min_n: int) -> str:
    rows = [(v[key], name, v["n"]) for f in folds for name, v in f["real_sources"].items() if v["n"] >= min_n and v.get(key) is not None]
    if not rows:
        return "n/a"
    rate, name, n = max(rows)
    return f"{name} {rate:.0%} (n={n})"


def recalibrate(root: Path, saved: dict, target_fpr: float) -> dict | None:
    """The LFO threshold for another target FPR, from the folds' per-file scores."""
    options = CvOptions(**{**saved["options"], "real_sizes": tuple(saved["options"]["real_sizes"])}, target_fpr=target_fpr)
    folds = []
    for f in saved["folds"]:
        held = root / f"fold-{f['fold']['index']}" / FOLD_FILE
        folds.append(FoldResult.from_dict(json.loads(held.read_text(encoding="utf-8"))))
    return calibration(folds, options)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="+", help="cross-validation folders (RUNS_DIR/cv/NAME)")
    ap.add_argument("--min-source", type=int, default=5, help="smallest real source counted for the worst-source column")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--target-fpr", type=float, default=0.05, help="FPR the leave-family-out (LFO) threshold aims at")
    ap.add_argument("--json", help="also write the rows as JSON here")
    ap.add_argument("--sources", action="store_true",
                    help="also print, for each cross-validation, every held-out real source's false-positive rate at its fold's nested LFO threshold")
    args = ap.parse_args()

    rows = []
    for root in args.roots:
        saved = json.loads((Path(root) / "cv.json").read_text())
        cal = saved.get("calibration")
        if not cal or cal["target_fpr"] != args.target_fpr:
            cal = recalibrate(Path(root), saved, args.target_fpr)
        folds = [{"real_sources": f["real_sources"]} for f in saved["folds"]]
        rows.append({"name": Path(root).name, "summary": saved["summary"], "folds": folds, "complete": saved["complete"], "calibration": cal})

    def calibrated(r: dict) -> list[str]:
        cal = r["calibration"]
        if not cal:
            return ["n/a"] * 5
        worst = [cal["worst_source_sized"].get(k) for k in ("native", "long512")]
        return [f"{cal['threshold']:.3f}", cell(cal["nested_summary"], "tpr_native"), cell(cal["nested_summary"], "fpr_native"),
                *[f"{w['source']} {w['fpr']:.0%} (n={w['n']})" if w else "n/a" for w in worst]]

    head = ["cross-validation", *COLUMNS, "worst source native", "worst source long512",
            "LFO threshold", "TPR native @LFO", "FPR native @LFO", "worst source native @LFO", "worst source long512 @LFO"]
    table = [[r["name"] + ("" if r["complete"] else " (incomplete)"), *[cell(r["summary"], k) for k in COLUMNS],
              worst_source(r["folds"], "native", args.min_source), worst_source(r["folds"], "long512", args.min_source), *calibrated(r)]
             for r in rows]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for t in table:
            print("| " + " | ".join(t) + " |")
    else:
        for t in table:
            print("\n".join(f"{h:>22}: {v}" for h, v in zip(head, t)) + "\n")
    if args.sources:
        for r in rows:
            cal = r["calibration"]
            if not cal:
                continue
            keys = [k for k in ("native", "long1024", "long512", "jpeg75", "down0.5") if any(k in src for n in cal["nested"] for src in n["real_sources"].values())]
            print(f"\n{r['name']}: held-out real sources flagged at the fold's LFO threshold (target FPR {cal['target_fpr']:g})\n")
            print("| source | fold | n | threshold | " + " | ".join(keys) + " |")
            print("|---|---|---|---|" + "---|" * len(keys))
            for n in cal["nested"]:
                for name, src in sorted(n["real_sources"].items(), key=lambda kv: (-kv[1]["n"], kv[0])):
                    print(f"| {name} | {n['fold']} | {src['n']} | {n['threshold']:.3f} | " + " | ".join(f"{src[k]:.0%}" if src.get(k) is not None else "n/a" for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
