"""The scan pipeline: load -> views -> engine -> verdict, one ScanResult per file.

``scan`` is a generator, so callers (the CLI, a notebook, a service) can stream results,
write them as they come, or stop early. A file that cannot be read or decoded becomes a
result with ``verdict == "error"`` and a one-line reason; it never stops the scan. Crops are
placed with a seed taken from the file's SHA-256, so a file gets the same score whatever its
name, folder, batch or position. Provenance evidence is read from the same bytes (metadata)
and from the decoded picture (invisible watermarks, ``io.watermark``) and kept beside the
score, never mixed into it.

``scan`` takes files and an open engine. The whole of ``glass scan`` (weights, engine kind,
shard, output destinations checked before any work, then walk, model and outputs) is
``scan_paths`` in ``inference.job``, also importable from here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from glass_cli.errors import ScanError
from glass_cli.inference.pipeline import batched, ordered_map
from glass_cli.inference.processes import SlotLayout, choose_pool, exit_reason, process_map
from glass_cli.io.digest import usable_cores
from glass_cli.io.evidence import Finding, read_evidence
from glass_cli.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, LoadError, read_bytes
from glass_cli.io.walk import WalkError
from glass_cli.io.watermark import TrustMarkReader, read_watermarks
from glass_cli.preprocess.prepare import prepare_bytes
from glass_cli.preprocess.views import Views, rgb, scale_image

VERDICT_AI = "ai"
VERDICT_REAL = "real"
VERDICT_UNCERTAIN = "uncertain"
VERDICT_ERROR = "error"

DECODES = ("cpu", "device")
"""Where scan decodes JPEGs: in the CPU workers, or on the engine's device (--decode gpu)."""

DEFAULT_FILE_TIMEOUT = 120.0
"""Seconds one file may take to be read, hashed, decoded and cut into views before scan
gives up on it (a 250 MP PNG takes about 20 s on a slow 2-core machine)."""

DEFAULT_MIN_SIDE = 64
"""Images with a shorter side below this many pixels are not scored: the global view would
be mostly interpolation and every crop the whole picture, and leave-source-out validation
never measured the model there (its smallest tested reals have a 320 px long side)."""

PREVIEW_SIDE = 1024
"""Long side of the downscaled copy kept for overlays and report thumbnails."""


@dataclass(frozen=True)
class Decision:
    """How P(AI) becomes a verdict: 'ai' at or above ``threshold``; with an uncertain band
    (low, high), scores with low <= P(AI) < high are 'uncertain' instead."""

    threshold: float = 0.5
    uncertain: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ScanError(f"--threshold must lie between 0 and 1, got {self.threshold}")
        if self.uncertain is not None:
            low, high = self.uncertain
            if not 0.0 <= low < high <= 1.0:
                raise ScanError(f"--uncertain needs 0 <= LOW < HIGH <= 1, got {low}:{high}")

    def verdict(self, p_ai: float) -> str:
        if self.uncertain is not None and self.uncertain[0] <= p_ai < self.uncertain[1]:
            return VERDICT_UNCERTAIN
        return VERDICT_AI if p_ai >= self.threshold else VERDICT_REAL


@dataclass
class CropScore:
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) in the oriented image's pixels."""
    weight: float
    """Attention weight; the K weights of a file sum to 1."""


@dataclass
class Explanation:
    """Pictures kept for a file when asked (for --save-crops and --report); not serialised."""

    preview: Image.Image
    """The image downscaled to at most PREVIEW_SIDE on its long side."""
    scale: float
    """preview size / original size."""
    crops: list[Image.Image] = field(default_factory=list)
    """The native-resolution crops, in the order of ScanResult.crops."""


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
    evidence: list[Finding] = field(default_factory=list)
    error: str | None = None
    model_id: str | None = None
    engine: str | None = None
    """Which engine scored it: torch or onnx (the same model_id under either)."""
    index: int = -1
    """Position of the file in the walk order."""
    explanation: Explanation | None = None

    @property
    def flagged(self) -> bool:
        return self.verdict == VERDICT_AI

    def ranked_crops(self) -> list[CropScore]:
        """The crops from the most attended down (rank 1 first): the order of the table, the
        records, the overlay and the report."""
        return sorted(self.crops, key=lambda c: c.weight, reverse=True)

    def top_crops(self, n: int = 2) -> list[CropScore]:
        return self.ranked_crops()[:n]


