"""Training throughput of GLASS and the baseline on this machine: images per second for
each backbone and K, measured on full training steps (forward, backward, AdamW step)
over synthetic views, so decoding and augmentation are left out.

    .venv/bin/python bench/train_throughput.py
    .venv/bin/python bench/train_throughput.py --backbones tf_efficientnet_lite0 resnet50 --ks 2 4 8 --batch-size 16
    .venv/bin/python bench/train_throughput.py --precision fp32 bf16 --ks 4 --rounds 2

With several precisions each model is timed in each, alternating, and the table gives each
one's ratio to the first: bf16 is autocast to bfloat16, as the trainer's --amp on CUDA. On
the CPU the trainer runs fp32 only; bf16 there is measured to see whether it would pay
(bench/results/train-precision-cpu-2026-12-01.txt and -2026-12-06.txt: not for GLASS on this
project's CPU; the baseline gains 2x only at batch 32, where its fp32 step is itself slow).

Numbers are printed, never asserted. Run on an otherwise idle machine: other processes on
the same cores change them a lot.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time


def measure(backbone: str, k: int | None, batch: int, size: int, steps: int, warmup: int, device: str,
            precision: str = "auto") -> tuple[float, float, float]:
    """(images/s, seconds per step, CPU seconds of this process per step), medians over
    ``steps`` timed steps. CPU/wall near the thread count means the cores were this
    process's; well below it, something else was running on them."""
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
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if precision == "auto":
        precision = "bf16" if kind == "cuda" else "fp32"
    autocast = torch.autocast(kind, dtype=torch.bfloat16) if precision == "bf16" else None
    times, cpu = [], []
    for i in range(warmup + steps):
        start, start_cpu = time.perf_counter(), time.process_time()
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
            cpu.append(time.process_time() - start_cpu)
    step = statistics.median(times)
    del model, opt
    gc.collect()
    return batch / step, step, statistics.median(cpu)


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
    ap.add_argument("--precision", nargs="+", choices=["auto", "fp32", "bf16"], default=["auto"],
                    help="auto: bf16 autocast on CUDA, fp32 on the CPU (the trainer's defaults)")
    ap.add_argument("--rounds", type=int, default=1, help="with several precisions: alternate them this many times, keep each one's median")
    args = ap.parse_args()

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
    print(f"device: {where}; batch {args.batch_size}, S={args.crop_size}, median of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'backbone':<28} {'model':<10} {'precision':<9} {'img/s':>8} {'s/step':>8} {'ms/img':>7} {'ratio':>6} {'cpu/wall':>8}")
    for name in args.backbones:
        for k in [None, *args.ks]:
            runs: dict[str, list[float]] = {p: [] for p in args.precision}
            cpus: dict[str, list[float]] = {p: [] for p in args.precision}
            for _ in range(args.rounds if len(args.precision) > 1 else 1):
                for precision in args.precision:
                    _, step, cpu = measure(name, k, args.batch_size, args.crop_size, args.steps, args.warmup, device, precision)
                    runs[precision].append(step)
                    cpus[precision].append(cpu)
            label = "baseline" if k is None else f"GLASS K={k}"
            first = statistics.median(runs[args.precision[0]])
            for precision, steps in runs.items():
                step = statistics.median(steps)
                ratio = statistics.median(cpus[precision]) / step
                print(f"{name:<28} {label:<10} {precision:<9} {args.batch_size / step:>8.2f} {step:>8.3f} "
                      f"{1000 * step / args.batch_size:>7.1f} {first / step:>6.2f} {ratio:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
