"""Markdown tables for weights/MODEL_CARD.md from a GLASS and a baseline cross-validation
(glass cv) and from glass eval --json files of the shipped models.

    .venv/bin/python bench/card_tables.py --glass-cv runs/cv/G --baseline-cv runs/cv/B \
        --evals runs/card3      # holds glass-val.json, glass-val-jpeg75.json, ... baseline-*.json

Without --evals the train-v1 val table is left out. With --sizes NAME=FOLDER ... only the
table by stored format and size is printed, one column per cross-validation folder. That
table reads each fold's heldout.json and the image files' headers (their sizes are not
stored), each file's header once however many columns score it.

Prints the tables; the card's prose is written by people. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

CONDS = [("native", "reals and fakes as stored"), ("long1024", "reals shrunk to 1024 px"), ("long512", "reals shrunk to 512 px"),
         ("sizes_mean", "**objective: mean of the three**"), ("jpeg75", "both classes JPEG q75"), ("down0.5", "both classes downscaled 0.5x")]


def load(root: str) -> dict:
    return json.loads((Path(root) / "cv.json").read_text())


def fmt(xs):
    return ", ".join(f"{x:.3f}" for x in xs)


def group_table(gc: dict, bc: dict, field: str, title: str, keys: list[str], header: str) -> None:
    """One row per held-out group (``field``: real_sources or fake_families) of each fold:
    its share flagged at the fold's nested threshold under each condition, GLASS then baseline."""
    print(f"\n| {title} (fold, images) | GLASS: {header} | baseline: {header} |")
    print("|---|---|---|")
    other = {(n["fold"], name): group for n in bc["nested"] for name, group in n[field].items()}

    def cells(s: dict) -> str:
        return " / ".join(f"{s[k]:.0%}" if s.get(k) is not None else "n/a" for k in keys)

    for n in gc["nested"]:
        for name, group in sorted(n[field].items(), key=lambda kv: (-kv[1]["n"], kv[0])):
            print(f"| {name} ({n['fold']}, {group['n']}) | {cells(group)} | {cells(other.get((n['fold'], name), {}))} |")


SIZE_BUCKETS = [(600, "< 600 px"), (1100, "600-1099 px"), (2100, "1100-2099 px"), (None, ">= 2100 px")]


@functools.cache
def size_bucket(path: str) -> str | None:
    """The long-side bucket of an image file, from its header; None when it cannot be opened."""
    from PIL import Image

    from glass_cli.io.image import register_formats

    register_formats()
    try:
        with Image.open(path) as im:
            long_side = max(im.size)
    except (OSError, ValueError):
        return None
    return next(label for top, label in SIZE_BUCKETS if top is None or long_side < top)


