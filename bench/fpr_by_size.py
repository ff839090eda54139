"""Where small pictures stop being judged fairly: held-out reals flagged, and fakes caught, by
the picture's shorter side, from a cross-validation record's per-file scores.

    .venv/bin/python bench/fpr_by_size.py docs/experiments/cv-abl-g-k4s1-e16 --threshold 0.791

Every fold's ``heldout.json`` holds each held-out file's P(AI) under several conditions;
the pictures' sizes are read from the files' headers (they must be on this machine). Each
condition that changes the size gives a picture of a known other size: ``native`` as
stored, ``long1024``/``long512`` with the long side shrunk to that (never enlarged; reals
only), ``down0.5`` halved. So one file gives up to four (size, score) points. The table
buckets them by the shorter side and prints, per bucket, the share of reals at or above
``--threshold`` (false positives) and of fakes (caught), with counts. Nothing is asserted:
it is the measurement behind scan's ``--min-side`` default.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

BUCKETS = (64, 128, 192, 256, 320, 384, 512, 768, 1024, 1536, None)


@functools.cache
def size(path: str) -> tuple[int, int] | None:
    from glass_cli.io.image import open_image

    try:
        with open(path, "rb") as f:
            return open_image(f).size  # stored orientation: the shorter side is the same either way
    except OSError:
        return None


def sizes_under(condition: str, w: int, h: int) -> tuple[int, int] | None:
    if condition == "native" or condition in ("jpeg75", "webp80"):
        return w, h
    if condition.startswith("long"):
        limit = int(condition[4:])
        scale = min(1.0, limit / max(w, h))
        return max(1, round(w * scale)), max(1, round(h * scale))
    if condition.startswith("down"):
        f = float(condition[4:])
        return max(1, round(w * f)), max(1, round(h * f))
    return None


def bucket(short: int) -> str:
    low = 0
    for high in BUCKETS:
        if high is None or short < high:
            return f"{low}-{high - 1}" if high else f">= {low}"
        low = high
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("record", type=Path, help="a glass cv folder (fold-*/heldout.json)")
    ap.add_argument("--threshold", type=float, required=True)
    ap.add_argument("--conditions", default="native,long1024,long512,down0.5")
    args = ap.parse_args()
    conditions = args.conditions.split(",")
    counts: dict[str, list[int]] = {}
    missing = 0
    for held in sorted(args.record.glob("fold-*/heldout.json")):
        for f in json.loads(held.read_text())["files"]:
            wh = size(f["path"])
            if wh is None:
                missing += 1
                continue
            for cond in conditions:
                p = (f.get("p_ai") or {}).get(cond)
                if p is None:
                    continue
                got = sizes_under(cond, *wh)
                if got is None or (cond != "native" and got == wh and cond.startswith("long")):
                    continue  # a shrink that left the picture as it was repeats the native point
                row = counts.setdefault(bucket(min(got)), [0, 0, 0, 0])
                row[2 * f["label"]] += p >= args.threshold
                row[2 * f["label"] + 1] += 1
    order = [bucket(b - 1) if b else bucket(10**9) for b in BUCKETS]
    print(f"{args.record}: held-out pictures by shorter side, threshold {args.threshold:g} ({', '.join(conditions)})")
    print(f"{'shorter side px':>16s} {'reals':>7s} {'flagged':>8s} {'fakes':>7s} {'caught':>7s}")
    for name in order:
        if name not in counts:
            continue
        fr, nr, tf, nf = counts[name]
        print(f"{name:>16s} {nr:7d} {fr / nr if nr else float('nan'):8.1%} {nf:7d} {tf / nf if nf else float('nan'):7.1%}")
    if missing:
        print(f"({missing} files not found on this machine were left out)")


if __name__ == "__main__":
    main()
