"""The `glass` Typer app that every command registers on: its version flag, the process
settings the command line makes for itself, the command and group classes that give options
conventional metavars, and the one style of every error: a usage mistake that Click finds
(an out-of-range value, a missing argument, an unknown option) is one line, ``glass:
error: ...``, exactly like the errors the library raises (``cli.errors``). ``cli.main``
imports the commands (scan, export, train, tune, eval, cv) so they register, in the order
of `glass --help`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated

import typer
import typer.core
import typer.models

from glass_cli import __version__


class _Metavars:
    """Conventional metavars for a command's or group's options: options declared without one
    show TEXT, N, X, PATH or their choices (Typer would print ``<str>``, ``<list[Path]>``),
    flags (and --help, --version) show none, and the usage line names arguments as people
    write them (``PATHS...``, ``DATA``) rather than in Typer's braces."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._conventional(self.params)

    def get_params(self, ctx):
        params = super().get_params(ctx)
        self._conventional(params)  # Typer adds some (shell completion) only here
        return params

    @staticmethod
    def _conventional(params) -> None:
        for param in params:
            _default_in_help(param)
            if param.metavar is not None:
                continue
            descriptor = getattr(param, "type_descriptor", None)
            metavar = _metavar(descriptor.annotation) if descriptor is not None else None
            if isinstance(param, typer.core.TyperArgument):
                metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
                param.display_type_rich = _no_type  # the name already says it; no <list[Path]>
            elif getattr(param, "is_flag", False):
                metavar = ""
                param.display_type_rich = _no_type
            param.metavar = metavar

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
            option.display_type_rich = _no_type
        return option


def _default_in_help(param) -> None:
    """One default style: a default Typer would show as ``[default: X]`` is written at the end
    of the help text as ``Default: X.``, as the options that describe their default do."""
    if isinstance(param, typer.core.TyperArgument) or param.show_default is False or param.default is None:
        return
    if param.is_flag:
        if not param.secondary_opts:
            return
        shown = param.opts[0] if param.default else param.secondary_opts[0]
    else:
        shown = getattr(param.default, "value", param.default)
    if "Default:" not in (param.help or ""):
        param.help = f"{param.help or ''} Default: {shown}.".strip()
    param.show_default = False


class GlassGroup(_Metavars, typer.core.TyperGroup):
    """The top-level group: runs a command and turns Click's usage errors into one line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # Click's usage errors (bad value, missing argument, unknown option)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(f"glass: error: {' '.join(exc.format_message().split())}{hint}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            typer.echo("glass: error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=GlassGroup,
    name="glass",
    help="Tell which images were made by generative AI (a resize-only model by default; GLASS, with native-resolution crops, by --weights glass).",
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


class GlassCommand(_Metavars, typer.core.TyperCommand):
    """A glass command: conventional metavars, and the usage line names arguments as people
    write them."""

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
