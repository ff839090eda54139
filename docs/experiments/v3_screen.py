#!/usr/bin/env python3
"""Compare single-fold screening runs of `glass cv --only-fold I` from their per-file scores.

    .venv/bin/python docs/experiments/v3_screen.py runs/cv/v3-b-e8 runs/cv/v3-g-e8 [--fold 2] [--pair A B]

With one fold there is no nested threshold (the other folds' reals), so each model is
judged at its **own fold's 5% threshold**: the lowest P(AI) that flags at most 5% of the
fold's held-out real scores pooled over the stored file and the --real-sizes copies (the
rule `glass cv --calibrate` applies over all folds). That threshold is fitted on the very
reals it is judged on, so "caught" is optimistic; it is the same rule for every model.

Prints, per run: objective (AUROC averaged over the real sizes), AUROC as stored and under
the re-encodes and the downscale, the threshold, fakes caught and reals flagged there as
stored, held-out v3 camera photos of 1,024 px or more flagged (their paths under the v3
image root), per long-side bucket of the reals, each real source of 5+ images and each fake
family of 5+ images. ``--pair A B`` adds the mean of two runs' P(AI) on the same files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

REAL_SIZES = ("native", "long1024", "long512")
CONDS = ("native", "jpeg75", "webp80", "down0.5")


def auroc(neg: np.ndarray, pos: np.ndarray) -> float:
    scores = np.concatenate([neg, pos])
    ranks = scores.argsort().argsort().astype(float) + 1
    # average ranks of ties
    order = np.argsort(scores)
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        if j > i:
            ranks[order[i : j + 1]] = (i + j + 2) / 2
        i = j + 1
    rp = ranks[len(neg) :].sum()
    return float((rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def threshold_at(real_scores: np.ndarray, fpr: float) -> float:
    """Lowest t such that the share of real scores >= t is at most ``fpr`` (flagged: p >= t)."""
    s = np.sort(real_scores)[::-1]
    allowed = int(np.floor(fpr * len(s)))
    if allowed >= len(s):
        return 0.0
    return float(np.nextafter(s[allowed], 1.0))


def load(run: Path, fold: int) -> list[dict]:
    return json.loads((run / f"fold-{fold}" / "heldout.json").read_text())["files"]


_sizes: dict[str, int] = {}


def long_side(path: str) -> int:
    if path not in _sizes:
        try:
            with Image.open(path) as im:
                w, h = im.size
            _sizes[path] = max(w, h)
        except OSError:
            _sizes[path] = 0
    return _sizes[path]


def report(name: str, files: list[dict], v3_root: str, fpr: float) -> dict:
    reals = [f for f in files if f["label"] == 0]
    fakes = [f for f in files if f["label"] == 1]
    out: dict = {"name": name, "n_real": len(reals), "n_fake": len(fakes)}
    for c in CONDS:
        neg = np.array([f["p_ai"][c] for f in reals if c in f["p_ai"]])
        pos = np.array([f["p_ai"][c] for f in fakes if c in f["p_ai"]])
        out[f"auroc_{c}"] = auroc(neg, pos)
    pos = np.array([f["p_ai"]["native"] for f in fakes])
    out["objective"] = float(np.mean([
        auroc(np.array([f["p_ai"][s] for f in reals if s in f["p_ai"]]), pos) for s in REAL_SIZES
    ]))
    pooled = np.array([f["p_ai"][s] for f in reals for s in REAL_SIZES if s in f["p_ai"]])
    t = threshold_at(pooled, fpr)
    out["threshold"] = t
    out["caught"] = float(np.mean(pos >= t))
    out["caught_conds"] = {c: float(np.mean([f["p_ai"][c] >= t for f in fakes if c in f["p_ai"]])) for c in CONDS}
    out["reals_flagged"] = float(np.mean([f["p_ai"]["native"] >= t for f in reals]))
    v3 = [f for f in reals if f["path"].startswith(v3_root) and long_side(f["path"]) >= 1024]
    out["v3_big_reals"] = (len(v3), int(sum(f["p_ai"]["native"] >= t for f in v3)))
    buckets = {"<512": (0, 512), "512-1023": (512, 1024), "1024-2047": (1024, 2048), ">=2048": (2048, 10**9)}
    out["buckets"] = {}
    for b, (lo, hi) in buckets.items():
        sel = [f for f in reals if lo <= long_side(f["path"]) < hi]
        out["buckets"][b] = (len(sel), int(sum(f["p_ai"]["native"] >= t for f in sel)))
    src: dict[str, list] = {}
    for f in reals:
        src.setdefault(f["source"], []).append(f["p_ai"]["native"] >= t)
    out["real_sources"] = {k: (len(v), int(sum(v))) for k, v in sorted(src.items())}
    fam: dict[str, list] = {}
    for f in fakes:
        fam.setdefault(f["family"], []).append(f["p_ai"]["native"] >= t)
    out["fake_families"] = {k: (len(v), int(sum(v))) for k, v in sorted(fam.items())}
    return out


def group_table(results: list[dict], key: str, column: str, title: str) -> None:
    """One markdown row per group of 5+ images: flagged (or caught) / n under each run."""
    print(f"\n{title}")
    print(f"| {column} | " + " | ".join(r["name"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for name in sorted({g for r in results for g in r[key]}):
        cells = [r[key].get(name, (0, 0)) for r in results]
        if max(n for n, _ in cells) >= 5:
            print(f"| {name} | " + " | ".join(f"{k}/{n}" for n, k in cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--fold", type=int, default=2)
    ap.add_argument("--fpr", type=float, default=0.05)
    ap.add_argument("--v3-root", default="/root/data/train-v3/")
    ap.add_argument("--pair", nargs=2, type=Path, action="append", default=[])
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    results = []
    for run in args.runs:
        results.append(report(run.name, load(run, args.fold), args.v3_root, args.fpr))
    for a, b in args.pair:
        fa = {f["path"]: f for f in load(a, args.fold)}
        fb = {f["path"]: f for f in load(b, args.fold)}
        both = []
        for p, f in fa.items():
            if p in fb:
                g = dict(f)
                g["p_ai"] = {k: (v + fb[p]["p_ai"][k]) / 2 for k, v in f["p_ai"].items() if k in fb[p]["p_ai"]}
                both.append(g)
        results.append(report(f"mean({a.name},{b.name})", both, args.v3_root, args.fpr))
    head = ["run", "objective", "AUROC stored", "JPEG q75", "WebP q80", "0.5x", "thr (own 5%)", "caught", "reals flagged", "v3 reals >=1024 flagged"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        n, k = r["v3_big_reals"]
        print(f"| {r['name']} | {r['objective']:.4f} | {r['auroc_native']:.4f} | {r['auroc_jpeg75']:.4f} | {r['auroc_webp80']:.4f} | "
              f"{r['auroc_down0.5']:.4f} | {r['threshold']:.4f} | {r['caught']:.3f} | {r['reals_flagged']:.3f} | {k}/{n} |")
    print()
    print("reals flagged at each run's own 5% threshold, by long side (flagged/n):")
    for r in results:
        print(f"  {r['name']}: " + ", ".join(f"{b} {k}/{n}" for b, (n, k) in r["buckets"].items()))
    group_table(results, "real_sources", "source", "real sources of 5+ images, flagged/n at each run's own threshold:")
    group_table(results, "fake_families", "family", "fake families of 5+ images, caught/n at each run's own threshold:")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
