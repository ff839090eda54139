"""The glass command line: one module per command over the library, shared options and error handling."""

from glass_cli.cli.main import app, main

__all__ = ["app", "main"]
