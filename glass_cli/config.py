"""The model's description: everything needed to rebuild it and to prepare its inputs.

A ``ModelConfig`` travels with every checkpoint (and, later, every ONNX export), so scan
never has to guess the architecture, the crop size or the normalisation a model was trained
with.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from . import __version__

Architecture = Literal["glass", "baseline"]
ARCHITECTURES: tuple[str, ...] = ("glass", "baseline")
CLASSES: tuple[str, str] = ("real", "ai")
"""Class order of the model's two logits: index 1 is P(AI-generated)."""


@dataclass(frozen=True)
class Normalization:
    """How a backbone wants its pixels: per-channel mean/std on [0, 1] values, and the
    resampling filter for resizing (timm's pretrained config)."""

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        return cls(
            mean=tuple(float(x) for x in d["mean"]),
            std=tuple(float(x) for x in d["std"]),
            interpolation=str(d.get("interpolation", "bicubic")),
        )


@dataclass(frozen=True)
class ModelConfig:
    arch: Architecture = "glass"
    global_backbone: str = "tf_efficientnet_lite0"
    local_backbone: str = "tf_efficientnet_lite0"
    num_crops: int = 4
    """K: native-resolution crops per image (unused by the baseline)."""
    crop_size: int = 224
    """S: side of the global view and of every local crop, in pixels."""
    dropout: float = 0.1
    attn_hidden: int = 128
    global_norm: Normalization = field(default_factory=Normalization)
    local_norm: Normalization = field(default_factory=Normalization)
    classes: tuple[str, str] = CLASSES
    threshold: float = 0.5
    """Decision threshold on P(AI) that scan uses unless told otherwise."""
    glass_version: str = __version__

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHITECTURES}")
        if self.num_crops < 1 or self.crop_size < 8:
            raise ValueError(f"need K >= 1 and S >= 8, got K={self.num_crops}, S={self.crop_size}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")
        if tuple(self.classes) != CLASSES:
            raise ValueError(f"class order must be {CLASSES}, got {tuple(self.classes)}")

    @property
    def uses_crops(self) -> bool:
        return self.arch == "glass"

    def describe(self) -> str:
        if self.arch == "baseline":
            return f"baseline {self.global_backbone} S={self.crop_size}"
        same = self.global_backbone == self.local_backbone
        nets = self.global_backbone if same else f"{self.global_backbone}+{self.local_backbone}"
        return f"glass {nets} K={self.num_crops} S={self.crop_size}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        kw = dict(d)
        for key in ("global_norm", "local_norm"):
            if key in kw:
                kw[key] = Normalization.from_dict(kw[key])
        if "classes" in kw:
            kw["classes"] = tuple(kw["classes"])
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)
