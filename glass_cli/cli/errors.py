"""One place that turns what the library raises into one line on stderr and an exit code.

Every command runs its library call inside ``reported(debug, interrupted=...)``:

- a ``GlassError`` (every error the library raises on purpose) prints ``glass: error:
  REASON`` and exits with the code the error carries (``glass_cli.errors``);
- a missing module of the training extra, an OSError or a ValueError from below (a bad
  option value) is one line too, exit 2;
- Ctrl-C prints the command's hint (how to continue) and exits 130;
- anything else is a bug: one line naming it and asking for --debug, exit 2;
- with ``--debug`` every error is re-raised with its traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from glass_cli.errors import EXIT_INTERRUPTED, EXIT_USAGE, GlassError

err = Console(stderr=True, highlight=False)

def needs(part: str, debug: bool = False) -> None:
    """Stop with one line naming the extra when ``part`` (a key of ``extras.NEEDS``) lacks a package."""
    from glass_cli import extras

    with reported(debug):
        extras.require(part)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``glass: error: MESSAGE`` on stderr and return the Exit to raise. The message is
    plain text: brackets in it (pip extras, paths) are printed, not read as markup."""
    err.print(f"[bold red]glass: error:[/bold red] {escape(message)}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def classify(exc: BaseException) -> tuple[str, int] | None:
    """(one-line message, exit code) for an error the library raises on purpose; None for a bug."""
    if isinstance(exc, GlassError):
        return str(exc), exc.exit_code
    from glass_cli.extras import TRAIN_EXTRA, TRAIN_MODULES

    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in TRAIN_MODULES:

        return (f"this needs the training extra, which this install lacks ({exc.name} not found): "
                f"pip install 'glass-cli[{TRAIN_EXTRA}]'"), EXIT_USAGE
    if isinstance(exc, OSError):
        if exc.filename:
            return f"{exc.filename}: {exc.strerror or exc}", EXIT_USAGE
        return str(exc), EXIT_USAGE
    if isinstance(exc, ValueError):
        return str(exc), EXIT_USAGE
    return None


@contextmanager
def reported(debug: bool = False, *, interrupted: str | Callable[[], str] = "interrupted") -> Iterator[None]:
    """Run a command's library call; map what it raises as the module docstring says.
    ``interrupted``: the Ctrl-C line (or a function giving it, for counts known only then)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors: Typer reports them
        raise
    except KeyboardInterrupt:
        raise fail(interrupted() if callable(interrupted) else interrupted, EXIT_INTERRUPTED) from None
    except Exception as exc:
        if debug:
            raise
        known = classify(exc)
        if known is not None:
            raise fail(*known) from None
        raise fail(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)") from None
