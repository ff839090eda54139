"""Training throughput of GLASS and the baseline on this machine: images per second for
each backbone and K, measured on full training steps (forward, backward, AdamW step)
over synthetic views, so decoding and augmentation are left out.

    .venv/bin/python bench/train_throughput.py
    .venv/bin/python bench/train_throughput.py --backbones tf_efficientnet_lite0 resnet50 --ks 2 4 8 --batch-size 16

Numbers are printed, never asserted. Run on an otherwise idle machine: other processes on
the same cores change them a lot.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time


def measure(backbone: str, k: int | None, batch: int, size: int, steps: int, warmup: int, device: str) -> tuple[float, float]:
    """(images/s, seconds per step), median over ``steps`` timed steps."""
    import torch

    from glass_cli.models import new_model

    torch.manual_seed(0)
    arch = "baseline" if k is None else "glass"
    model, _ = new_model(arch, backbone, num_crops=k or 1, crop_size=size)
    model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    g = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    c = None if k is None else torch.randn(batch, k, 3, size, size, device=device)
    y = torch.randint(0, 2, (batch,), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else None
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        if autocast is not None:
            with autocast:
                logits, _ = model(g, c)
        else:
            logits, _ = model(g, c)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    del model, opt
    gc.collect()
    return batch / step, step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbones", nargs="+", default=["tf_efficientnet_lite0"])
    ap.add_argument("--ks", nargs="+", type=int, default=[2, 4, 8], help="K values for GLASS; the baseline is always measured too")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop-size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first step builds oneDNN/cuDNN kernels and is several times slower)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
    print(f"device: {where}; batch {args.batch_size}, S={args.crop_size}, median of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'backbone':<28} {'model':<10} {'img/s':>8} {'s/step':>8}")
    for name in args.backbones:
        for k in [None, *args.ks]:
            ips, step = measure(name, k, args.batch_size, args.crop_size, args.steps, args.warmup, device)
            label = "baseline" if k is None else f"GLASS K={k}"
            print(f"{name:<28} {label:<10} {ips:>8.2f} {step:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
