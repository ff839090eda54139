"""Would averaging two cross-validated recipes beat each alone? Scored on the same held-out files.

    .venv/bin/python bench/cv_ensemble.py runs/cv/glass-v2-lso runs/cv/baseline-v2-lso

Both cross-validations must share their folds (same data, --folds and --group-by: the plan
is a function of those). For every condition the held-out files of each fold are scored by
model A, model B and the mean of their P(AI); the table gives, as the mean over folds, the
AUROC and the share of AI images caught at 5% false positives on that fold's reals (the
threshold is each fold's own, the same rule for all three columns, so the columns compare
but overstate what a threshold chosen elsewhere would catch). Then the shipping protocol
for the average, as `glass cv` runs it for one model
(``glass_cli.evaluation.cv.calibration``): the leave-source-out threshold, and each fold
judged at the threshold of the other folds' reals. A measurement: nothing is shipped by it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from glass_cli.evaluation.cv.calibration import calibration
from glass_cli.evaluation.cv.folds import FoldResult
from glass_cli.evaluation.cv.options import CvOptions
from glass_cli.metrics import auroc, tpr_at_fpr


def held_out(cv: Path, fold: int) -> dict[str, dict]:
    doc = json.loads((cv / f"fold-{fold}" / "heldout.json").read_text())
    return {f["path"]: f for f in doc["files"] if f.get("p_ai")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--fpr", type=float, default=0.05)
    args = ap.parse_args()
    plans = [json.loads((cv / "plan.json").read_text())["folds"] for cv in (args.a, args.b)]
    if plans[0] != plans[1]:
        raise SystemExit("the two cross-validations hold out different folds; nothing to compare")
    folds = range(1, len(plans[0]) + 1)
    a_files = {i: held_out(args.a, i) for i in folds}
    b_files = {i: held_out(args.b, i) for i in folds}
    conditions = list(next(iter(a_files[1].values()))["p_ai"])
    print(f"A = {args.a.name}, B = {args.b.name}, mean = (A + B) / 2; mean over {len(folds)} folds")
    print(f"{'condition':10s} " + " ".join(f"{name + ' AUROC':>11s} {name + ' TPR':>9s}" for name in ("A", "B", "mean")))
    for cond in conditions:
        cells = {"A": ([], []), "B": ([], []), "mean": ([], [])}
        for i in folds:
            keys = [k for k in a_files[i] if k in b_files[i] and cond in a_files[i][k]["p_ai"] and cond in b_files[i][k]["p_ai"]]
            labels = [a_files[i][k]["label"] for k in keys]
            if len(set(labels)) < 2:
                continue  # a condition applied to one class only (reals shrunk): no AUROC on its own
            sa = [a_files[i][k]["p_ai"][cond] for k in keys]
            sb = [b_files[i][k]["p_ai"][cond] for k in keys]
            for name, scores in (("A", sa), ("B", sb), ("mean", [(x + y) / 2 for x, y in zip(sa, sb)])):
                cells[name][0].append(auroc(labels, scores))
                cells[name][1].append(tpr_at_fpr(labels, scores, args.fpr))
        if cells["A"][0]:
            print(f"{cond:10s} " + " ".join(f"{statistics.mean(au):11.3f} {statistics.mean(tp):9.3f}" for au, tp in cells.values()))
    nested_report(args.a, args.b, folds, a_files, b_files)


def averaged_fold(cv: Path, fold: int, a: dict[str, dict], b: dict[str, dict]) -> FoldResult:
    """Fold ``fold`` of ``cv`` with each held-out file's P(AI) replaced by the mean of A's and B's."""
    result = FoldResult.from_dict(json.loads((cv / f"fold-{fold}" / "heldout.json").read_text()))
    files = []
    for f in result.files:
        if f["path"] in a and f["path"] in b:
            pa, pb = a[f["path"]]["p_ai"], b[f["path"]]["p_ai"]
            files.append({**f, "p_ai": {k: (pa[k] + pb[k]) / 2 for k in pa if k in pb}})
    result.files = files
    return result


def nested_report(cv_a: Path, cv_b: Path, folds, a_files, b_files) -> None:
    options = CvOptions.from_plan(json.loads((cv_a / "plan.json").read_text())["options"])
    rows = {"A": [FoldResult.from_dict(json.loads((cv_a / f"fold-{i}" / "heldout.json").read_text())) for i in folds],
            "B": [FoldResult.from_dict(json.loads((cv_b / f"fold-{i}" / "heldout.json").read_text())) for i in folds],
            "mean": [averaged_fold(cv_a, i, a_files[i], b_files[i]) for i in folds]}
    print(f"\nat the leave-source-out threshold ({options.target_fpr:.0%} of all held-out reals at every size), "
          "each fold judged at the other folds' threshold:")
    print(f"{'model':6s} {'threshold':>9s} {'AI caught':>10s} {'reals flagged':>14s}  worst real source of "
          f"at least {calibration(rows['A'], options)['worst_source_min_n']} images")
    for name, fold_results in rows.items():
        cal = calibration(fold_results, options)
        s = cal["nested_summary"]
        worst = cal["worst_source_sized"].get("native", {})
        print(f"{name:6s} {cal['threshold']:9.4f} {s['tpr_native']['mean']:10.3f} {s['fpr_native']['mean']:14.3f}  "
              f"{worst.get('source', '-')} {worst.get('fpr', 0):.0%} (fold {worst.get('fold', '-')})")


if __name__ == "__main__":
    main()
