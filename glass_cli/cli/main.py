"""The `glass` command: the app with every command registered, and the console-script entry point.

Commands parse options, make one library call and render; library modules are imported
inside them, so that `glass --help` does not pay for torch and timm.
"""

from __future__ import annotations

import sys

from glass_cli.cli.app import GlassCommand, app

# Each module registers its command on `app` when imported; this order is `glass --help`'s.
# isort: off
from glass_cli.cli import scan, export, train, tune, eval, cv  # noqa: F401
# isort: on

for _command in app.registered_commands:
    _command.cls = GlassCommand


def main() -> None:
    """Console-script entry point."""
    app(prog_name="glass")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
