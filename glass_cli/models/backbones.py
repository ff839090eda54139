"""timm backbones: any timm model name, classifier removed, pooled features out."""

from __future__ import annotations

import torch.nn as nn

from ..config import Normalization


class BackboneError(ValueError):
    """A backbone name timm does not know, or weights that cannot be had."""


def create_backbone(name: str) -> nn.Module:
    """A timm model with ``num_classes=0`` (pooled embedding of size ``num_features``),
    randomly initialised. Pretrained weights are loaded by the caller (training) or come from
    a glass checkpoint (scan)."""
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('.')[0][:12]}*")[:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise BackboneError(f"timm has no model named {name!r}{hint}")
    return timm.create_model(name, pretrained=False, num_classes=0)


def normalization_of(backbone: nn.Module) -> Normalization:
    """The backbone's own pretrained preprocessing, as timm resolves it."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=backbone)
    return Normalization(
        mean=tuple(float(x) for x in cfg["mean"]),
        std=tuple(float(x) for x in cfg["std"]),
        interpolation=str(cfg.get("interpolation", "bicubic")),
    )
