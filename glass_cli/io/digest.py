"""Hashes that name things: a file's SHA-256 and the short model id built from it."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def named(path: str | os.PathLike) -> dict[str, str | None]:
    """A file as a record that travels to other machines: its name and SHA-256 (None when it
    cannot be read here), never the folders of the machine that wrote it."""
    try:
        sha = file_sha256(path)
    except OSError:
        sha = None
    return {"name": os.path.basename(os.fspath(path)), "sha256": sha}


def named_all(paths) -> list[dict[str, str | None]] | dict[str, str | None] | None:
    """``named`` of one path or of each of several (data given as one manifest or many)."""
    if paths is None:
        return None
    if isinstance(paths, (list, tuple)):
        return [named(p) for p in paths]
    return named(paths)


def portable(config: dict) -> dict:
    """A model config as records show it: a calibration written by an older glass named its
    data, record and source model by absolute paths of the machine that made it; those are
    shown by file name alone (``named`` is what calibrations write now)."""
    calibration = config.get("calibration")
    if not isinstance(calibration, dict):
        return config
    fixed = {k: os.path.basename(v) if k in ("data", "source", "cv") and isinstance(v, str) and os.path.isabs(v) else v
             for k, v in calibration.items()}
    return {**config, "calibration": fixed}


def model_id(sha256: str) -> str:
    """The short id that names exact weights in every record: 'sha256:' + 16 hex digits."""
    return "sha256:" + sha256[:16]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)
