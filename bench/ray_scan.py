"""What Ray costs a scan: a plain scan and a Ray scan of the same generated files, and Ray's start-up.

    .venv/bin/python bench/ray_scan.py                        # 32 files, the shipped model, 2 CPUs for Ray
    .venv/bin/python bench/ray_scan.py --files 32 --cpus 2 --out bench/results/ray-scan-cpu-2026-12-01.txt

Generates ``--files`` noise pictures (1024x768 JPEG), then times, in this one process:
``ray.init`` of a private Ray with ``--cpus`` CPUs (the start-up a ``--ray local`` scan pays
once), the plain scan (``scan_paths(...).run()``) and the Ray scan (``ScanSettings(ray='local')`` on the
running Ray: prepare tasks and engine actors, as ``glass scan --ray``), each ``--runs`` times
(median reported), and checks that both wrote the same JSON Lines. Both scans load the
model once per run. Run it on an idle machine; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_files(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"noise{i:03d}.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the private Ray instance")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--weights", default=None, help="model (default: the shipped ONNX model)")
    ap.add_argument("--out", default=None, help="also write the report here")
    args = ap.parse_args()

    import ray

    from glass_cli.outputs.sinks import OutputOptions
    from glass_cli.scan.job import scan_paths
    from glass_cli.scan.settings import ScanSettings

    lines = [f"load average before: {load()}; cores usable: {len(os.sched_getaffinity(0))}"]
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "files", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        make_files(folder, args.files)

        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        startup = time.perf_counter() - start

        def timed(make, name: str) -> tuple[float, str]:
            times, digest = [], ""
            for run in range(args.runs):
                dest = out / f"{name}-{run}.jsonl"
                start = time.perf_counter()
                make(dest).run()
                times.append(time.perf_counter() - start)
                digest = hashlib.sha256(dest.read_bytes()).hexdigest()
            return statistics.median(times), digest

        def settings(dest, **ray):
            return ScanSettings(weights=args.weights, outputs=OutputOptions(jsonl=str(dest)), **ray)

        plain, plain_sha = timed(lambda dest: scan_paths([folder], settings(dest)), "plain")
        on_ray, ray_sha = timed(lambda dest: scan_paths([folder], settings(dest, ray="local")), "ray")
        ray.shutdown()

    n = args.files
    lines += [
        f"{n} generated 1024x768 JPEG files; model: {args.weights or 'the shipped default (ONNX Runtime)'}; median of {args.runs} runs",
        f"Ray start-up (ray.init, {args.cpus} CPUs, no dashboard): {startup:.2f} s",
        f"plain scan (scan_paths, {os.cpu_count()} decode threads): {plain:.2f} s = {n / plain:.1f} files/s",
        f"Ray scan (running Ray, {max(1, args.cpus // 2)} engine actor(s), prepare tasks on the other CPUs): {on_ray:.2f} s = {n / on_ray:.1f} files/s",
        f"Ray / plain wall time: {on_ray / plain:.2f}x (throughput ratio {plain / on_ray:.2f})",
        f"first --ray local scan, start-up included: about {startup + on_ray:.1f} s",
        f"same JSON Lines: {plain_sha == ray_sha} ({plain_sha[:16]})",
        f"load average after: {load()}",
    ]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.out:
        from glass_cli.io import atomic

        atomic.write_text(args.out, report)


if __name__ == "__main__":
    main()
