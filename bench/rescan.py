"""What --cache and --resume save: whole `glass scan` processes, timed in one run.

    .venv/bin/python bench/rescan.py                          # 1000 generated files, the shipped model
    .venv/bin/python bench/rescan.py --files 1000 --out bench/results/rescan-cpu-DATE.txt

Generates ``--files`` JPEG photos-sized noise pictures (``--side`` px on the long side),
then times, each as a whole process with its start-up:

1. ``full``: a scan of the folder that fills a new cache (``--cache``);
2. ``cached``: the same scan again, every file answered from the cache (read and hashed,
   not decoded or scored): the re-scan of an unchanged inbox;
3. ``killed+resumed``: a scan SIGKILLed three times (after 20%, 50% and 80% of its records)
   and resumed each time with ``--resume``, then finished: the sum of the four processes,
   against one uninterrupted scan (``full`` without a cache), with the records compared.

Files per second and ratios against ``full`` come from the same run. Run it on an idle
machine (the load average is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

GLASS = str(Path(sys.executable).with_name("glass"))


def make_files(folder: Path, n: int, side: int) -> None:
    rng = np.random.default_rng(0)
    base = (rng.random((side * 3 // 4, side, 3)) * 255).astype(np.uint8)
    for i in range(n):
        pixels = np.roll(base, i * 7, axis=1) ^ np.uint8(i % 251)  # every file different
        Image.fromarray(pixels).save(folder / f"photo{i:05d}.jpg", quality=90)


def run(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([GLASS, "scan", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"glass scan failed ({done.returncode}): {done.stderr.strip()}")
    return time.perf_counter() - start


def run_until(args: list[str], jsonl: Path, lines: int) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([GLASS, "scan", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= lines:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--side", type=int, default=1024, help="long side of the generated JPEGs, px")
    ap.add_argument("--weights", default=None, help="model (default: the shipped one)")
    ap.add_argument("--out", type=Path, help="also write the report here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="glass-rescan-"))
    lines = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    try:
        folder = tmp / "inbox"
        folder.mkdir()
        make_files(folder, args.files, args.side)
        common = [str(folder), "--workers", str(os.cpu_count())] + (["--weights", args.weights] if args.weights else [])
        say(f"{args.files} JPEGs of {args.side}x{args.side * 3 // 4}; {os.cpu_count()} CPUs; load before {os.getloadavg()[0]:.2f}")
        cache = tmp / "results.sqlite"
        full = run([*common, "--cache", str(cache), "--jsonl", str(tmp / "full.jsonl")])
        cached = run([*common, "--cache", str(cache), "--jsonl", str(tmp / "cached.jsonl")])
        plain = run([*common, "--jsonl", str(tmp / "plain.jsonl")])
        jsonl = tmp / "resumed.jsonl"
        pieces = []
        for share in (0.2, 0.5, 0.8):
            resume = ["--resume"] if jsonl.exists() else []
            pieces.append(run_until([*common, "--jsonl", str(jsonl), *resume], jsonl, int(share * args.files)))
        pieces.append(run([*common, "--jsonl", str(jsonl), "--resume"]))

        def recs(p: Path) -> dict:
            return {json.loads(line)["path"]: line for line in p.read_text().splitlines()}

        same = recs(jsonl) == recs(tmp / "plain.jsonl") and recs(tmp / "cached.jsonl") == recs(tmp / "full.jsonl")
        n = args.files
        say(f"{'run':<34s} {'seconds':>8s} {'files/s':>8s} {'ratio':>7s}")
        say(f"{'full scan, filling the cache':<34s} {full:8.1f} {n / full:8.1f} {1.0:7.2f}")
        say(f"{'cached re-scan of the same files':<34s} {cached:8.1f} {n / cached:8.1f} {full / cached:7.2f}")
        say(f"{'full scan, no cache':<34s} {plain:8.1f} {n / plain:8.1f} {full / plain:7.2f}")
        say(f"{'3 kills + 3 resumes, in all':<34s} {sum(pieces):8.1f} {n / sum(pieces):8.1f} {full / sum(pieces):7.2f}"
            f"   ({' + '.join(f'{p:.1f}' for p in pieces)} s; {sum(pieces) / plain:.2f} full scans)")
        say(f"records: resumed = uninterrupted and cached = fresh: {same}; load after {os.getloadavg()[0]:.2f}")
        if args.out:
            args.out.write_text("\n".join(lines) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
