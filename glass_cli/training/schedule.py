"""Optimiser and learning-rate schedule of a run.

For GLASS, AdamW gets three parameter groups: the global backbone (lr_global, wd_global),
the local backbone (lr_local, wd_local) and attention + head (lr_atten_class, no weight
decay). The baseline has one group with lr_global and wd_global. Every group follows the
same shape: a linear warm-up over ``warmup_epochs``, then a cosine down to ``min_lr``.
"""

from __future__ import annotations

import math

from glass_cli.config import TrainConfig


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 down to ``floor``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    t = min(max(step - warmup, 0) / span, 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def param_groups(model, config: TrainConfig) -> list[dict]:
    """AdamW's parameter groups for ``model``, each named (``global``, ``local``, ``atten_class``)."""
    if config.arch == "baseline":
        return [{"params": list(model.parameters()), "lr": config.lr_global, "weight_decay": config.wd_global, "name": "global"}]
    backbone_ids = {id(p) for p in model.global_net.parameters()} | {id(p) for p in model.local_net.parameters()}
    rest = [p for p in model.parameters() if id(p) not in backbone_ids]
    return [
        {"params": list(model.global_net.parameters()), "lr": config.lr_global, "weight_decay": config.wd_global, "name": "global"},
        {"params": list(model.local_net.parameters()), "lr": config.lr_local, "weight_decay": config.wd_local, "name": "local"},
        {"params": rest, "lr": config.lr_atten_class, "weight_decay": 0.0, "name": "atten_class"},
    ]


def build_optimizer(model, config: TrainConfig):
    import torch

    return torch.optim.AdamW(param_groups(model, config))


def build_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    """A per-step LambdaLR over ``config.epochs`` epochs: each group's factor floors at
    ``min_lr`` over its own base rate."""
    import torch

    total = steps_per_epoch * config.epochs
    warmup = round(config.warmup_epochs * steps_per_epoch)
    lambdas = [
        (lambda step, base=g["lr"]: lr_factor(step, total, warmup, min(config.min_lr / base, 1.0)))
        for g in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def group_rates(optimizer) -> dict[str, float]:
    """Each parameter group's current learning rate, by group name."""
    return {g.get("name", str(i)): float(g["lr"]) for i, g in enumerate(optimizer.param_groups)}
