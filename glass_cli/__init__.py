"""glass: tell which images were made by generative AI.

The package is a library first; ``glass_cli.cli`` is a thin command line over it.
Heavy dependencies (torch, timm) are imported by the modules that need them, never here,
so that ``glass --help`` stays fast.
"""

__version__ = "0.1.0"
