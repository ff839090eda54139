"""GLASS and its baseline as torch modules, and the factory that builds either from a config."""

from .factory import build_model, new_model

__all__ = ["build_model", "new_model"]
