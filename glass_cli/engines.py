"""Inference engines: prepared views in, P(AI) and attention weights out.

Engines never decode files and never build views; they receive the numpy batches that
``views.collate`` makes. Every engine has the same small interface:

    engine.predict(global_batch, crops_batch) -> (p_ai [B], attention [B, K] or None)
    engine.device        where it runs, in words ("cpu", "cuda:0 (NVIDIA H100)")
    engine.config        the ModelConfig it serves
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .config import ModelConfig


class EngineError(Exception):
    """The engine cannot run as asked (e.g. CUDA requested but absent); one-line reason."""


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise EngineError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


@dataclass
class Prediction:
    p_ai: np.ndarray
    """float [B]"""
    attention: np.ndarray | None
    """float [B, K], rows sum to 1; None for the baseline."""


class TorchEngine:
    """Eager PyTorch in fp32 under inference_mode, channels_last, on CPU or one GPU."""

    def __init__(
        self, model, config: ModelConfig, device: str = "auto", threads: int | None = None, model_id: str | None = None
    ):
        import torch

        self.model_id = model_id or config.describe()
        """Names the exact weights in every result record (sha256 prefix of the weights file)."""
        self.device_name = resolve_device(device)
        if threads is None and self.device_name == "cpu":
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.config = config
        self.model = model.to(self.device_name).eval().to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", model_id: str | None = None) -> TorchEngine:
        from . import checkpoint

        model, config = checkpoint.load(path)
        return cls(model, config, device, model_id=model_id or checkpoint.model_id(path))

    @property
    def device(self) -> str:
        if self.device_name.startswith("cuda"):
            return f"{self.device_name} ({self.torch.cuda.get_device_name(self.device_name)})"
        return "cpu"

    def _tensor(self, array: np.ndarray):
        t = self.torch.from_numpy(array).to(self.device_name, non_blocking=True)
        if t.dim() == 4:
            t = t.contiguous(memory_format=self.torch.channels_last)
        return t

    def predict(self, global_batch: np.ndarray, crops_batch: np.ndarray | None) -> Prediction:
        torch = self.torch
        with torch.inference_mode():
            g = self._tensor(global_batch)
            c = self._tensor(crops_batch) if crops_batch is not None else None
            logits, attn = self.model(g, c)
            p = torch.softmax(logits.float(), dim=1)[:, 1]
            return Prediction(
                p.cpu().numpy().astype(np.float64),
                None if attn is None else attn.float().cpu().numpy().astype(np.float64),
            )
