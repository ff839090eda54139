"""Every error glass raises on purpose, and every exit code it returns.

Each error class of the library derives from ``GlassError`` and carries the exit code the
command line gives it (``exit_code``), so the CLI maps an error by its type alone: a
``GlassError`` prints its one-line message and exits with its code; anything else is a bug.
The classes live beside the code that raises them (``ScanError`` here because both the scan
and its outputs raise it).

Exit codes mean one thing each (the README's "Exit codes" lists them):
"""

from __future__ import annotations

EXIT_CLEAN = 0
"""Done: for scan, every file scanned and none flagged or uncertain."""
EXIT_FLAGGED = 1
"""scan: at least one file flagged as AI-generated or in the uncertain band."""
EXIT_USAGE = 2
"""A usage or fatal error (bad arguments, no model, CUDA asked for but absent)."""
EXIT_UNREADABLE = 3
"""scan, eval, cv: nothing flagged, but some files could not be read: they have no verdict."""
EXIT_PARITY = 4
"""export: ONNX Runtime disagrees with torch beyond the tolerance; nothing was written."""
EXIT_NO_RESULT = 5
"""tune: the study ended without a finished trial, or gave up after repeated failures."""
EXIT_INTERRUPTED = 130
"""Interrupted (128 + SIGINT), as shells report it."""


def one_line(exc: BaseException, limit: int = 300, *, name: bool = False) -> str:
    """An exception's message squeezed onto one line of at most ``limit`` characters (ONNX
    Runtime, the exporter and Ray write essays); ``name``: led by the exception's type, for
    errors glass did not raise on purpose."""
    text = " ".join(str(exc).split())
    if name or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GlassError(Exception):
    """An error glass raises on purpose: its message is one line for people, naming the file
    or option at fault; ``exit_code`` is what ``glass`` exits with when it ends a command."""

    exit_code: int = EXIT_USAGE


class ScanError(GlassError):
    """A scan that cannot start (bad settings, an output inside a scanned folder)."""
