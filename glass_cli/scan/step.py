"""One file made ready for the model: read -> hash -> (cached answer?) -> metadata evidence ->
decode -> pixel watermarks -> too-small check -> views -> pictures for the reports.

``FileStep`` is that whole step as one picklable callable, ``(index, item) -> (ScanResult,
payload)``. The thread pool, the process pool (``inference.processes``), the GPU path
(``scan.device``) and the Ray tasks (``scan.cluster``) all call it, so a file gets the same
record wherever it is prepared. The payload is the file's ``Views``, None when the file
ends here (its result then carries the one-line reason), or, on the GPU path, an
``EncodedJpeg`` left for the device to decode.

Crops are placed with a seed taken from the file's SHA-256, so a file gets the same score
whatever its name, folder, batch or position. Provenance evidence is read from the same
bytes (metadata) and from the decoded picture (invisible watermarks, ``io.watermark``) and
kept beside the score, never mixed into it. A file that cannot be read or decoded, and any
exception an exotic file raises, becomes the file's error and never stops the scan. With a
result cache (``scan.cache``), a file whose bytes were answered before ends right after
hashing: the result carries the cached answer and no payload.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from glass_cli.io.damage import jpeg_end
from glass_cli.io.evidence import read_evidence
from glass_cli.io.image import LoadError, open_image, read_file
from glass_cli.io.walk import WalkError
from glass_cli.io.watermark import TrustMarkReader, read_watermarks
from glass_cli.preprocess.prepare import decode_bytes
from glass_cli.preprocess.sampling import seed_from_digest
from glass_cli.preprocess.views import Views, build_views, rgb, scale_image
from glass_cli.results import VERDICT_ERROR, Explanation, ScanResult
from glass_cli.scan.cache import CacheKey, ResultCache, fill
from glass_cli.scan.settings import Limits

PREVIEW_SIDE = 1024
"""Long side of the downscaled copy kept for overlays and report thumbnails."""


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


@dataclass
class EncodedJpeg:
    """A whole JPEG left for the device to decode: its bytes, EXIF orientation and crop seed."""

    data: bytes
    orientation: int | None
    seed: int


def explanation(image: Image.Image, boxes, config) -> Explanation:
    """The preview and native-resolution crops of a file, for overlays and reports. A crop
    that runs past the picture's edge is padded as the model's view is: with the local
    backbone's mean colour (``preprocess.views.cut_crop``), not black."""
    scale = min(1.0, PREVIEW_SIDE / max(image.size))
    if scale < 1.0:
        preview = scale_image(image, scale, resample=Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        preview = image.copy()
    mean = tuple(round(255 * m) for m in config.local_norm.mean)
    crops = []
    for box in boxes:
        if box[2] > image.width or box[3] > image.height or box[0] < 0 or box[1] < 0:
            crop = Image.new("RGB", (box[2] - box[0], box[3] - box[1]), mean)
            inside = image.crop((max(box[0], 0), max(box[1], 0), min(box[2], image.width), min(box[3], image.height)))
            crop.paste(rgb(inside), (max(0, -box[0]), max(0, -box[1])))
        else:
            crop = rgb(image.crop(box))
        crops.append(crop)
    return Explanation(rgb(preview), scale, crops)


def too_small_reason(width: int, height: int, min_side: int) -> str:
    return (f"too small to judge ({width}x{height}): glass scores images of at least "
            f"{min_side} px on each side (--min-side)")


def too_slow_reason(seconds: float) -> str:
    """The error of a file given up after ``seconds`` (``Limits.file_timeout``)."""
    return f"still reading or decoding after {seconds:g} s; given up (raise the limit with --file-timeout)"


def lost_reason(exit_reason: str) -> str:
    """The error of a file whose worker process died (``exit_reason``: how it ended)."""
    return f"the worker preparing this file died ({exit_reason}); the file was not scored"


def orientation_of(header: Image.Image) -> int | None:
    """The EXIF orientation tag of an opened file, None when absent or unreadable."""
    try:
        return header.getexif().get(0x0112)
    except Exception:
        return None


def _guarded(result: ScanResult, step: Callable[[], object]):
    """``step()``, with a LoadError, or any other exception (a bug or an exotic file must not
    end the scan), made the file's error: then None."""
    try:
        return step()
    except LoadError as exc:
        result.error = exc.reason
    except Exception as exc:
        result.error = f"internal error while preparing views ({type(exc).__name__}: {exc})"
    return None


@dataclass(frozen=True)
class FileStep:
    """The per-file step for one model (see the module docstring). Frozen and picklable, so
    worker processes and Ray tasks run the very function the threads run."""

    config: object
    """The ModelConfig whose views are built."""
    limits: Limits = field(default_factory=Limits)
    explain: bool = False
    """Keep each file's preview and crops (``ScanResult.explanation``)."""
    watermarks: Watermarks = field(default_factory=Watermarks)
    model_id: str | None = None
    engine: str | None = None
    """The engine kind written into each record."""
    on_device: bool = False
    """Leave whole JPEGs encoded for the device (``scan.device``); other files as usual."""
    cache: ResultCache | None = None
    """Answers kept from earlier scans, looked up by the file's hash and ``cache_key``."""
    cache_key: CacheKey | None = None

    def __call__(self, indexed) -> tuple[ScanResult, Views | EncodedJpeg | None]:
        index, item = indexed
        if isinstance(item, WalkError):
            return self._result(index, item.path, error=item.reason), None
        result = self._result(index, str(item))
        return result, _guarded(result, lambda: self._prepare(result, Path(item)))

    def _prepare(self, result: ScanResult, path: Path) -> Views | EncodedJpeg | None:
        data = self._read(result, path)
        if self.cache is not None:
            cached = self.cache.get(result.sha256, self.cache_key)
            if cached is not None:  # the cached answer carries the evidence too: nothing more to read
                fill(result, cached)
                if self.explain and cached["p_ai"] is not None:
                    self._pictures(result, data, path)
                return None
        result.evidence = read_evidence(data)
        if self.on_device:
            jpeg = self._for_device(result, data)
            if jpeg is not None:
                return jpeg
        return self.decode(result, data, path)

    def failed(self, indexed, reason: str) -> tuple[ScanResult, None]:
        """The result of a file the step never finished (given up, or its worker died)."""
        index, item = indexed
        return self._result(index, item.path if isinstance(item, WalkError) else str(item), error=reason), None

    def _result(self, index: int, path: str, error: str | None = None) -> ScanResult:
        return ScanResult(path=path, verdict=VERDICT_ERROR, error=error, index=index, model_id=self.model_id,
                          engine=self.engine)

    def _read(self, result: ScanResult, path: Path) -> bytes:
        data, result.mtime_ns = read_file(path, max_bytes=self.limits.max_bytes)
        result.bytes, result.sha256 = len(data), hashlib.sha256(data).hexdigest()
        return data

    def decode(self, result: ScanResult, data: bytes, path: Path) -> Views | None:
        """Decode bytes already read into ``result`` and finish the file on the CPU: pixel
        watermarks, size, the too-small check, then views and pictures. Raises LoadError."""
        decoded = decode_bytes(data, path, max_pixels=self.limits.max_pixels, sha256=result.sha256)
        image = decoded.image
        result.format = decoded.format
        if self.watermarks.any:
            result.evidence += read_watermarks(image, dwt_dct=self.watermarks.dwt_dct, trustmark=self.watermarks.trustmark)
        result.width, result.height = image.size
        if min(image.size) < self.limits.min_side:
            result.error = too_small_reason(image.width, image.height, self.limits.min_side)
            return None
        views = build_views(image, self.config, decoded.seed)
        result.sampling = views.plan.path if views.plan else None
        if self.explain:
            result.explanation = explanation(image, views.plan.boxes if views.plan else (), self.config)
        return views

    def _pictures(self, result: ScanResult, data: bytes, path: Path) -> None:
        """The preview and crops of a file whose answer is known, for the reports: decoded and
        cut as for the model, and not scored."""
        decoded = decode_bytes(data, path, max_pixels=self.limits.max_pixels, sha256=result.sha256)
        views = build_views(decoded.image, self.config, decoded.seed)
        result.explanation = explanation(decoded.image, views.plan.boxes if views.plan else (), self.config)

    def pictures_again(self, result: ScanResult) -> None:
        """The pictures of a result known from elsewhere (a resumed scan's records), read
        from its file again; a file that cannot be read now keeps none."""
        try:
            data, _ = read_file(result.path, max_bytes=self.limits.max_bytes)
            self._pictures(result, data, Path(result.path))
        except Exception:  # the record stands; only its pictures are missing
            result.explanation = None

    def decode_guarded(self, result: ScanResult, data: bytes, path: Path) -> Views | None:
        """``decode`` with its failures made the file's error, as ``__call__`` does."""
        return _guarded(result, lambda: self.decode(result, data, path))

    def _for_device(self, result: ScanResult, data: bytes) -> EncodedJpeg | None:
        """An EncodedJpeg for a whole baseline/progressive RGB or grey JPEG within the limits;
        None leaves the file to the CPU path, which words every failure as without the
        device (other formats, CMYK, JPEGs without an end marker that a device decoder might
        pad silently, pictures above the pixel limit or too small to judge)."""
        limits = self.limits
        try:
            header = open_image(io.BytesIO(data))
            width, height = header.size
            eligible = (header.format == "JPEG" and header.mode in ("RGB", "L") and width * height <= limits.max_pixels
                        and min(width, height) >= limits.min_side and jpeg_end(data) is not None)
        except Exception:
            return None
        if not eligible:
            return None
        orientation = orientation_of(header)
        result.format = "JPEG"
        result.width, result.height = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        return EncodedJpeg(data, orientation, seed_from_digest(bytes.fromhex(result.sha256)))
