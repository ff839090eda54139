"""How long a user waits for `glass --help` and for the scan of one image, as fresh processes.

    .venv/bin/python bench/startup.py                 # this venv's glass
    .venv/bin/python bench/startup.py --glass /tmp/lean/bin/glass --runs 7

Each command runs ``--runs`` times as a new process (the first run is reported apart: it
pays for a cold file cache); the table gives the median wall time of the others, and the
same for ``python -c pass`` of the same interpreter, measured in the same run, as the floor
no command can go under. Run it on an idle machine: a busy one stretches every number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    """(first run, median of the other runs) wall seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                       env={**os.environ, "COLUMNS": "120"})
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:]) if len(times) > 1 else times[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--glass", default=str(Path(sys.executable).with_name("glass")), help="the glass executable to time")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--image", default=str(ROOT / "examples" / "camera-kodak-dx6490.jpg"))
    args = ap.parse_args()
    python = str(Path(args.glass).with_name("python"))
    rows = [
        ("python -c pass (floor)", [python, "-c", "pass"]),
        ("glass --help", [args.glass, "--help"]),
        ("glass scan ONE_IMAGE (default engine)", [args.glass, "scan", args.image]),
        ("glass scan examples/ (8 images)", [args.glass, "scan", str(ROOT / "examples")]),
    ]
    print(f"glass: {args.glass}; {args.runs} runs each; cores usable: {len(os.sched_getaffinity(0))}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'command':44s} {'first s':>8s} {'median s':>9s}")
    for name, argv in rows:
        first, median = timed(argv, args.runs)
        print(f"{name:44s} {first:8.2f} {median:9.2f}")


if __name__ == "__main__":
    main()
