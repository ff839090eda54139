"""The `glass` Typer app: the version flag, and every command registered from its module
(scan, export, train, tune, eval, cv). Commands parse options, make one library call and
render; library modules are imported inside them, so that `glass --help` does not pay for
torch and timm.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.core
import typer.models

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


class GlassCommand(typer.core.TyperCommand):
    """A Typer command with conventional metavars: options declared without one show TEXT,
    N, X, PATH or their choices (Typer would print ``<str>``, ``<list[Path]>``), flags show
    none, and the usage line names arguments as people write them (``PATHS...``, ``DATA``)
    rather than in Typer's braces."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.metavar is not None:
                continue
            descriptor = getattr(param, "type_descriptor", None)
            metavar = _metavar(descriptor.annotation) if descriptor is not None else None
            if isinstance(param, typer.core.TyperArgument):
                metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
                param.display_type_rich = _no_type  # the name already says it; no <list[Path]>
            elif getattr(param, "is_flag", False):
                metavar = ""
            param.metavar = metavar

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                pieces.append(param.metavar if param.required else f"[{param.metavar}]")
        return pieces


def _no_type(ctx) -> None:
    return None


def _metavar(annotation) -> str | None:
    """The conventional metavar for an option's type: TEXT, N, X, PATH, an enum's choices;
    None keeps Typer's own (ranges, tuples)."""
    import types
    from enum import Enum
    from pathlib import Path
    from typing import Union, get_args, get_origin

    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next((a for a in get_args(annotation) if a is not type(None)), annotation)
    if get_origin(annotation) is list:
        inner = _metavar(get_args(annotation)[0])
        return f"{inner}..." if inner else None
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "|".join(str(m.value) for m in annotation)
    return {str: "TEXT", int: "N", float: "X", Path: "PATH"}.get(annotation)


# Each module registers its command on `app`; the order is the order of `glass --help`.
from glass_cli.cli import scan, export, train, tune, eval, cv  # noqa: E402, F401, I001

for _command in app.registered_commands:
    _command.cls = GlassCommand

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
