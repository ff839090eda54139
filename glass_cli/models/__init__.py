"""GLASS and its baseline as torch modules, the factory that builds either from a config, and
checkpoints (safetensors + JSON).

``glass_cli.models.checkpoint`` reads configs without torch, so the package does not import
the factory (and with it torch and timm) until ``build_model`` or ``new_model`` is asked for.
"""

from __future__ import annotations

__all__ = ["build_model", "new_model"]


def __getattr__(name: str):
    if name in __all__:
        from glass_cli.models import factory

        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
