"""Finding the files to scan, and keeping scan's outputs out of the scanned folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from glass_cli.io.image import image_extensions


@dataclass
class WalkError:
    """Something found while walking that cannot be scanned, with a one-line reason."""

    path: str
    reason: str


def iter_files(paths: Iterable[str | os.PathLike], recursive: bool = True) -> Iterator[Path | WalkError]:
    """Image files under ``paths`` in a stable order (names sorted within each folder).

    Files named directly are always included, whatever their extension; inside folders only
    extensions some Pillow plugin opens are taken. Symlinked folders are followed, each real
    folder once, so a link back up the tree cannot loop. Unreadable folders, and folders
    whose name looks like an image file, come out as WalkErrors (the latter are still
    descended into when ``recursive``).
    """
    exts = image_extensions()
    seen: set[str] = set()

    def walk(folder: Path) -> Iterator[Path | WalkError]:
        real = os.path.realpath(folder)
        if real in seen:
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield WalkError(str(folder), f"cannot list folder ({exc.strerror or exc})")
            return
        for entry in entries:
            p = Path(entry.path)
            named_like_image = p.suffix.lower() in exts
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                if named_like_image:
                    yield WalkError(str(p), "is a directory, not an image file")
                if recursive:
                    yield from walk(p)
            elif named_like_image:
                yield p

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from walk(p)
        else:
            yield p


def scanned_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    return [Path(os.path.realpath(p)) for p in paths if Path(p).is_dir()]


def inside_scanned_folder(output: str | os.PathLike, paths: Iterable[str | os.PathLike]) -> Path | None:
    """The scanned folder that ``output`` would land in, or None ('-' means stdout)."""
    if str(output) == "-":
        return None
    target = Path(os.path.realpath(Path(output).absolute()))
    for folder in scanned_folders(paths):
        if target == folder or folder in target.parents:
            return folder
    return None


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' (1-based I) -> (I, N)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects I/N such as 2/8, got {text!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard I/N needs 1 <= I <= N, got {text!r}")
    return i, n


def in_shard(path: str | os.PathLike, shard: tuple[int, int]) -> bool:
    """Whether ``path`` (as walked) belongs to shard I of N: a stable hash of the path, so N
    machines running the same command each take a disjoint share and together take all."""
    import hashlib

    i, n = shard
    digest = hashlib.blake2b(os.fsencode(path), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n == i - 1


def shard_files(items: Iterable[Path | WalkError], shard: tuple[int, int] | None) -> Iterator[Path | WalkError]:
    for item in items:
        if shard is None or in_shard(item.path if isinstance(item, WalkError) else item, shard):
            yield item
