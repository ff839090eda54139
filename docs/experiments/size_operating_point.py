#!/usr/bin/env python3
"""Does one threshold serve every picture size? A nested leave-source-out answer from the
per-file scores of a full `glass cv` record (every fold's heldout.json).

    .venv/bin/python docs/experiments/size_operating_point.py docs/experiments/cv-abl-g-k4s1-e16 [--fpr 0.05]

For each fold, thresholds are fitted on the *other* folds' held-out reals only (nested, as
`glass cv` reports "caught at the nested threshold") and applied to this fold's files:

- one threshold: the lowest P(AI) flagging at most --fpr of the other folds' real scores,
  pooled over the stored files and their --real-sizes copies (the rule of `--calibrate`);
- per size: the same rule inside each long-side bucket, every real score counted at the
  long side it was scored at (a 4,000 px photo's long512 copy is a 512-1,023 px picture).

Prints, summed over the folds, reals flagged and AI caught per bucket of the stored files'
long side under both rules, and the reals flagged among the resized copies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

BUCKETS = ((0, 512), (512, 1024), (1024, 2048), (2048, 1 << 30))
SCALES = {"native": None, "long1024": 1024, "long512": 512}


def bucket_of(long_side: int) -> int:
    return next(i for i, (lo, hi) in enumerate(BUCKETS) if lo <= long_side < hi)


def name(i: int) -> str:
    lo, hi = BUCKETS[i]
    return f"< {hi} px" if lo == 0 else (f">= {lo} px" if hi == 1 << 30 else f"{lo}-{hi - 1} px")


def threshold_at(real_scores, fpr: float) -> float:
    """Lowest t with at most ``fpr`` of the real scores >= t (1.0 flags nothing: no reals)."""
    s = np.sort(np.asarray(real_scores, dtype=float))[::-1]
    if not len(s):
        return 1.0
    allowed = int(np.floor(fpr * len(s)))
    return 0.0 if allowed >= len(s) else float(np.nextafter(s[allowed], 1.0))


def real_points(files, sizes):
    """(score, long side scored at) of every real score: the file and its resized copies."""
    out = []
    for f in files:
        if f["label"] != 0:
            continue
        for key, cap in SCALES.items():
            p = f["p_ai"].get(key)
            if p is not None:
                out.append((p, sizes[f["path"]] if cap is None else min(cap, sizes[f["path"]])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("record", type=Path)
    ap.add_argument("--fpr", type=float, default=0.05)
    args = ap.parse_args()
    from glass_cli.io.image import register_formats

    register_formats()
    folds = {int(p.parent.name.split("-")[1]): json.loads(p.read_text())["files"] for p in sorted(args.record.glob("fold-*/heldout.json"))}
    sizes, unread = {}, []
    for k, files in folds.items():
        kept = []
        for f in files:
            if f["p_ai"].get("native") is None:
                continue
            try:
                with Image.open(f["path"]) as im:
                    sizes[f["path"]] = max(im.size)
                kept.append(f)
            except OSError as exc:
                unread.append(f"{f['path']}: {exc}")
        folds[k] = kept
    if unread:
        print(f"{len(unread)} scored files whose size could not be read here, left out: {unread[:3]}")
    rules = ("one threshold", "per size")
    counts = {r: np.zeros((len(BUCKETS), 4), int) for r in rules}  # reals flagged, reals, fakes caught, fakes
    copies = {r: np.zeros(2, int) for r in rules}
    print(f"{args.record}: {len(folds)} folds, target {args.fpr:.0%} of held-out reals flagged")
    for k, files in folds.items():
        others = [f for j, fs in folds.items() if j != k for f in fs]
        points = real_points(others, sizes)
        one = threshold_at([p for p, _ in points], args.fpr)
        per = [threshold_at([p for p, side in points if bucket_of(side) == b], args.fpr) for b in range(len(BUCKETS))]
        n_per = [sum(1 for _, side in points if bucket_of(side) == b) for b in range(len(BUCKETS))]
        print(f"fold {k}: one threshold {one:.3f}; per size " + ", ".join(f"{name(b)} {t:.3f} ({n} reals)" for b, (t, n) in enumerate(zip(per, n_per))))
        for f in files:
            p, b = f["p_ai"]["native"], bucket_of(sizes[f["path"]])
            for rule, t in (("one threshold", one), ("per size", per[b])):
                col = 0 if f["label"] == 0 else 2
                counts[rule][b, col] += p >= t
                counts[rule][b, col + 1] += 1
        for f in files:
            if f["label"] != 0:
                continue
            for key in ("long1024", "long512"):
                p = f["p_ai"].get(key)
                if p is None or min(SCALES[key], sizes[f["path"]]) == sizes[f["path"]]:
                    continue  # not smaller than the stored file: the stored score already counts
                side = min(SCALES[key], sizes[f["path"]])
                copies["one threshold"] += (p >= one, 1)
                copies["per size"] += (p >= per[bucket_of(side)], 1)
    print()
    print("| long side (stored files) | reals | AI | reals flagged, one threshold | per size | AI caught, one threshold | per size |")
    print("|---|---|---|---|---|---|---|")
    for b in range(len(BUCKETS)):
        one, per = counts["one threshold"][b], counts["per size"][b]
        print(f"| {name(b)} | {one[1]} | {one[3]} | {one[0]} ({one[0] / max(one[1], 1):.1%}) | {per[0]} ({per[0] / max(per[1], 1):.1%}) | "
              f"{one[2]} ({one[2] / max(one[3], 1):.1%}) | {per[2]} ({per[2] / max(per[3], 1):.1%}) |")
    one, per = counts["one threshold"].sum(0), counts["per size"].sum(0)
    print(f"| all | {one[1]} | {one[3]} | {one[0]} ({one[0] / one[1]:.1%}) | {per[0]} ({per[0] / per[1]:.1%}) | "
          f"{one[2]} ({one[2] / one[3]:.1%}) | {per[2]} ({per[2] / per[3]:.1%}) |")
    for rule in rules:
        c = copies[rule]
        print(f"resized copies of held-out reals flagged, {rule}: {c[0]} of {c[1]} ({c[0] / max(c[1], 1):.1%})")


if __name__ == "__main__":
    main()
