"""What the plain install leaves out, and the one-line error when a command needs it.

``pip install glass-cli`` is enough to scan: ONNX Runtime runs the shipped ONNX export of
the default model, and nothing imports torch. Training, tuning, cross-validation,
evaluation, export and ``scan --engine torch`` need the ``train`` extra (torch, timm,
Optuna, scikit-learn, matplotlib, onnx); ``dev`` holds it plus the test tools, and ``gpu``
adds the CUDA and cuDNN libraries that onnxruntime-gpu loads. ``ray`` (Ray Data, for ``glass
scan --ray``) and ``postgres`` (the PostgreSQL driver for ``glass tune --storage
postgresql://...``) are extras of their own.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from glass_cli.errors import GlassError

TRAIN_EXTRA = "train"
NEEDS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "timm", "sklearn", "matplotlib"),
    "tune": ("torch", "timm", "optuna", "sklearn", "matplotlib"),
    "cv": ("torch", "timm", "sklearn", "matplotlib"),
    "eval": ("torch", "timm", "sklearn"),
    "export": ("torch", "timm", "onnx", "onnxscript"),
    "torch engine": ("torch", "timm"),
    "scan --ray": ("ray", "pyarrow", "pandas"),
    "postgres": ("psycopg",),
}
"""The modules each part needs beyond the plain install (import names, not package names)."""

EXTRA_OF: dict[str, str] = {"scan --ray": "ray", "postgres": "postgres"}
"""Parts served by an extra other than ``train``."""

TRAIN_MODULES = frozenset(m for part, modules in NEEDS.items() if part not in EXTRA_OF for m in modules) | {"torchvision"}
"""Every module of the training extra: a command that meets one of them missing names the extra."""


class MissingExtra(GlassError):
    """A part of glass whose packages are not installed; one line naming the extra."""


def missing(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(part: str) -> None:
    """Raise MissingExtra when a module ``part`` needs (``NEEDS``) is not installed."""
    absent = missing(NEEDS[part])
    if absent:
        raise MissingExtra(missing_message(part, absent))


def missing_message(part: str, absent: Iterable[str]) -> str:
    """The one line naming the extra that holds ``part``'s missing modules ``absent``."""
    extra = EXTRA_OF.get(part, TRAIN_EXTRA)
    what = {"torch engine": "scanning with the torch engine (--engine torch, --decode gpu)", "postgres": "a postgresql:// study storage"}.get(part, f"glass {part}")
    name = "training" if extra == TRAIN_EXTRA else extra
    return (f"{what} needs the {name} extra, which this install lacks ({', '.join(absent)} not found): "
            f"pip install 'glass-cli[{extra}]' (in a checkout: pip install -e '.[{extra}]')")
