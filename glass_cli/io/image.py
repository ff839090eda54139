"""Open any image file safely as 8-bit RGB, or say in one short line why not.

Scanning hostile folders is the normal case: empty files, truncated downloads, text saved as
.jpg, decompression bombs, CMYK and 16-bit files, HEIC from phones. ``load_image`` turns every
one of those into either a ``LoadedImage`` or a ``LoadError`` with a short reason; it never
lets a decoder exception escape.

Decisions, each deliberate:
- EXIF orientation is applied, so crops are taken from the picture as people see it.
- Alpha is dropped without compositing: the colour values the generator wrote are the evidence.
- 16-bit and 32-bit grey images are scaled to 8 bits (not clipped).
- Animated files: the first frame.
- Truncated files are errors, not scored: a half-decoded picture padded with grey is not the
  file the user asked about, and a verdict on it would be a verdict on the padding. Damage
  outside the pixels is worked around (``io.damage``: PNG ancillary chunks with a bad CRC are
  skipped) and reported by the evidence readers.
- Only regular files are read, and at most ``max_bytes`` of them (``read_bytes``): a named
  pipe, a device or an endless file cannot hang the scan or fill memory.
- glass applies its own pixel limit (``max_pixels``) from the header, before decoding, on
  every open (``open_image``). Pillow's own bomb check is a process-wide setting that glass
  leaves as the host program set it: a picture that Pillow's limit refuses (above about
  179 MP by default) but glass's allows is opened through its format plugin directly.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from glass_cli.errors import GlassError
from glass_cli.io.damage import PixelDamage, repair_png

DEFAULT_MAX_PIXELS = 250_000_000
"""Default pixel limit: room for 200 MP camera files, refuses dimension bombs."""


class LoadError(GlassError):
    """A file that cannot be scanned; ``reason`` is one short line for people."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class LoadedImage:
    path: str
    image: Image.Image
    """RGB, orientation applied."""
    sha256: str
    nbytes: int
    format: str | None
    """The container format Pillow identified (JPEG, PNG, HEIF, AVIF, ...)."""

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.sha256)


@cache
def register_formats() -> None:
    """Teach Pillow HEIC/HEIF (through pillow-heif); AVIF is native in Pillow >= 11.3."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # pragma: no cover - pillow-heif is a dependency
        pass
    Image.init()


def open_image(fp: IO[bytes]) -> Image.Image:
    """``Image.open`` of a seekable binary stream (header only, pixels not decoded), without
    Pillow's decompression-bomb limit: callers check ``max_pixels`` themselves. Raises what
    ``Image.open`` raises for a file no plugin identifies."""
    register_formats()
    try:
        return Image.open(fp)
    except Image.DecompressionBombError:
        pass
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        if accept and accept(prefix) is not True:
            continue
        fp.seek(0)
        try:
            return factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError("cannot identify image file")


@cache
def image_extensions() -> frozenset[str]:
    """Every file extension some installed Pillow plugin can open, lower-case with the dot."""
    register_formats()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            top = 1.0 if arr.size and np.nanmax(arr) <= 1.0 else 255.0
        elif img.mode == "I" and arr.size and arr.max() <= 255:
            top = 255.0
        else:
            top = 65535.0
        grey = np.clip(np.nan_to_num(arr) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        # Drop alpha: keep the stored colour values rather than blend them with a backdrop.
        img = img.convert("RGBA") if img.mode != "RGBA" else img
        return img.convert("RGB")
    return img.convert("RGB")


_ORIENTATION = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def _decode_jpeg_fast(data: bytes, header: Image.Image, shared: bool) -> Image.Image | None:
    """Baseline/progressive RGB and greyscale JPEGs through simplejpeg (libjpeg-turbo with
    accurate DCT and fancy upsampling: the same pixels as Pillow's decoder, about 25% sooner;
    tests/test_imageio.py checks the equality). None means: use Pillow (CMYK, anything
    simplejpeg refuses, or libjpeg warnings that Pillow tolerates).

    With ``shared`` the picture is decoded to 4 bytes per pixel and handed to Pillow as an
    ``RGBX`` image over the decoder's own array: Pillow keeps RGB in that layout anyway, so
    no copy is made (copying a 12 MP picture into a new ``RGB`` image costs about 35 ms, two
    thirds of the decode itself). Without it the result is a plain ``RGB`` image."""
    if header.format != "JPEG" or header.mode not in ("RGB", "L"):
        return None
    try:
        import simplejpeg

        pixels = simplejpeg.decode_jpeg(data, colorspace="RGBX" if shared else "RGB")
    except Exception:
        return None
    if shared:
        out = Image.frombuffer("RGBX", (pixels.shape[1], pixels.shape[0]), pixels, "raw", "RGBX", 0, 1)
    else:
        out = Image.fromarray(pixels, "RGB")
    try:
        orientation = header.getexif().get(0x0112)
    except Exception:
        orientation = None
    for op in _ORIENTATION.get(orientation, ()):
        out = out.transpose(op)
    return out


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, UnidentifiedImageError):
        return "not an image, or a format glass cannot read"
    if isinstance(exc, OSError) and "truncated" in text.lower():
        return "truncated image data (file incomplete or corrupt)"
    if isinstance(exc, (zlib.error, SyntaxError, EOFError, ValueError, OSError, RuntimeError)):
        return f"corrupt image data ({text})"
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    return f"cannot decode ({type(exc).__name__}: {text})"


DEFAULT_MAX_BYTES = 1 << 30
"""Default read limit, 1 GiB: far above any real photo (a 200 MP 16-bit TIFF is about
1.2 GB uncompressed, its PNG or JPEG a fraction of that), low enough that an endless or
sparse file cannot fill memory."""

_SPECIAL_FILES = (
    (stat.S_ISFIFO, "named pipe, not a file"),
    (stat.S_ISSOCK, "socket, not a file"),
    (stat.S_ISCHR, "character device, not a file"),
    (stat.S_ISBLK, "block device, not a file"),
    (stat.S_ISDIR, "is a directory"),
)


def _not_a_regular_file(mode: int) -> str | None:
    for test, reason in _SPECIAL_FILES:
        if test(mode):
            return reason
    return None if stat.S_ISREG(mode) else "not a regular file"


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _open_readonly(path: str | os.PathLike) -> int:
    """The descriptor of ``path`` opened for reading without blocking (a FIFO that slipped
    past the stat check opens at once instead of waiting for a writer)."""
    return os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))


def read_bytes(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A regular file's bytes, at most ``max_bytes`` (``read_file`` without the time)."""
    return read_file(path, max_bytes=max_bytes)[0]


