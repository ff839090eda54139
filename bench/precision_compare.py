"""What a cheaper arithmetic changes in the verdicts: one model scored two ways (an fp32 ONNX
export against its INT8 copy, or the torch engine in fp32 against bf16) on the same pictures,
as glass scan scores them.

    .venv/bin/glass export --onnx --int8 --calibration MANIFEST -o /tmp/glass-lite0.int8.onnx
    .venv/bin/python bench/precision_compare.py weights/glass-lite0.onnx /tmp/glass-lite0.int8.onnx \\
        --record docs/experiments/cv-abl-g-k4s1-e16
    .venv/bin/python bench/precision_compare.py weights/glass-lite0.safetensors weights/glass-lite0.safetensors@bf16 \\
        --record docs/experiments/cv-abl-g-k4s1-e16

A model is a file, optionally followed by ``@PRECISION`` for the torch engine (``@bf16``).
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
    ap.add_argument("reference", help="the model as scan runs it by default (file[@precision])")
    ap.add_argument("candidate", help="the cheaper one (file[@precision])")
    ap.add_argument("--record", type=Path, required=True, help="a glass cv folder (fold-*/heldout.json)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N files (0: all)")
    ap.add_argument("--out", type=Path, help="also write the report here")
    args = ap.parse_args()

    from glass_cli.inference.engines import open_engine
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
    scores, seconds, names = {}, {}, {}
    for role, spec in (("reference", args.reference), ("candidate", args.candidate)):
        path, _, precision = spec.partition("@")
        engine = open_engine(path, device="cpu", precision=precision or "auto")
        names[role] = f"{Path(path).name} ({engine.kind}, {getattr(engine, 'precision', None) or 'as exported'})"
        start = time.perf_counter()
        scores[role] = {r.path: r.p_ai for r in scan(paths, engine, settings) if r.p_ai is not None}
        seconds[role] = time.perf_counter() - start
        threshold = engine.config.threshold
    ref, cand = scores["reference"], scores["candidate"]
    both = [p for p in paths if p in ref and p in cand]
    y = [labels[p] for p in both]
    a, b = [ref[p] for p in both], [cand[p] for p in both]
    flips = [p for p, x, z in zip(both, a, b) if (x >= threshold) != (z >= threshold)]
    lines = [
        f"{len(both)} pictures ({sum(y)} AI, {len(y) - sum(y)} real) from {args.record}; threshold {threshold:g}",
        f"reference {names['reference']}; candidate {names['candidate']}",
        f"AUROC reference {auroc(y, a):.4f}, candidate {auroc(y, b):.4f} (change {100 * (auroc(y, b) - auroc(y, a)):+.2f} points)",
        f"largest |P(AI) difference| {max(abs(x - z) for x, z in zip(a, b)):.4f}; mean {sum(abs(x - z) for x, z in zip(a, b)) / len(a):.4f}",
        f"verdicts flipped at the threshold: {len(flips)} of {len(both)} ({100 * len(flips) / len(both):.2f}%)",
        f"scan wall time, same files: reference {seconds['reference']:.1f} s, candidate {seconds['candidate']:.1f} s "
        f"(candidate {seconds['reference'] / seconds['candidate']:.2f}x)",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
