"""What the plain install leaves out, and the one-line error when a command needs it.

``pip install glass-cli`` is enough to scan: ONNX Runtime runs the shipped ONNX export of
the default model, and nothing imports torch. Training, tuning, cross-validation,
evaluation, export and ``scan --engine torch`` need the ``train`` extra (torch, timm,
Optuna, scikit-learn, matplotlib, onnx); ``dev`` holds it plus the test tools, and ``gpu``
adds the CUDA and cuDNN libraries that onnxruntime-gpu loads.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

TRAIN_EXTRA = "train"
NEEDS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "timm", "sklearn", "matplotlib"),
    "tune": ("torch", "timm", "optuna", "sklearn", "matplotlib"),
    "cv": ("torch", "timm", "sklearn", "matplotlib"),
    "eval": ("torch", "timm", "sklearn"),
    "export": ("torch", "timm", "onnx", "onnxscript"),
    "torch engine": ("torch", "timm"),
}
"""The modules each part needs beyond the plain install (import names, not package names)."""

TRAIN_MODULES = frozenset(m for modules in NEEDS.values() for m in modules) | {"torchvision"}
"""Every module of the training extra: a command that meets one of them missing names the extra."""


class MissingExtra(Exception):
    """A part of glass whose packages are not installed; one line naming the extra."""


def missing(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(part: str) -> None:
    """Raise MissingExtra when a module ``part`` needs (``NEEDS``) is not installed."""
    absent = missing(NEEDS[part])
    if absent:
        what = "scanning with --engine torch" if part == "torch engine" else f"glass {part}"
        raise MissingExtra(
            f"{what} needs the training extra, which this install lacks ({', '.join(absent)} not found): "
            f"pip install 'glass-cli[{TRAIN_EXTRA}]' (in a checkout: pip install -e '.[{TRAIN_EXTRA}]')"
        )
