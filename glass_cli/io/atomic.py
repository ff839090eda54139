"""Atomic file writes: a temporary file in the target's folder, then one rename.

A reader (or a crash) sees either the old file or the complete new one, never half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _set_mode(f.fileno(), path)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _set_mode(fd: int, path: Path) -> None:
    """Give the new file the permissions a plain open() would: the old file's mode when
    replacing one, else 0o666 minus the umask (mkstemp alone makes every file 0o600)."""
    if not hasattr(os, "fchmod"):  # Windows: no POSIX modes to fix
        return
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.fchmod(fd, mode)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
