"""The paper's "standard transfer learning" baseline: the resized image alone."""

from __future__ import annotations

import torch
import torch.nn as nn

from glass_cli.config import ModelConfig


class BaselineModel(nn.Module):
    """forward(global [B,3,S,S], crops=None) -> (logits [B,2], None). Crops are ignored, so
    the baseline drops into every place GLASS goes."""

    def __init__(self, config: ModelConfig, net: nn.Module):
        super().__init__()
        self.config = config
        self.global_net = net
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(net.num_features, 2))

    def forward(self, global_view: torch.Tensor, crops: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.head(self.global_net(global_view)), None
