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
  file the user asked about, and a verdict on it would be a verdict on the padding.
- glass applies its own pixel limit (``max_pixels``) from the header, before decoding, and
  switches off Pillow's global bomb check, which would otherwise refuse images above about
  179 MP with a different message.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 250_000_000
"""Default pixel limit: room for 200 MP camera files, refuses dimension bombs."""


class LoadError(Exception):
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
    Image.MAX_IMAGE_PIXELS = None  # glass checks max_pixels itself, see module docstring


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


def _decode_jpeg_fast(data: bytes, header: Image.Image) -> Image.Image | None:
    """Baseline/progressive RGB and greyscale JPEGs through simplejpeg (libjpeg-turbo with
    accurate DCT and fancy upsampling: the same pixels as Pillow's decoder, about 25% sooner;
    tests/test_imageio.py checks the equality). None means: use Pillow (CMYK, anything
    simplejpeg refuses, or libjpeg warnings that Pillow tolerates)."""
    if header.format != "JPEG" or header.mode not in ("RGB", "L"):
        return None
    try:
        import simplejpeg

        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except Exception:
        return None
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


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a file's bytes, mapping OS failures to a LoadError with a plain reason."""
    p = Path(path)
    try:
        if p.is_dir():
            raise LoadError(p, "is a directory")
        data = p.read_bytes()
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
    if not data:
        raise LoadError(p, "empty file (0 bytes)")
    return data


def decode_image(
    data: bytes,
    path: str | os.PathLike = "<bytes>",
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[Image.Image, str | None]:
    """Decode encoded bytes to an RGB image with orientation applied; returns (image, format)."""
    register_formats()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd EXIF/ICC; not the user's concern
            img = Image.open(io.BytesIO(data))
            fmt = img.format
            width, height = img.size
            if width * height > max_pixels:
                raise LoadError(
                    path,
                    f"{width}x{height} is {width * height / 1e6:.0f} MP, above the limit of "
                    f"{max_pixels / 1e6:.0f} MP (raise it with --max-pixels)",
                )
            fast = _decode_jpeg_fast(data, img)
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
