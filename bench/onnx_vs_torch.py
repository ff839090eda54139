"""Scan throughput on the CPU: ONNX Runtime against eager torch, same files, same run.

    .venv/bin/python bench/onnx_vs_torch.py                      # random-init default model
    .venv/bin/python bench/onnx_vs_torch.py --weights m.safetensors --onnx m.onnx --folder ./photos

Without --weights it builds a random-init model (weights do not change the speed) from
--global-backbone/--local-backbone/--crops/--crop-size; without --onnx it exports one with
glass_cli.inference.export; without --folder it writes --images generated JPEGs of --size. Then it runs
glass_cli.scan.local.scan over the same files with each engine in turn, alternating, --repeats times
each after a warm-up pass, and prints the median images/s of the whole scan (decode + views +
model) and of the model calls alone, with the ONNX/torch ratio. Both engines get the same
number of threads. cpu/wall near the thread count means the run had the cores to itself.

A measurement, not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, help="checkpoint (.safetensors); default: a random-init model")
    p.add_argument("--onnx", type=Path, help="its ONNX export; default: export --weights now")
    p.add_argument("--folder", type=Path, help="images to scan; default: generated JPEGs")
    p.add_argument("--images", type=int, default=16, help="generated images (default 16)")
    p.add_argument("--size", default="1024x768", help="generated image size WxH (default 1024x768)")
    p.add_argument("--arch", default="glass", choices=["glass", "baseline"])
    p.add_argument("--global-backbone", default="tf_efficientnet_lite0")
    p.add_argument("--local-backbone", default=None)
    p.add_argument("--crops", type=int, default=4, help="K for the random-init model")
    p.add_argument("--crop-size", type=int, default=224, help="S for the random-init model")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    return p.parse_args(argv)


def make_images(folder: Path, count: int, size: str) -> list[Path]:
    w, h = (int(x) for x in size.lower().split("x"))
    rng = np.random.default_rng(0)
    paths = []
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(count):
        base = (np.sin(xx / (20 + 3 * i)) + np.cos(yy / (15 + 2 * i))) * 60 + 128
        img = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.normal(0, 12, (h, w, 3))
        path = folder / f"img{i:03d}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


class Timed:
    """Wraps an engine and adds up the wall time spent in predict()."""

    def __init__(self, engine):
        self.engine, self.config, self.device, self.model_s = engine, engine.config, engine.device, 0.0

    def predict(self, g, c):
        t = time.perf_counter()
        out = self.engine.predict(g, c)
        self.model_s += time.perf_counter() - t
        return out


def one_pass(files, engine, batch_size):
    from glass_cli.scan.local import scan
    from glass_cli.scan.settings import ScanSettings

    timed = Timed(engine)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = list(scan(files, timed, ScanSettings(batch_size=batch_size)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return results, wall, cpu, timed.model_s


def main(argv=None) -> int:
    args = parse_args(argv)
    from glass_cli.inference.engines import OnnxEngine, TorchEngine
    from glass_cli.inference.export import export
    from glass_cli.models import checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="glass-bench-"))
    weights = args.weights
    if weights is None:
        import torch

        from glass_cli.models import new_model

        torch.manual_seed(0)
        opts = {"crop_size": args.crop_size}
        if args.arch == "glass":
            opts["num_crops"] = args.crops
        model, config = new_model(args.arch, args.global_backbone, args.local_backbone, **opts)
        weights = checkpoint.save(model.eval(), config, tmp / "bench")
    onnx_path = args.onnx
    if onnx_path is None:
        t = time.perf_counter()
        report = export(weights, tmp / "bench.onnx")
        onnx_path = report.path
        print(f"exported in {time.perf_counter() - t:.1f} s, {report.nbytes / 1e6:.1f} MB; {report.describe_checks()}")
    if args.folder:
        from glass_cli.io.walk import iter_files

        files = [p for p in iter_files([args.folder]) if isinstance(p, Path)]
    else:
        files = make_images(tmp, args.images, args.size)

    engines = {
        "torch": TorchEngine.from_checkpoint(weights, device="cpu"),
        "onnx": OnnxEngine(onnx_path, device="cpu", threads=args.threads),
    }
    import torch

    torch.set_num_threads(args.threads)
    config = engines["torch"].config
    print(
        f"model: {config.describe()}; {len(files)} files; batch {args.batch_size}; {args.threads} threads; "
        f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}"
    )
    scores = {}
    for name, engine in engines.items():  # warm-up, and the scores to compare
        results, *_ = one_pass(files[: args.batch_size], engine, args.batch_size)
        scores[name] = np.array([r.p_ai for r in results if r.p_ai is not None])
    timings = {name: [] for name in engines}
    for rep in range(args.repeats):
        for name, engine in engines.items():
            results, wall, cpu, model_s = one_pass(files, engine, args.batch_size)
            ok = sum(r.p_ai is not None for r in results)
            timings[name].append((ok / wall, ok / model_s, cpu / wall))
            print(f"  run {rep + 1} {name:5s}: {wall:6.2f} s wall, model {model_s:6.2f} s, cpu/wall {cpu / wall:.2f}")
    print(f"max |P(AI) onnx - torch| on the warm-up batch: {np.abs(scores['onnx'] - scores['torch']).max():.2e}")
    med = {name: tuple(statistics.median(t[i] for t in ts) for i in range(3)) for name, ts in timings.items()}
    for name, (scan_ips, model_ips, load) in med.items():
        print(f"{name:5s}: scan {scan_ips:7.2f} img/s, model alone {model_ips:7.2f} img/s (median of {args.repeats})")
    print(
        f"onnx/torch ratio: scan {med['onnx'][0] / med['torch'][0]:.2f}x, "
        f"model alone {med['onnx'][1] / med['torch'][1]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
