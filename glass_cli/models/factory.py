"""Build GLASS or the baseline from a ModelConfig, or start a new one from backbone names."""

from __future__ import annotations

import torch.nn as nn

from glass_cli.config import ModelConfig
from glass_cli.models.backbones import create_backbone, normalization_of
from glass_cli.models.baseline import BaselineModel
from glass_cli.models.glass import GlassModel


def build_model(config: ModelConfig) -> nn.Module:
    """The architecture ``config`` describes, randomly initialised (load weights after)."""
    if config.arch == "baseline":
        return BaselineModel(config, create_backbone(config.global_backbone))
    return GlassModel(config, create_backbone(config.global_backbone), create_backbone(config.local_backbone))


def new_model(
    arch: str = "glass",
    global_backbone: str = "tf_efficientnet_lite0",
    local_backbone: str | None = None,
    *,
    pretrained: bool = False,
    global_weights: str | None = None,
    local_weights: str | None = None,
    **options,
) -> tuple[nn.Module, ModelConfig]:
    """A fresh model plus its config, normalisation read from each backbone's timm config.

    ``pretrained`` loads ImageNet weights into both backbones (``backbones.create_backbone``);
    ``global_weights``/``local_weights`` name timm-format files to load instead.
    ``options`` are further ModelConfig fields (num_crops, crop_size, dropout, threshold...).
    """
    local_backbone = local_backbone or global_backbone
    g = create_backbone(global_backbone, pretrained=pretrained, weights=global_weights)
    config = ModelConfig(
        arch=arch,
        global_backbone=global_backbone,
        local_backbone=local_backbone,
        global_norm=normalization_of(g),
        **options,
    )
    if config.arch == "baseline":
        config = config.replace(local_backbone=global_backbone, local_norm=config.global_norm)
        return BaselineModel(config, g), config
    local = create_backbone(local_backbone, pretrained=pretrained, weights=local_weights)
    config = config.replace(local_norm=normalization_of(local))
    return GlassModel(config, g, local), config
