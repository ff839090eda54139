"""The `glass` Typer app that every command registers on: its version flag, the process
settings the command line makes for itself, and the command class that gives options
conventional metavars. ``cli.main`` imports the commands (scan, export, train, tune, eval,
cv) so they register, in the order of `glass --help`.
"""

from __future__ import annotations

import warnings
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


def configure_process() -> None:
    """The process-wide settings the ``glass`` command makes for itself, and only it: the
    library leaves its host process as it found it. Pillow's warnings about odd EXIF, ICC or
    palette blocks say nothing a scan's user can act on (a broken EXIF block is reported as
    a damage finding instead), so the command silences them."""
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


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
    configure_process()


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