def size_table(columns: list[tuple[str, str, dict]], min_n: int = 10) -> None:
    """Share flagged (reals) and caught (AI) as stored, by class, stored format and long side,
    each fold at its nested threshold, pooled over folds; one column per (name, cv folder,
    cv.json) in ``columns``. Rows of fewer than ``min_n`` files, or where the runs did not
    score the same number of files, are left out."""
    counts: dict[tuple, list[int]] = {}
    for col, (_, root, doc) in enumerate(columns):
        thresholds = {n["fold"]: n["threshold"] for n in doc["calibration"]["nested"]}
        for fold in thresholds:
            held = json.loads((Path(root) / f"fold-{fold}" / "heldout.json").read_text())
            for f in held["files"]:
                bucket = size_bucket(f["path"])
                if bucket is None or f["p_ai"].get("native") is None:
                    continue
                cell = counts.setdefault((f["label"], f["format"], bucket), [0] * (2 * len(columns)))
                cell[2 * col] += 1
                cell[2 * col + 1] += f["p_ai"]["native"] >= thresholds[fold]
    order = {label: i for i, (_, label) in enumerate(SIZE_BUCKETS)}
    print("\n| stored files (class, format, long side) | files | " + " | ".join(f"{name} flags" for name, _, _ in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for (label, fmt_, bucket), cell in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]])):
        ns, ks = cell[0::2], cell[1::2]
        if ns[0] >= min_n and len(set(ns)) == 1:
            print(f"| {'AI' if label else 'real'}, {fmt_}, {bucket} | {ns[0]} | " + " | ".join(f"{k / ns[0]:.0%}" for k in ks) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glass-cv")
    ap.add_argument("--baseline-cv")
    ap.add_argument("--evals")
    ap.add_argument("--sizes", nargs="+", metavar="NAME=CV_FOLDER",
                    help="print only the table by stored format and size, one column per cross-validation folder")
    args = ap.parse_args()
    if args.sizes:
        columns = []
        for item in args.sizes:
            name, _, root = item.rpartition("=")
            if not (Path(root) / "cv.json").is_file():
                ap.error(f"{root}: no cv.json there (a glass cv folder, or a kept record's folder)")
            columns.append((name or Path(root).name, root, load(root)))
        size_table(columns)
        return 0
    if not (args.glass_cv and args.baseline_cv):
        ap.error("--glass-cv and --baseline-cv are needed (or --sizes)")
    g, b = load(args.glass_cv), load(args.baseline_cv)

    print("| held-out AUROC | GLASS (folds 1, 2, 3) | GLASS mean ± std | baseline (folds 1, 2, 3) | baseline mean ± std | GLASS − baseline |")
    print("|---|---|---|---|---|---|")
    for key, label in CONDS:
        k = f"auroc_{key}"
        gs, bs = [f["metrics"][k] for f in g["folds"]], [f["metrics"][k] for f in b["folds"]]
        gm, bm = g["summary"][k], b["summary"][k]
        print(f"| {label} | {fmt(gs)} | {gm['mean']:.3f} ± {gm['std']:.3f} | {fmt(bs)} | {bm['mean']:.3f} ± {bm['std']:.3f} | {100 * (gm['mean'] - bm['mean']):+.1f} pts |")

    print()
    gc, bc = g["calibration"], b["calibration"]
    print(f"leave-source-out thresholds: GLASS {gc['threshold']:.4f} (folds {fmt(n['threshold'] for n in gc['nested'])}), "
          f"baseline {bc['threshold']:.4f} (folds {fmt(n['threshold'] for n in bc['nested'])})\n")
    print("| at the leave-source-out threshold (each fold at the other folds' threshold) | GLASS | baseline |")
    print("|---|---|---|")
    rows = [("tpr_native", "AI images caught, as stored"), ("tpr_jpeg75", "AI images caught, JPEG q75"), ("tpr_down0.5", "AI images caught, 0.5x"),
            ("fpr_native", "real photos flagged, as stored"), ("fpr_long1024", "real photos flagged, 1024 px"),
            ("fpr_long512", "real photos flagged, 512 px"), ("fpr_jpeg75", "real photos flagged, JPEG q75"), ("fpr_down0.5", "real photos flagged, 0.5x")]
    for k, label in rows:
        gm, bm = gc["nested_summary"][k], bc["nested_summary"][k]
        print(f"| {label} | {gm['mean']:.3f} ± {gm['std']:.3f} | {bm['mean']:.3f} ± {bm['std']:.3f} |")

    group_table(gc, bc, "real_sources", "held-out real source", ["native", "long1024", "long512", "jpeg75", "down0.5"],
                "as stored / 1024 / 512 / JPEG q75 / 0.5x")
    group_table(gc, bc, "fake_families", "held-out AI family", ["native", "jpeg75", "webp80", "down0.5"],
                "as stored / JPEG q75 / WebP q80 / 0.5x")
    size_table([("GLASS", args.glass_cv, g), ("baseline", args.baseline_cv, b)])
    if not args.evals:
        return 0

    print("\n| train-v1 val (56 real, 90 AI; seen sources, unseen prompts) | GLASS | baseline |")
    print("|---|---|---|")
    ev = {}
    for m in ("glass", "baseline"):
        for c in ("val", "val-jpeg75", "val-down05", "val-long512"):
            path = Path(args.evals) / f"{m}-{c}.json"
            ev[m, c] = json.loads(path.read_text()) if path.is_file() else None
    metrics = [("auroc", "AUROC"), ("average_precision", "average precision"), ("accuracy", "accuracy at the shipped threshold"),
               ("balanced_accuracy", "balanced accuracy"), ("tpr", "AI caught at the shipped threshold"), ("fpr", "reals flagged at the shipped threshold"),
               ("tpr_at_fpr_5", "TPR at 5% FPR"), ("tpr_at_fpr_1", "TPR at 1% FPR"), ("ece", "ECE (15 bins)")]
    for k, label in metrics:
        vals = [ev[m, "val"]["overall"][k] if ev[m, "val"] else None for m in ("glass", "baseline")]
        print(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in vals) + " |")
    for c, label in (("val-jpeg75", "AUROC, JPEG q75"), ("val-down05", "AUROC, 0.5x"), ("val-long512", "AUROC, long side 512")):
        vals = [ev[m, c]["overall"]["auroc"] if ev[m, c] else None for m in ("glass", "baseline")]
        print(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in vals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
