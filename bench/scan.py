"""How fast is `glass scan`, against its own bound, its previous decode path and a naive
loop, measured in one run.

    .venv/bin/python bench/scan.py                      # 24 generated 12 MP JPEGs
    .venv/bin/python bench/scan.py --files 1000 --megapixels 24 --only scan   # long run: RSS
    .venv/bin/python bench/scan.py --folder ~/photos     # your own JPEGs
    .venv/bin/python bench/scan.py --scaling            # preparation alone, by worker count
    .venv/bin/python bench/scan.py --decode cpu,gpu --engines torch   # on a CUDA machine

Measures, on the same files in the same process:
  (a) decode: read + hash + evidence + decode + views per file, one thread; "previous" is
      the decode path before the shared-buffer change (every JPEG copied into a new RGB
      picture), run by passing shared=False to the same decoder
  (b) model: engine.predict on prepared views, batched
  (c) scan: the real pipeline (glass_cli.scan.local.scan), for each engine, pool kind
      (threads, processes), worker count and decode place; "previous" is today's pipeline
      with the previous decode path
  (d) naive: the paper reference's way: full PIL decode, eager torch, batch 1, no
      channels_last, sequential
and prints images/s, the bound 1 / (1/a + 1/b) (decode and model share the same cores),
scan / bound, scan / naive, scan / previous scan, and peak RSS. The model is a random-init
GLASS of the requested backbone: speed does not depend on the weights.

``--scaling`` runs only the preparation (a model that answers at once), for 1, 2, 4, ...
workers up to the core count, threads and processes: how far each pool scales.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_corpus(folder: Path, n: int, megapixels: float, distinct: int = 8) -> list[Path]:
    """n JPEGs of about `megapixels` MP: `distinct` generated photos-like images (smooth
    gradients, texture and sensor-like noise, q92), the rest hard links to them."""
    folder.mkdir(parents=True, exist_ok=True)
    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    rng = np.random.default_rng(0)
    sources = []
    for i in range(min(distinct, n)):
        p = folder / f"src{i:03d}.jpg"
        if not p.exists():
            small = rng.integers(0, 256, (h // 64 + 1, w // 64 + 1, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
            arr = np.asarray(img).astype(np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(p, quality=92)
        sources.append(p)
    files = list(sources)
    for i in range(len(sources), n):
        p = folder / f"img{i:05d}.jpg"
        if not p.exists():
            os.link(sources[i % len(sources)], p)
        files.append(p)
    return files[:n]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), for RSS that includes worker processes."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                kids = [int(x) for x in task.read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            found += kids
            todo += kids
    return found


class RssSampler:
    """Samples the resident set size of this process and its children every 0.2 s (flatness
    over a long run; shared pages of forked workers are counted once per process, so the
    sum overstates a process pool a little)."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            total = 0
            for pid in [os.getpid(), *descendants(os.getpid())]:  # worker processes count too
                try:
                    with open(f"/proc/{pid}/statm") as f:
                        total += int(f.read().split()[1]) * page
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    pass
            self.samples.append(total / 2**20)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class InstantEngine:
    """Answers at once: scan's throughput is then its preparation's (``--scaling``)."""

    kind = "none"
    model_id = "instant"

    def __init__(self, config):
        self.config = config

    def predict(self, g, c):
        from glass_cli.inference.engines import Prediction

        k = None if c is None else c.shape[1]
        return Prediction(np.zeros(len(g)), None if k is None else np.full((len(g), k), 1.0 / k))


def previous_decode_path():
    """A context in which prepare_bytes decodes as before the shared-buffer change."""
    import contextlib

    import glass_cli.preprocess.prepare as prepare_module
    from glass_cli.io.image import decode_image

    @contextlib.contextmanager
    def patched():
        prepare_module.decode_image = lambda *a, **k: decode_image(*a, **{**k, "shared": False})
        try:
            yield
        finally:
            prepare_module.decode_image = decode_image

    return patched()


