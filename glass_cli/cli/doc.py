"""Markdown tables of a command's arguments and options, read from the command objects that
Typer builds (the same ones ``--help`` renders), for the README: ``cog -r README.md``
regenerates them and CI runs ``cog --check README.md``."""

from __future__ import annotations

import enum
import typing
from pathlib import Path

import typer

TYPE_METAVARS = {int: "N", float: "X", str: "TEXT", Path: "PATH", bool: ""}


def _bare(annotation):
    """int | None -> int; list[Path] -> Path."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (list, tuple) or (args and len(args) == 1):
        return _bare(args[0])
    return annotation


def _metavar(param) -> str:
    if param.metavar:
        return param.metavar
    kind = _bare(param.type_descriptor.annotation)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return "|".join(str(m.value) for m in kind)
    return TYPE_METAVARS.get(kind, getattr(kind, "__name__", str(kind)).upper())


def _default(param) -> str:
    default = param.default
    if param.is_flag and param.secondary_opts:
        return param.opts[0] if default else param.secondary_opts[0]
    if default is None or param.is_flag or param.show_default is False:
        return ""
    return str(default.value if isinstance(default, enum.Enum) else default)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("\\[", "[").replace("|", "\\|")


def options_table(name: str) -> str:
    """The markdown table (option, meaning) of ``glass NAME``: every argument and option in
    the order of ``glass NAME --help``, with its help text and its default."""
    from glass_cli.cli import app

    command = typer.main.get_command(app).commands[name]
    rows = ["| option | meaning |", "|---|---|"]
    for param in command.get_params(typer.Context(command, info_name=name)):
        if param.param_type_name == "argument":
            rows.append(f"| `{param.name.upper()}{'...' if param.nargs == -1 else ''}` | {_cell(param.help or '')} |")
            continue
        if param.hidden or not param.expose_value:
            continue
        names = ", ".join(param.opts) + "".join(f" / {o}" for o in param.secondary_opts)
        option = names if param.is_flag else f"{names} {_metavar(param)}"
        default = _default(param)
        rows.append(f"| `{_cell(option)}` | {_cell(param.help or '')}" + (f" Default: `{default}`." if default else "") + " |")
    return "\n".join(rows) + "\n"
