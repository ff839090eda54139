"""The GLASS module: a global view and K native-resolution crops, attention-pooled."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from glass_cli.config import ModelConfig

NPR_GAIN = 8.0
"""Scale of the NPR residual fed to the local backbone. Measured on 40 training images of
train-v1..v3 after the Lite0 normalisation: the residual's standard deviation has a median
of about 0.1 (10th-90th percentile 0.03-0.17), against about 1 for the normalised pixels the
pretrained stem expects; 8 brings the two to the same order."""


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """Neighbouring-pixel relationships (NPR, Tan et al., CVPR 2024) of a batch [N, C, H, W]
    with even H and W: each pixel minus the top-left pixel of its 2 x 2 block, i.e. the image
    minus its nearest-neighbour down-then-up-sampled copy. Generators that upsample (every
    latent-diffusion decoder, most GANs) leave correlations inside such blocks that cameras
    do not; the residual removes the content that an ImageNet backbone would otherwise read."""
    anchors = F.interpolate(x[:, :, 0::2, 0::2], scale_factor=2.0, mode="nearest")
    return (x - anchors) * NPR_GAIN


def _exporting() -> bool:
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and getattr(compiler, "is_exporting", lambda: False)():
        return True
    return bool(torch.onnx.is_in_onnx_export())


class AttentionPool(nn.Module):
    """Non-gated attention MIL pooling: one score per crop, softmax over the K crops."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.score = nn.Sequential(
            nn.Linear(dim, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # feats [B, K, D] -> pooled [B, D], weights [B, K]
        weights = torch.softmax(self.score(feats).squeeze(-1), dim=1)
        pooled = torch.bmm(weights.unsqueeze(1), feats).squeeze(1)
        return pooled, weights


class GlassModel(nn.Module):
    """forward(global [B,3,S,S], crops [B,K,3,S,S]) -> (logits [B,2], attention [B,K]).

    The global and local backbones are separate networks with separate weights. K may differ
    between calls (the attention softmax runs over whatever K arrives).

    With ``config.aux_heads`` the model also holds ``aux_global`` (on the global embedding
    alone) and ``aux_local`` (on the attention-pooled crops), for deep supervision in
    training: ``forward(..., with_aux=True)`` adds their logits. Without it, forward is
    unchanged, so scan and export never see them.

    With ``config.local_input == "npr"`` the local backbone sees each crop's NPR residual
    (``npr_residual``) instead of its pixels; the views and the global branch are unchanged.
    """

    def __init__(self, config: ModelConfig, global_net: nn.Module, local_net: nn.Module):
        super().__init__()
        self.config = config
        self.global_net = global_net
        self.local_net = local_net
        dg, dl = global_net.num_features, local_net.num_features
        self.attention = AttentionPool(dl, config.attn_hidden, config.dropout)
        self.head = nn.Sequential(nn.LayerNorm(dg + dl), nn.Dropout(config.dropout), nn.Linear(dg + dl, 2))
        if config.aux_heads:
            self.aux_global = nn.Sequential(nn.LayerNorm(dg), nn.Dropout(config.dropout), nn.Linear(dg, 2))
            self.aux_local = nn.Sequential(nn.LayerNorm(dl), nn.Dropout(config.dropout), nn.Linear(dl, 2))
        self.crop_chunk = 16
        """Crops per local-backbone call in eager mode: bounds activation memory, and measured
        faster on CPU than one call over all B*K crops."""

    def embed_crops(self, crops: torch.Tensor) -> torch.Tensor:
        b, k = crops.shape[:2]
        flat = crops.flatten(0, 1)
        if self.config.local_input == "npr":
            flat = npr_residual(flat)
        if _exporting():
            feats = self.local_net(flat)
        else:
            flat = flat.contiguous(memory_format=torch.channels_last)
            parts = flat.split(self.crop_chunk) if self.crop_chunk else (flat,)
            feats = torch.cat([self.local_net(part) for part in parts]) if len(parts) > 1 else self.local_net(flat)
        return feats.reshape(b, k, -1)

    def forward(self, global_view: torch.Tensor, crops: torch.Tensor, with_aux: bool = False):
        """(logits, attention); with ``with_aux`` (models built with aux heads, training
        only) also (global-only logits, pooled-crops-only logits) as a third item."""
        g = self.global_net(global_view)
        local, weights = self.attention(self.embed_crops(crops))
        logits = self.head(torch.cat([g, local], dim=1))
        if not with_aux:
            return logits, weights
        if not self.config.aux_heads:
            raise ValueError("this GLASS model has no auxiliary heads (ModelConfig.aux_heads)")
        return logits, weights, (self.aux_global(g), self.aux_local(local))