def read_file(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, int]:
    """Read a regular file's bytes, at most ``max_bytes``; returns (bytes, modification time
    in ns, from the descriptor the bytes were read through). Every failure is a LoadError
    with a plain reason.

    Only regular files are read. Pipes, sockets and devices (directly or behind a symlink)
    are refused from their stat, before any open(), and the opened descriptor is checked
    again, so a file swapped for a pipe between the two cannot block the scan. A file above
    ``max_bytes`` is refused from its stat size without reading it; a file that grows past
    the limit while being read is cut there and refused."""
    p = Path(path)
    try:
        reason = _not_a_regular_file(os.stat(p).st_mode)
        if reason:
            raise LoadError(p, reason)
        fd = _open_readonly(p)
        try:
            info = os.fstat(fd)
            reason = _not_a_regular_file(info.st_mode)
            if reason:
                raise LoadError(p, reason)
            if info.st_size > max_bytes:
                raise LoadError(p, f"{_size_text(info.st_size)}, above the read limit of {_size_text(max_bytes)} "
                                   "(raise it with --max-bytes)")
            if getattr(os, "O_NONBLOCK", 0):  # POSIX; a regular file reads the same either way
                os.set_blocking(fd, True)
            chunks, total = [], 0
            while total <= max_bytes:
                chunk = os.read(fd, min(1 << 22, max_bytes + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            os.close(fd)
    except LoadError:
        raise
    except FileNotFoundError:
        raise LoadError(p, "file not found (deleted, moved, or a broken link)") from None
    except PermissionError:
        raise LoadError(p, "permission denied") from None
    except IsADirectoryError:
        raise LoadError(p, "is a directory") from None
    except OSError as exc:
        raise LoadError(p, f"cannot read file ({exc.strerror or exc})") from None
    if total > max_bytes:
        raise LoadError(p, f"grew past the read limit of {_size_text(max_bytes)} while being read (raise it with --max-bytes)")
    if not total:
        raise LoadError(p, "empty file (0 bytes)")
    return b"".join(chunks), info.st_mtime_ns


def decode_image(
    data: bytes,
    path: str | os.PathLike = "<bytes>",
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shared: bool = False,
) -> tuple[Image.Image, str | None]:
    """Decode encoded bytes to an RGB image with orientation applied; returns (image, format).

    Pillow's warnings about odd EXIF or ICC blocks are left to the host program's filters
    (``glass`` itself silences Pillow's at its entry point, ``cli.app.configure_process``).

    ``shared=True`` lets a JPEG come back as an ``RGBX`` image that shares the decoder's
    buffer instead of a copy (same pixels, X is padding); the views accept either mode.
    Callers that hand the picture to other Pillow code (encoders, TrustMark) should ask
    for plain RGB, or convert."""
    register_formats()
    try:
        data = repair_png(data)  # a PNG whose text chunk lost its CRC still has its pixels
    except PixelDamage as exc:
        raise LoadError(path, f"corrupt image data ({exc})") from None
    try:
        img = open_image(io.BytesIO(data))
        fmt = img.format
        width, height = img.size
        if width * height > max_pixels:
            raise LoadError(
                path,
                f"{width}x{height} is {width * height / 1e6:.0f} MP, above the limit of "
                f"{max_pixels / 1e6:.0f} MP (raise it with --max-pixels)",
            )
        fast = _decode_jpeg_fast(data, img, shared)
        if fast is not None:
            return fast, fmt
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # broken EXIF must not cost the pixels; keep stored orientation
            pass
        return _to_rgb(img), fmt
    except LoadError:
        raise
    except Exception as exc:  # every decoder failure becomes a one-line reason
        raise LoadError(path, _reason(exc)) from None


def load_image(
    path: str | os.PathLike,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Read and decode one file. Raises LoadError (only) when it cannot be scanned."""
    data = read_bytes(path)
    image, fmt = decode_image(data, path, max_pixels=max_pixels)
    return LoadedImage(
        path=str(path),
        image=image,
        sha256=hashlib.sha256(data).hexdigest(),
        nbytes=len(data),
        format=fmt,
    )