def scaling(files, config, cores: int) -> None:
    from glass_cli.scan.local import scan
    from glass_cli.scan.settings import ScanSettings

    counts = sorted({1, *[2**i for i in range(1, 8) if 2**i <= cores], cores})
    engine = InstantEngine(config)
    n = len(files)
    print(f"\npreparation only (instant model), {n} files, {cores} cores")
    print(f"{'workers':>8s} {'threads img/s':>14s} {'x1':>6s} {'processes img/s':>16s} {'x1':>6s}")
    base: dict[str, float] = {}
    for w in counts:
        row = []
        for pool in ("thread", "process"):
            rate = timed(lambda: sum(1 for _ in scan(files, engine, ScanSettings(batch_size=8, workers=w, pool=pool))), n)
            base.setdefault(pool, rate)
            row += [rate, rate / base[pool]]
        print(f"{w:8d} {row[0]:14.2f} {row[1]:6.2f} {row[2]:16.2f} {row[3]:6.2f}")


def timed(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, help="scan these JPEGs instead of generated ones")
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to try")
    ap.add_argument("--only", choices=["all", "scan"], default="all", help="'scan': skip a, b, d (long RSS runs)")
    ap.add_argument("--engines", default="torch,onnx", help="comma-separated: torch, onnx, onnx-spin (ONNX Runtime's threads busy-waiting between calls, its own default)")
    ap.add_argument("--pools", default="thread,process", help="comma-separated: thread, process")
    ap.add_argument("--decode", default="cpu", help="comma-separated: cpu, gpu (gpu: torch engine on CUDA)")
    ap.add_argument("--scaling", action="store_true", help="only the preparation, by worker count (threads vs processes)")
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus")
    args = ap.parse_args()

    import torch

    from glass_cli.inference.engines import TorchEngine
    from glass_cli.models import new_model
    from glass_cli.preprocess.prepare import prepare_file
    from glass_cli.preprocess.views import collate
    from glass_cli.scan.local import scan
    from glass_cli.scan.settings import ScanSettings

    tmp = None
    if args.folder:
        files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))[: args.files]
    else:
        tmp = Path(tempfile.mkdtemp(prefix="glass-bench-"))
        t = time.perf_counter()
        files = make_corpus(tmp, args.files, args.megapixels)
        print(f"corpus: {len(files)} JPEGs of {args.megapixels:g} MP in {time.perf_counter() - t:.0f} s ({tmp})")
    n = len(files)
    from glass_cli.inference.engines import OnnxEngine
    from glass_cli.inference.export import export

    torch.manual_seed(0)
    model, config = new_model("glass", args.backbone, num_crops=args.k, crop_size=args.size)
    model.eval()
    if args.scaling:
        scaling(files, config, os.cpu_count() or 1)
        if tmp and not args.keep:
            shutil.rmtree(tmp)
        return
    onnx_dir = Path(tempfile.mkdtemp(prefix="glass-bench-onnx-"))
    export((model, config), onnx_dir / "model.onnx")
    wanted = args.engines.split(",")
    engines = {}
    if "torch" in wanted:
        engines["torch"] = TorchEngine(model, config, "cpu")
    if "onnx" in wanted:
        engines["onnx"] = OnnxEngine(onnx_dir / "model.onnx", "cpu")
    if "onnx-spin" in wanted:
        engines["onnx-spin"] = OnnxEngine(onnx_dir / "model.onnx", "cpu", spinning=True)
    print(f"model: {config.describe()}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    rows: list[tuple[str, float]] = []
    bounds: dict[str, float] = {}

    if args.only == "all":
        with previous_decode_path():
            a_prev = timed(lambda: [prepare_file(p, config, max_pixels=250_000_000) for p in files], n)
        rows.append(("(a) decode + views, 1 thread, previous", a_prev))
        views = []
        a = timed(lambda: views.extend(prepare_file(p, config, max_pixels=250_000_000).views for p in files), n)
        rows.append(("(a) decode + views, 1 thread", a))
        batches = [collate(views[i : i + args.batch_size]) for i in range(0, n, args.batch_size)]
        del views
        for name, eng in engines.items():
            eng.predict(*batches[0])  # warm-up
            b = timed(lambda: [eng.predict(g, c) for g, c in batches], n)
            bounds[name] = 1 / (1 / a + 1 / b)
            rows += [(f"(b) model only, {name}", b), (f"    bound 1/(1/a+1/b), {name}", bounds[name])]
        del batches

        def naive():
            # The paper's reference way: Pillow's full decode, a full-quality resize of the whole
            # image, per-crop tensors, eager NCHW torch, one image per call.
            from glass_cli.preprocess.sampling import sample_crops

            ref = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
            ref.crop_chunk = 0
            mean = torch.tensor(config.global_norm.mean).view(3, 1, 1)
            std = torch.tensor(config.global_norm.std).view(3, 1, 1)

            def tensor(im):
                return (torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) - mean) / std

            s = config.crop_size
            for p in files:
                img = Image.open(p).convert("RGB")
                g = tensor(img.resize((s, s), Image.Resampling.BICUBIC))
                plan = sample_crops(img.width, img.height, config.num_crops, s, 0)
                c = torch.stack([tensor(img.crop(b)) for b in plan.boxes])
                with torch.no_grad():
                    ref(g[None], c[None])

        rows.append(("(d) naive loop: PIL, eager, batch 1", timed(naive, n)))

    peak = {}
    scans: dict[str, float] = {}
    previous: dict[str, float] = {}
    places = args.decode.split(",")
    if "gpu" in places and "torch" in engines and torch.cuda.is_available():
        engines["torch"] = TorchEngine(model, config, "cuda")
    for name, eng in engines.items():
        for w in [int(x) for x in args.workers.split(",")]:
            if args.only == "all":
                with previous_decode_path():
                    rate = timed(lambda: sum(1 for _ in scan(files, eng, ScanSettings(batch_size=args.batch_size, workers=w, pool="thread"))), n)
                previous[name] = max(previous.get(name, 0.0), rate)
                rows.append((f"(c) glass scan {name}, previous, {w} thread(s)", rate))
            for place in places:
                decode = "device" if place == "gpu" else "cpu"
                if decode == "device" and (name != "torch" or not torch.cuda.is_available()):
                    continue
                for pool in (["thread"] if decode == "device" else args.pools.split(",")):
                    with RssSampler() as rss:
                        rate = timed(lambda: sum(1 for _ in scan(files, eng, ScanSettings(batch_size=args.batch_size, workers=w, pool=pool, decode=decode))), n)
                    label = f"{name}, {'gpu decode' if decode == 'device' else {'thread': 'threads', 'process': 'processes'}[pool]}, {w}"
                    peak[label] = rss.samples
                    scans[name] = max(scans.get(name, 0.0), rate)
                    rows.append((f"(c) glass scan {label}", rate))
    shutil.rmtree(onnx_dir)

    print(f"\n{'measure':42s} {'img/s':>8s}")
    for name, rate in rows:
        print(f"{name:42s} {rate:8.2f}")
    naive_rate = dict(rows).get("(d) naive loop: PIL, eager, batch 1")
    named = dict(rows)
    a_prev, a_now = named.get("(a) decode + views, 1 thread, previous"), named.get("(a) decode + views, 1 thread")
    if a_prev and a_now:
        print(f"decode + views, 1 thread: {a_now / a_prev:.2f}x the previous path")
    for name, rate in scans.items():
        if name in bounds and naive_rate:
            extra = f", best scan / previous scan = {rate / previous[name]:.2f}" if name in previous else ""
            print(f"{name}: best scan / bound = {rate / bounds[name]:.2f}, best scan / naive = {rate / naive_rate:.2f}{extra}")
    for label, samples in peak.items():
        if samples:
            q = [samples[max(0, int(len(samples) * f) - 1)] for f in (0.1, 0.5, 1.0)]
            print(f"RSS {label} worker(s): {q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f} MiB at 10/50/100% of the run, "
                  f"peak {max(samples):.0f} MiB")
    print(f"process peak RSS (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if tmp and not args.keep:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
