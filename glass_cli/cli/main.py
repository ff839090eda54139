"""The `glass` Typer app: the version flag, and every command registered from its module
(scan, export, train, tune, eval, cv). Commands parse options, make one library call and
render; library modules are imported inside them, so that `glass --help` does not pay for
torch and timm.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from glass_cli import __version__

app = typer.Typer(
    name="glass",
    help="Tell which images were made by generative AI (GLASS: global view + native-resolution crops).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"glass {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """glass: a forensic scanner for AI-generated images.

    [bold]Examples[/bold]

      glass scan ./photos --threshold 0.7

      glass scan a.jpg b.heic --weights model.safetensors --json results.json

      glass export --onnx --weights model.safetensors -o model.onnx
    """


def main() -> None:
    """Console-script entry point."""
    app(prog_name="glass")


# Each module registers its command on `app`; the order is the order of `glass --help`.
from glass_cli.cli import scan, export, train, tune, eval, cv  # noqa: E402, F401, I001

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