def _explanation(image: Image.Image, boxes) -> Explanation:
    scale = min(1.0, PREVIEW_SIDE / max(image.size))
    if scale < 1.0:
        preview = scale_image(image, scale, resample=Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        preview = image.copy()
    return Explanation(rgb(preview), scale, [rgb(image.crop(b)) for b in boxes])


@dataclass(frozen=True)
class Watermarks:
    """Which invisible watermarks scan reads from the decoded pixels."""

    dwt_dct: bool = True
    """The Stable Diffusion / SDXL dwtDct messages (a few milliseconds per file)."""
    trustmark: TrustMarkReader | None = None
    """An open TrustMark decoder, or None (not read)."""

    @property
    def any(self) -> bool:
        return self.dwt_dct or self.trustmark is not None


def finish_prepared(result: ScanResult, image: Image.Image, views: Views, fmt: str | None, min_side: int, explain: bool,
                    watermarks: Watermarks) -> tuple[ScanResult, Views | None]:
    """What scan adds to a decoded file before the model: pixel watermarks, its size, the
    too-small check, its sampling path and, when asked, the pictures for reports."""
    result.format = fmt
    if watermarks.any:
        result.evidence += read_watermarks(image, dwt_dct=watermarks.dwt_dct, trustmark=watermarks.trustmark)
    result.width, result.height = image.size
    if min(image.size) < min_side:
        result.error = (f"too small to judge ({image.width}x{image.height}): glass scores images of at least "
                        f"{min_side} px on each side (--min-side)")
        return result, None
    result.sampling = views.plan.path if views.plan else None
    if explain:
        result.explanation = _explanation(image, views.plan.boxes if views.plan else ())
    return result, views


def read_into(result: ScanResult, path: Path, max_bytes: int) -> bytes:
    """Read a file for scanning and note on ``result`` its size, hash and metadata evidence."""
    data = read_bytes(path, max_bytes=max_bytes)
    result.bytes, result.sha256 = len(data), hashlib.sha256(data).hexdigest()
    result.evidence = read_evidence(data)
    return data


def prepare_decoded(result: ScanResult, data: bytes, path: Path, config, max_pixels: int, min_side: int, explain: bool,
                    watermarks: Watermarks) -> tuple[ScanResult, Views | None]:
    """Decode bytes already read into ``result`` and finish the file (the CPU path)."""
    prepared = prepare_bytes(data, path, config, max_pixels=max_pixels, sha256=result.sha256)
    return finish_prepared(result, prepared.image, prepared.views, prepared.format, min_side, explain, watermarks)


def guarded(result: ScanResult, step: Callable[[], tuple]) -> tuple:
    """``step()``, with a LoadError, or any other exception (a bug or an exotic file must not
    end the scan), turned into the file's error: (result, None)."""
    try:
        return step()
    except LoadError as exc:
        result.error = exc.reason
    except Exception as exc:
        result.error = f"internal error while preparing views ({type(exc).__name__}: {exc})"
    return result, None


def _prepare(path: Path, config, max_pixels: int, max_bytes: int, min_side: int, explain: bool,
             watermarks: Watermarks) -> tuple[ScanResult, Views | None]:
    result = ScanResult(path=str(path), verdict=VERDICT_ERROR)
    return guarded(result, lambda: prepare_decoded(result, read_into(result, path, max_bytes), path, config, max_pixels,
                                                   min_side, explain, watermarks))


def prepare_file(item: Path | WalkError | str | os.PathLike, config, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_bytes: int = DEFAULT_MAX_BYTES, min_side: int = DEFAULT_MIN_SIDE, explain: bool = False,
                 watermarks: Watermarks | None = None) -> tuple[ScanResult, Views | None]:
    """One file (or a WalkError) made ready for the engine as ``scan``'s CPU path does it:
    its result so far (an error, or everything but the score) and its views (None for an
    error). For schedulers other than ``scan``'s own pools, e.g. ``glass_cli.cluster``."""
    if isinstance(item, WalkError):
        return ScanResult(path=item.path, verdict=VERDICT_ERROR, error=item.reason), None
    return _prepare(Path(item), config, max_pixels, max_bytes, min_side, explain, watermarks or Watermarks())


def too_slow_reason(seconds: float) -> str:
    """The error of a file given up after ``seconds`` (``file_timeout``)."""
    return f"still reading or decoding after {seconds:g} s; given up (raise the limit with --file-timeout)"


def apply_prediction(result: ScanResult, views: Views, p_ai: float, attention, decision: Decision) -> None:
    """Put the engine's output for one file on its result: P(AI), threshold, verdict, crops."""
    result.p_ai, result.threshold, result.verdict = p_ai, decision.threshold, decision.verdict(p_ai)
    if attention is not None and views.plan is not None:
        result.crops = [CropScore(box, float(w)) for box, w in zip(views.plan.boxes, attention)]


def default_workers() -> int:
    """Decode threads: one per core the process may use, at least 1."""
    return usable_cores()


@dataclass(frozen=True)
class _Preparer:
    """What a pool worker (thread or process) does with one (index, item): a picklable
    object, so worker processes get the same function as threads."""

    config: object
    max_pixels: int
    max_bytes: int
    min_side: int
    explain: bool
    watermarks: Watermarks
    model_id: str | None
    engine_kind: str | None
    decode: str = "cpu"

    def __call__(self, indexed) -> tuple[ScanResult, Views | None]:
        index, item = indexed
        if self.decode == "device" and not isinstance(item, WalkError):
            from glass_cli.inference.device_decode import read_for_device

            result, views = read_for_device(Path(item), self.config, max_pixels=self.max_pixels, max_bytes=self.max_bytes,
                                            min_side=self.min_side, explain=self.explain, watermarks=self.watermarks,
                                            result=ScanResult(path=str(item), verdict=VERDICT_ERROR))
        else:
            result, views = prepare_file(item, self.config, max_pixels=self.max_pixels, max_bytes=self.max_bytes,
                                         min_side=self.min_side, explain=self.explain, watermarks=self.watermarks)
        result.index, result.model_id, result.engine = index, self.model_id, self.engine_kind
        return result, views

    def failed(self, indexed, reason: str) -> tuple[ScanResult, None]:
        index, item = indexed
        path = item.path if isinstance(item, WalkError) else str(item)
        return ScanResult(path=path, verdict=VERDICT_ERROR, error=reason, index=index, model_id=self.model_id,
                          engine=self.engine_kind), None


def scan(
    files: Iterable[Path | WalkError | str | os.PathLike],
    engine,
    *,
    decision: Decision | None = None,
    batch_size: int = 8,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    file_timeout: float | None = DEFAULT_FILE_TIMEOUT,
    min_side: int = DEFAULT_MIN_SIDE,
    explain: bool = False,
    workers: int = 1,
    pool: str = "auto",
    watermarks: Watermarks | None = None,
    decode: str = "cpu",
) -> Iterator[ScanResult]:
    """Scan ``files`` (paths, or what ``walk.iter_files`` yields) with ``engine``.

    Yields one ScanResult per file: errors at once, good files when their batch has run.
    ``decision`` defaults to the model's own threshold. With ``explain`` each result carries
    an Explanation (preview image and crops) for overlays and reports. ``workers`` threads
    read and decode files ahead of the model; results do not depend on it. Images with a
    side shorter than ``min_side`` pixels are reported as too small to judge. A file larger
    than ``max_bytes`` is refused unread; one whose preparation takes longer than
    ``file_timeout`` seconds (None: no limit) is given up and reported while the files
    behind it go on. ``watermarks`` says which pixel watermarks are read (default: the
    SD/SDXL ones, not TrustMark). ``pool`` says whether the workers are threads or
    processes (``inference.processes``; 'auto': processes above 4 workers); results do not
    depend on it. In a process a stuck file's worker is killed, not only left behind.
    ``decode='device'`` (torch engine) decodes JPEGs and builds their views on the
    engine's device (``inference.device_decode``); the workers are then threads that only
    read, hash and parse headers.
    """
    if batch_size < 1:
        raise ScanError("--batch-size must be at least 1")
    if workers < 1:
        raise ScanError("--workers must be at least 1")
    if max_bytes < 1:
        raise ScanError("--max-bytes must be at least 1")
    if min_side < 1:
        raise ScanError("--min-side must be at least 1")
    if file_timeout is not None and file_timeout <= 0:
        raise ScanError("--file-timeout must be above 0 seconds")
    config = engine.config
    decision = decision or Decision(config.threshold)
    model_id = getattr(engine, "model_id", None)
    engine_kind = getattr(engine, "kind", None)
    watermarks = watermarks or Watermarks()
    try:
        kind = choose_pool(pool, workers)
    except ValueError as exc:
        raise ScanError(f"--pool: {exc}") from None
    if decode not in DECODES:
        raise ScanError(f"--decode must be one of {', '.join(DECODES)}, not {decode!r}")
    if decode == "device":
        if engine_kind != "torch":
            raise ScanError("--decode gpu needs the torch engine (a .safetensors checkpoint, --engine torch)")
        if pool == "process":
            raise ScanError("--decode gpu reads files in threads (they only read and hash); use --pool thread or auto")
        kind = "thread"
    if kind == "process" and watermarks.trustmark is not None:
        if pool == "process":
            raise ScanError("--trustmark reads in the main process only; use --pool thread with it")
        kind = "thread"

    preparer = _Preparer(config, max_pixels, max_bytes, min_side, explain, watermarks, model_id, engine_kind, decode)

    def too_slow(indexed, seconds: float) -> tuple[ScanResult, None]:
        return preparer.failed(indexed, too_slow_reason(seconds))

    def lost(indexed, code: int | None) -> tuple[ScanResult, None]:
        return preparer.failed(indexed, f"the worker preparing this file died ({exit_reason(code)}); the file was not scored")

    window = max(2 * batch_size, 2 * workers)
    if kind == "process":
        ready = process_map(preparer, enumerate(files), SlotLayout.for_config(config), workers=workers, window=window,
                            timeout=file_timeout, on_timeout=too_slow, on_lost=lost)
    else:
        ready = ordered_map(preparer, enumerate(files), workers=workers, window=window, timeout=file_timeout,
                            on_timeout=too_slow)
    if decode == "device":
        from glass_cli.inference import device_decode as dd

        decoder = dd.DeviceDecoder(config, engine.device_name)
        batches = dd.device_batched(
            ready, engine, batch_size, decoder,
            finish=lambda r, pixels, jpeg: dd.finish_on_device(r, pixels, jpeg, config, explain=explain, watermarks=watermarks),
            fallback=lambda r, jpeg: dd.host_fallback(r, jpeg, r.path, config, max_pixels=max_pixels, min_side=min_side,
                                                      explain=explain, watermarks=watermarks))
    else:
        batches = batched(ready, engine, batch_size)
    for result, views, p, attention in batches:
        if p is not None:
            apply_prediction(result, views, p, attention, decision)
        yield result

