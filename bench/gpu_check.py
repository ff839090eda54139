"""GPU checks and timings for glass on one CUDA machine, in one short run.

    python bench/gpu_check.py --out results/        # needs a CUDA GPU

1. parity: the same files scanned on CPU (fp32), CUDA fp32 and CUDA bf16 (max |dP(AI)|);
2. the CLI: `glass scan --device cuda` exit code and the device it reports;
3. speed: model-only images/s for GLASS tf_efficientnet_lite0 K=4 in fp32 vs bf16, and the
   full scan pipeline on generated 12 MP JPEGs with several worker counts (threads and
   processes), and with --decode gpu (nvJPEG, views on the device), against the
   decode-only rate of the same files; then nvJPEG's pixels and the scores it leads to
   against the CPU decoder's;
4. training: `glass train` on CUDA with mixed precision for 2 epochs on generated data (loss
   must fall) and the same under torchrun (NCCL), plus bench/train_throughput.py.
Everything printed is also written to OUT/gpu_check.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LOG: list[str] = []


def say(*parts) -> None:
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    LOG.append(line)


def glass(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glass_cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160", **(env or {})})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--files", type=int, default=48)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import torch
    from PIL import Image
    from scan import make_corpus  # bench/scan.py

    from glass_cli.inference.engines import TorchEngine
    from glass_cli.models import checkpoint, new_model
    from glass_cli.preprocess.prepare import prepare_file
    from glass_cli.preprocess.views import collate
    from glass_cli.scan.local import scan
    from glass_cli.scan.settings import ScanSettings

    say("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0), "python", sys.version.split()[0])
    work = Path(tempfile.mkdtemp(prefix="glass-gpu-"))

    # 1. parity on small generated images with a tiny model
    rng = np.random.default_rng(0)
    imgs = work / "imgs"
    imgs.mkdir()
    for i, (w, h) in enumerate([(640, 480), (300, 500), (1024, 1024), (64, 40), (2000, 1500)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    torch.manual_seed(0)
    model, config = new_model("glass", "test_efficientnet", "test_resnet", num_crops=3, crop_size=32)
    ckpt = checkpoint.save(model.eval(), config, work / "tiny")
    scores = {}
    for name, device, precision in [("cpu", "cpu", "fp32"), ("cuda-fp32", "cuda", "fp32"), ("cuda-bf16", "cuda", "bf16")]:
        engine = TorchEngine.from_checkpoint(ckpt, device=device, precision=precision)
        scores[name] = np.array([r.p_ai for r in scan(sorted(imgs.iterdir()), engine, ScanSettings(batch_size=2))])
        say(f"parity {name:10s} device={engine.device}")
    say("parity max |dP| cuda-fp32 vs cpu:", float(np.abs(scores["cuda-fp32"] - scores["cpu"]).max()))
    say("parity max |dP| cuda-bf16 vs cpu:", float(np.abs(scores["cuda-bf16"] - scores["cpu"]).max()))

    # 2. CLI
    res = glass("scan", str(imgs), "--weights", str(ckpt), "--device", "cuda", "--json", str(work / "r.json"), "--all")
    doc = json.loads((work / "r.json").read_text())
    say("cli scan --device cuda: exit", res.returncode, "| device in JSON:", doc["device"], "| files", len(doc["files"]))
    say("cli summary:", res.stdout.strip().splitlines()[-2:])

    # 3. speed with a real-size model
    files = make_corpus(work / "jpegs", args.files, 12.0)
    torch.manual_seed(0)
    big, big_cfg = new_model("glass", "tf_efficientnet_lite0", num_crops=4, crop_size=224)
    t = time.perf_counter()
    views = [prepare_file(p, big_cfg, max_pixels=250_000_000).views for p in files]
    decode = len(files) / (time.perf_counter() - t)
    say(f"decode+views, 1 thread: {decode:.1f} img/s (12 MP JPEG)")
    for precision in ("fp32", "bf16"):
        engine = TorchEngine(big, big_cfg, "cuda", precision=precision)
        for bs in (16, 64):
            batches = [collate((views * 4)[i : i + bs]) for i in range(0, 4 * len(views), bs)]
            engine.predict(*batches[0])
            torch.cuda.synchronize()
            t = time.perf_counter()
            for g, c in batches:
                engine.predict(g, c)
            torch.cuda.synchronize()
            say(f"model only {precision} batch {bs}: {4 * len(views) / (time.perf_counter() - t):.1f} img/s")
    del views
    engine = TorchEngine(big, big_cfg, "cuda", precision="bf16")
    for workers in (1, 4, 8, 16):
        for pool in ("thread", "process"):
            t = time.perf_counter()
            n = sum(1 for _ in scan(files, engine, ScanSettings(batch_size=16, workers=workers, pool=pool)))
            say(f"full scan bf16, cpu decode, {workers:2d} {pool} workers: {n / (time.perf_counter() - t):.1f} img/s")
    for precision in ("fp32", "bf16"):
        engine = TorchEngine(big, big_cfg, "cuda", precision=precision)
        for workers in (4, 8, 16):
            for bs in (32, 64):
                t = time.perf_counter()
                n = sum(1 for _ in scan(files, engine, ScanSettings(batch_size=bs, workers=workers, decode="gpu")))
                torch.cuda.synchronize()
                say(f"full scan {precision}, gpu decode (nvJPEG), {workers:2d} workers, batch {bs}: "
                    f"{n / (time.perf_counter() - t):.1f} img/s")

    # 3b. the GPU decode path against the CPU one: pixels and scores
    from glass_cli.io.image import decode_image
    from glass_cli.scan.device import DeviceDecoder
    from glass_cli.scan.step import EncodedJpeg

    decoder = DeviceDecoder(big_cfg, "cuda")
    worst = 0
    for p in files[:8]:
        data = p.read_bytes()
        gpu = decoder.decode([EncodedJpeg(data, None, 0)])[0].permute(1, 2, 0).cpu().numpy().astype(int)
        cpu = np.asarray(decode_image(data)[0]).astype(int)
        worst = max(worst, int(np.abs(gpu - cpu).max()))
        say(f"nvJPEG vs libjpeg-turbo {p.name}: max |d| {int(np.abs(gpu - cpu).max())}, "
            f"share of values that differ {float((gpu != cpu).mean()):.4f}")
    engine = TorchEngine(big, big_cfg, "cuda", precision="fp32")
    on_cpu = np.array([r.p_ai for r in scan(files, engine, ScanSettings(batch_size=16, workers=8))])
    on_gpu = np.array([r.p_ai for r in scan(files, engine, ScanSettings(batch_size=16, workers=8, decode="gpu"))])
    say(f"scores, gpu decode vs cpu decode (same engine, fp32): max |dP| {float(np.abs(on_gpu - on_cpu).max()):.2e}")
    tiny_engine = TorchEngine.from_checkpoint(ckpt, device="cuda")
    a = [r.p_ai for r in scan(sorted(imgs.iterdir()), tiny_engine, ScanSettings(batch_size=2))]
    b = [r.p_ai for r in scan(sorted(imgs.iterdir()), tiny_engine, ScanSettings(batch_size=2, decode="gpu"))]
    say("PNG files through --decode gpu (they take the CPU path): identical scores", a == b)
    res = glass("scan", str(work / "jpegs"), "--weights", str(ckpt), "--decode", "gpu", "--json", str(work / "g.json"), "--all")
    say("cli scan --decode gpu: exit", res.returncode, res.stderr.strip().splitlines()[-1:] if res.returncode > 1 else "")

    # 4. training on CUDA
    from tests.conftest import make_images

    data = make_images(work / "train-data", per_class=32)
    tiny = ["--backbone", "test_efficientnet", "--crop-size", "32", "-k", "2", "--no-pretrained", "--batch-size", "8",
            "--lr-global", "1e-3", "--lr-local", "1e-3", "--lr-head", "1e-3", "--device", "cuda"]
    res = glass("train", str(data), "--name", "cuda", "--runs-dir", str(work / "runs"), "--epochs", "2", *tiny)
    say("glass train cuda amp: exit", res.returncode, res.stderr.strip().splitlines()[-1:] if res.returncode else "")
    metrics = (work / "runs" / "cuda" / "metrics.csv")
    if metrics.exists():
        say("metrics.csv:", metrics.read_text().strip().replace("\n", " | "))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "-m", "glass_cli", "train", str(data),
                "--name", "ddp", "--runs-dir", str(work / "runs"), "--epochs", "1", *tiny]
    res = subprocess.run(torchrun, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    say("torchrun nccl 1 process: exit", res.returncode, (res.stderr.strip().splitlines() or [""])[-1][:300])
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "train_throughput.py"), "--backbones", "tf_efficientnet_lite0",
                          "tf_efficientnet_lite2", "--ks", "4", "8", "--batch-size", "32", "--steps", "5", "--device", "cuda"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    say("train throughput (cuda):\n" + res.stdout.strip() + ("\n" + res.stderr[-500:] if res.returncode else ""))
    (args.out / "gpu_check.txt").write_text("\n".join(LOG) + "\n")


if __name__ == "__main__":
    main()
