"""GPU checks of the issue-9 model variants, in one short run on a CUDA machine.

    python bench/gpu_variants.py --out results/

1. two crop scales: scan scores on CUDA (fp32, bf16) against the CPU, same files;
2. `glass train` on CUDA with mixed precision, --crop-scales 1,2 and --size-aug on
   generated images (exit code, loss per epoch);
3. training-step throughput (bf16 autocast, AdamW, batch 32, synthetic views) of
   EfficientNet-Lite0 GLASS variants against K=4 measured in the same run: K=2, K=8,
   two scales with K=2 and K=4 per scale, and the baseline.
Printed and written to OUT/gpu_variants.txt; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LOG: list[str] = []


def say(*parts) -> None:
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    LOG.append(line)


def step_rate(config_kw: dict, arch: str, batch: int, steps: int, warmup: int, device: str = "cuda") -> float:
    import torch

    from glass_cli.models import new_model

    torch.manual_seed(0)
    model, config = new_model(arch, "tf_efficientnet_lite0", **config_kw)
    model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    s = config.crop_size
    g = torch.randn(batch, 3, s, s, device=device).contiguous(memory_format=torch.channels_last)
    c = torch.randn(batch, config.crops_per_image, 3, s, s, device=device) if arch == "glass" else None
    y = torch.randint(0, 2, (batch,), device=device)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            logits, _ = model(g, c) if c is not None else model(g)
            loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    del model, opt
    if cuda:
        torch.cuda.empty_cache()
    return batch / times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the script's logic")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import torch
    from PIL import Image

    from glass_cli.inference.engines import TorchEngine
    from glass_cli.models import checkpoint, new_model
    from glass_cli.scan.local import scan
    from glass_cli.scan.settings import ScanSettings

    cuda = args.device.startswith("cuda")
    say("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if cuda else "(cpu dry run)")
    work = Path(tempfile.mkdtemp(prefix="glass-variants-"))
    rng = np.random.default_rng(0)
    imgs = work / "imgs"
    imgs.mkdir()
    for i, (w, h) in enumerate([(640, 480), (300, 500), (1024, 1024), (64, 40), (2000, 1500)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(imgs / f"{i}.png")

    # 1. parity of scores with two crop scales
    torch.manual_seed(0)
    model, config = new_model("glass", "test_efficientnet", num_crops=3, crop_size=32, crop_scales=(1, 2))
    ckpt = checkpoint.save(model.eval(), config, work / "heads")
    got = {}
    runs = [("cpu", "cpu", "fp32"), ("cuda-fp32", "cuda", "fp32"), ("cuda-bf16", "cuda", "bf16")] if cuda else [("cpu", "cpu", "fp32"), ("cuda-fp32", "cpu", "fp32")]
    for name, device, precision in runs:
        engine = TorchEngine.from_checkpoint(ckpt, device=device, precision=precision)
        results = list(scan(sorted(imgs.iterdir()), engine, ScanSettings(batch_size=2)))
        got[name] = (np.array([r.p_ai for r in results]), np.array([[c.weight for c in r.crops] for r in results]))
    for name in [n for n in ("cuda-fp32", "cuda-bf16") if n in got]:
        say(f"parity {name} vs cpu: max |dP| image {np.abs(got[name][0] - got['cpu'][0]).max():.2e}, "
            f"attention {np.abs(got[name][1] - got['cpu'][1]).max():.2e} ({got['cpu'][1].shape[1]} crops per image)")

    # 2. glass train on CUDA with the new options
    data = work / "data"
    for label, tint in (("real", (0, 2)), ("fake", (2, 0))):
        (data / label).mkdir(parents=True)
        for i in range(24):
            w, h = (int(x) for x in rng.integers(80, 200, size=2))
            px = rng.integers(0, 256, size=(h, w, 3)).astype(np.float32) * 0.3 + 90
            px[..., tint[0]] += 70
            px[..., tint[1]] -= 40
            Image.fromarray(np.clip(px, 0, 255).astype(np.uint8)).save(data / label / f"{i}.png")
    cmd = [sys.executable, "-m", "glass_cli", "train", str(data), "--name", "variants", "--runs-dir", str(work / "runs"),
           "--backbone", "test_efficientnet", "--crop-size", "32", "-k", "2", "--no-pretrained", "--epochs", "3",
           "--batch-size", "8", "--lr-global", "1e-3", "--lr-local", "1e-3", "--lr-head", "1e-3", "--device", args.device,
           "--crop-scales", "1,2", "--size-aug", "0.7", "--size-aug-min", "48", "--size-aug-max", "160"]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    metrics = (work / "runs" / "variants" / "metrics.csv")
    losses = [line.split(",")[1] for line in metrics.read_text().splitlines()[1:]] if metrics.is_file() else []
    say(f"glass train {args.device} amp --crop-scales 1,2 --size-aug 0.7: exit {run.returncode}, "
        f"train loss per epoch {losses}, {time.perf_counter() - t0:.1f} s", run.stderr.strip().splitlines()[-1:] if run.returncode else "")

    # 3. training-step throughput of the variants
    variants = [
        ("GLASS K=4 (reference)", "glass", dict(num_crops=4)),
        ("GLASS K=2", "glass", dict(num_crops=2)),
        ("GLASS K=8", "glass", dict(num_crops=8)),
        ("GLASS K=2 scales 1,2 (4 crops)", "glass", dict(num_crops=2, crop_scales=(1, 2))),
        ("GLASS K=4 scales 1,2 (8 crops)", "glass", dict(num_crops=4, crop_scales=(1, 2))),
        ("baseline", "baseline", dict()),
    ]
    rates = {}
    for name, arch, kw in variants:
        rates[name] = step_rate(kw, arch, args.batch, args.steps, warmup=3 if cuda else 0, device=args.device)
    ref = rates["GLASS K=4 (reference)"]
    for name, rate in rates.items():
        say(f"train step lite0 bf16 batch {args.batch}: {name:34s} {rate:7.1f} img/s  ({rate / ref:.2f}x K=4)")
    (args.out / "gpu_variants.txt").write_text("\n".join(LOG) + "\n")


if __name__ == "__main__":
    main()
