"""The whole `glass scan` process, start-up included, against a one-thread full Pillow decode
of the same files, for each arithmetic the CPU can run, measured in one run.

    .venv/bin/python bench/scan_process.py                  # 192 generated 12 MP JPEGs
    .venv/bin/python bench/scan_process.py --files 48 --runs 1

Rows, each a fresh `glass scan FOLDER` process (its stdout discarded), on the same files:

- ``decode``: ``Image.open(path).convert("RGB")`` of every file in one thread of this
  process: the floor that issue 36 measures scan against (the goal is 2x it);
- ``onnx fp32 (plain glass scan)``: the shipped default, the resize-only baseline
  (``weights/baseline-lite0.onnx``);
- ``onnx fp32, glass``: the shipped GLASS model (``--weights glass``, ``weights/glass-lite0.onnx``);
- ``onnx int8, glass``: the GLASS model quantised in this run (``glass export --onnx --int8``,
  calibrated on examples/ sorted into real and AI: a timing needs the graph, not the best
  ranges);
- ``torch fp32, glass`` and ``torch bf16, glass``: its checkpoint on the torch engine
  (``--precision bf16`` only where the CPU has bfloat16 instructions).

For each: images/s, the ratio to the decode row, and core use (the process's user + system
CPU time over wall time times the cores: 100% keeps every core busy). Each row is the median
of ``--runs`` processes. Run it on an idle machine: a busy one stretches every number.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan import make_corpus  # noqa: E402


def run_process(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def calibration_folder(root: Path) -> Path:
    """examples/ as a labelled folder (ai-* pictures as fake/, the others as real/)."""
    for name in ("real", "fake"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for p in sorted((ROOT / "examples").iterdir()):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            (root / ("fake" if p.name.startswith("ai-") else "real") / p.name).symlink_to(p)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=192)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--runs", type=int, default=3, help="processes per row (the median is reported)")
    ap.add_argument("--glass", default=str(Path(sys.executable).with_name("glass")))
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus")
    args = ap.parse_args()

    from glass_cli.inference.engines import cpu_bf16_supported

    tmp = Path(tempfile.mkdtemp(prefix="glass-bench-process-"))
    corpus = tmp / "corpus"
    start = time.perf_counter()
    files = make_corpus(corpus, args.files, args.megapixels)
    print(f"corpus: {len(files)} JPEGs of {args.megapixels:g} MP in {time.perf_counter() - start:.0f} s")
    int8 = tmp / "glass-lite0.int8.onnx"
    export = [args.glass, "export", "--onnx", "--int8", "--weights", "glass", "--calibration", str(calibration_folder(tmp / "calibration")),
              "-o", str(int8)]
    subprocess.run(export, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cores = len(os.sched_getaffinity(0))
    rows = [
        ("onnx fp32 (plain glass scan)", []),
        ("onnx fp32, glass", ["--weights", "glass"]),
        ("onnx int8, glass", ["--weights", str(int8)]),
        ("torch fp32, glass", ["--weights", str(ROOT / "weights" / "glass-lite0.safetensors"), "--engine", "torch"]),
    ]
    if cpu_bf16_supported():
        rows.append(("torch bf16, glass", ["--weights", str(ROOT / "weights" / "glass-lite0.safetensors"), "--engine", "torch", "--precision", "bf16"]))
    print(f"{cores} cores usable; load average before {os.getloadavg()[0]:.2f}; {args.runs} process(es) per row, median")

    def decode_all() -> float:
        t = time.perf_counter()
        for p in files:
            with Image.open(p) as im:
                im.convert("RGB")
        return time.perf_counter() - t

    decode_all()  # file cache warm, as for every scan row
    decode = statistics.median(decode_all() for _ in range(args.runs))
    decode_rate = len(files) / decode
    print(f"\n{'row':34s} {'img/s':>7s} {'x decode':>9s} {'core use':>9s}")
    print(f"{'decode (Pillow, 1 thread)':34s} {decode_rate:7.2f} {1.0:9.2f} {'':>9s}")
    for name, extra in rows:
        measured = [run_process([args.glass, "scan", str(corpus), *extra]) for _ in range(args.runs)]
        wall, cpu = sorted(measured)[len(measured) // 2]
        rate = len(files) / wall
        print(f"{name:34s} {rate:7.2f} {rate / decode_rate:9.2f} {cpu / (wall * cores):9.0%}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    if not args.keep:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
