"""The scan pipeline: walk -> load -> views -> engine -> verdict.

``scan`` is a generator of ``ScanResult``s, one per file, errors included, so callers (the
CLI, a notebook, a service) can stream, count or stop as they like. A file that cannot be
read or decoded becomes a result with ``verdict == "error"`` and a one-line reason; it never
stops the scan. Crops are placed with a seed taken from the file's SHA-256, so a file gets
the same score whatever its name, folder, batch or position.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .imageio import DEFAULT_MAX_PIXELS, LoadError, image_extensions, load_image
from .sampling import seed_from_digest
from .views import Views, build_views, collate

VERDICT_AI = "ai"
VERDICT_REAL = "real"
VERDICT_ERROR = "error"


class ScanError(Exception):
    """A scan that cannot start (bad arguments, output inside a scanned folder)."""


@dataclass
class CropScore:
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) in the oriented image's pixels."""
    weight: float
    """Attention weight; the K weights of a file sum to 1."""


@dataclass
class ScanResult:
    path: str
    verdict: str
    p_ai: float | None = None
    threshold: float | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    format: str | None = None
    sampling: str | None = None
    """'stratified' or 'fallback' (see sampling.py); None for the baseline and errors."""
    crops: list[CropScore] = field(default_factory=list)
    error: str | None = None
    index: int = -1
    """Position of the file in the walk order."""

    @property
    def flagged(self) -> bool:
        return self.verdict == VERDICT_AI

    def top_crops(self, n: int = 2) -> list[CropScore]:
        return sorted(self.crops, key=lambda c: c.weight, reverse=True)[:n]


def verdict(p_ai: float, threshold: float) -> str:
    """'ai' when P(AI) reaches the threshold, else 'real'."""
    return VERDICT_AI if p_ai >= threshold else VERDICT_REAL


# ---------------------------------------------------------------------------- walking


@dataclass
class WalkError:
    path: str
    reason: str


def iter_files(
    paths: Iterable[str | os.PathLike], recursive: bool = True
) -> Iterator[Path | WalkError]:
    """Image files under ``paths`` in a stable order (sorted per folder).

    Files named directly are always included, whatever their extension; inside folders only
    extensions some Pillow plugin opens are taken. Symlinked folders are followed once each
    (a link back up the tree is not a loop). Unreadable folders come out as WalkErrors.
    """
    exts = image_extensions()
    seen_dirs: set[str] = set()

    def walk(folder: Path) -> Iterator[Path | WalkError]:
        real = os.path.realpath(folder)
        if real in seen_dirs:
            return
        seen_dirs.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield WalkError(str(folder), f"cannot list folder ({exc.strerror or exc})")
            return
        for entry in entries:
            p = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                if recursive:
                    yield from walk(p)
                continue
            if p.suffix.lower() in exts:
                yield p

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from walk(p)
        else:
            yield p


def scanned_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    return [Path(os.path.realpath(p)) for p in paths if Path(p).is_dir()]


def check_output_location(output: str | os.PathLike, paths: Iterable[str | os.PathLike]) -> None:
    """Refuse an output file inside a scanned folder: scan leaves evidence folders untouched."""
    if str(output) == "-":
        return
    out = Path(os.path.realpath(Path(output).absolute().parent))
    for folder in scanned_folders(paths):
        if out == folder or folder in out.parents:
            raise ScanError(f"{output}: refusing to write inside the scanned folder {folder}; write it elsewhere")


# ---------------------------------------------------------------------------- scanning


def _prepare(path: Path, config, max_pixels: int) -> tuple[ScanResult, Views | None]:
    try:
        loaded = load_image(path, max_pixels=max_pixels)
        views = build_views(loaded.image, config, seed_from_digest(loaded.digest))
    except LoadError as exc:
        return ScanResult(path=str(path), verdict=VERDICT_ERROR, error=exc.reason), None
    except Exception as exc:  # a bug or an exotic file must not end the scan
        reason = f"internal error while preparing views ({type(exc).__name__}: {exc})"
        return ScanResult(path=str(path), verdict=VERDICT_ERROR, error=reason), None
    w, h = loaded.image.size
    result = ScanResult(
        path=str(path),
        verdict=VERDICT_ERROR,
        width=w,
        height=h,
        bytes=loaded.nbytes,
        sha256=loaded.sha256,
        format=loaded.format,
        sampling=views.plan.path if views.plan else None,
    )
    return result, views


def scan(
    files: Iterable[Path | WalkError | str],
    engine,
    *,
    threshold: float | None = None,
    batch_size: int = 8,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[ScanResult]:
    """Scan ``files`` (paths, or what ``iter_files`` yields) with ``engine``; yields one
    ScanResult per file, in walk order except that errors come out at once while good files
    wait for their batch. ``threshold`` defaults to the model's own.
    """
    if batch_size < 1:
        raise ScanError("--batch-size must be at least 1")
    config = engine.config
    threshold = config.threshold if threshold is None else threshold
    if not 0.0 <= threshold <= 1.0:
        raise ScanError(f"--threshold must lie between 0 and 1, got {threshold}")
    pending: list[tuple[ScanResult, Views]] = []

    def flush() -> Iterator[ScanResult]:
        g, c = collate([v for _, v in pending])
        pred = engine.predict(g, c)
        for i, (result, views) in enumerate(pending):
            p = float(pred.p_ai[i])
            result.p_ai, result.threshold, result.verdict = p, threshold, verdict(p, threshold)
            if pred.attention is not None and views.plan is not None:
                result.crops = [CropScore(box, float(w)) for box, w in zip(views.plan.boxes, pred.attention[i])]
            yield result
        pending.clear()

    for index, item in enumerate(files):
        if isinstance(item, WalkError):
            yield ScanResult(path=item.path, verdict=VERDICT_ERROR, error=item.reason, index=index)
            continue
        result, views = _prepare(Path(item), config, max_pixels)
        result.index = index
        if views is None:
            yield result
            continue
        pending.append((result, views))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()
