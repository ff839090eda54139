"""What INT8 changes in the verdicts: an fp32 ONNX export and its INT8 copy scored on the same
pictures, as glass scan scores them.

    .venv/bin/glass export --onnx --int8 --calibration MANIFEST -o /tmp/glass-default.int8.onnx
    .venv/bin/python bench/int8_compare.py --fp32 weights/glass-default.onnx --int8 /tmp/glass-default.int8.onnx \\
        --record docs/experiments/cv-abl-g-k4s1-e16

The pictures are the held-out files of a cross-validation record (every fold's
``heldout.json``: many sources, both classes, every size), scored as stored. Prints AUROC
under each, the largest |P(AI) difference|, the verdicts that flip at the model's threshold,
and each scan's wall time (same files, same process, one after the other). The shipped
models were trained on all the data, so the AUROC itself is not a held-out figure here: the
difference between the two columns is the measurement.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", type=Path, required=True)
    ap.add_argument("--int8", type=Path, required=True)
    ap.add_argument("--record", type=Path, required=True, help="a glass cv folder (fold-*/heldout.json)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N files (0: all)")
    ap.add_argument("--out", type=Path, help="also write the report here")
    args = ap.parse_args()

    from glass_cli.inference.engines import OnnxEngine
    from glass_cli.metrics import auroc
    from glass_cli.scan.local import scan
    from glass_cli.scan.settings import Limits, ScanSettings

    labels: dict[str, int] = {}
    for held in sorted(args.record.glob("fold-*/heldout.json")):
        for f in json.loads(held.read_text())["files"]:
            if Path(f["path"]).is_file():
                labels.setdefault(f["path"], f["label"])
    paths = sorted(labels)[: args.limit or None]
    settings = ScanSettings(limits=Limits(min_side=1))
    scores, seconds = {}, {}
    for name, path in (("fp32", args.fp32), ("int8", args.int8)):
        engine = OnnxEngine(path, "cpu")
        start = time.perf_counter()
        scores[name] = {r.path: r.p_ai for r in scan(paths, engine, settings) if r.p_ai is not None}
        seconds[name] = time.perf_counter() - start
        threshold = engine.config.threshold
    both = [p for p in paths if p in scores["fp32"] and p in scores["int8"]]
    y = [labels[p] for p in both]
    a, b = [scores["fp32"][p] for p in both], [scores["int8"][p] for p in both]
    flips = [p for p, x, z in zip(both, a, b) if (x >= threshold) != (z >= threshold)]
    lines = [
        f"{len(both)} pictures ({sum(y)} AI, {len(y) - sum(y)} real) from {args.record}; threshold {threshold:g}",
        f"AUROC fp32 {auroc(y, a):.4f}, int8 {auroc(y, b):.4f} (change {100 * (auroc(y, b) - auroc(y, a)):+.2f} points)",
        f"largest |P(AI) fp32 - int8| {max(abs(x - z) for x, z in zip(a, b)):.4f}; mean {sum(abs(x - z) for x, z in zip(a, b)) / len(a):.4f}",
        f"verdicts flipped at the threshold: {len(flips)} of {len(both)} ({100 * len(flips) / len(both):.2f}%)",
        f"scan wall time, same files: fp32 {seconds['fp32']:.1f} s, int8 {seconds['int8']:.1f} s "
        f"(int8 {seconds['fp32'] / seconds['int8']:.2f}x)",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
