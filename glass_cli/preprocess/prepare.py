"""One file to model inputs: read, hash, decode, place the crops by the file's own hash, build views.

Scan, eval, the trainer's validation and cross-validation all prepare a file through
``prepare_file``, so the same bytes always become the same views and the same score:

    prepared = prepare_file(path, config)    # LoadError when the file cannot be scanned
    prepared.views, prepared.sha256, prepared.image

``prepare_bytes`` does the same for bytes already read (scan reads them first, to hash them
and read their provenance evidence even when they turn out not to decode); ``decode_bytes``
is its first half, for a caller that looks at the decoded picture before any view is built
(scan's too-small check), then calls ``build_views`` itself.

A ``perturb`` callable turns the decoded picture into another file (eval's re-encodes and
resizes): it returns the new picture and the bytes of the file it stands for, and the crops
are then placed by those bytes' hash, as scan would place them in the perturbed file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from glass_cli.io.image import DEFAULT_MAX_PIXELS, decode_image, read_bytes
from glass_cli.preprocess.sampling import seed_from_digest
from glass_cli.preprocess.views import Views, build_views, rgb

Perturb = Callable[[Image.Image, str], "tuple[Image.Image, bytes] | None"]
"""(picture, path) -> (new picture, the bytes of the file it stands for), or None to keep it."""


@dataclass
class PreparedFile:
    path: str
    sha256: str
    """Hex SHA-256 of the file as stored."""
    nbytes: int
    format: str | None
    image: Image.Image
    """The decoded picture (orientation applied, perturbed if asked) the views were cut from:
    RGB, or RGBX for a JPEG whose decoder buffer it shares (``io.image.decode_image``)."""
    views: Views


@dataclass
class Decoded:
    """A file's picture, decoded and (if asked) perturbed, with the seed that places its crops."""

    image: Image.Image
    """RGB, or RGBX for a JPEG whose decoder buffer it shares (``io.image.decode_image``)."""
    format: str | None
    sha256: str
    """Hex SHA-256 of the file as stored."""
    seed: int
    """Crop-placement seed: from the stored file's hash, or the perturbed file's."""


def decode_bytes(
    data: bytes,
    path: str | os.PathLike,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    perturb: Perturb | None = None,
    sha256: str | None = None,
) -> Decoded:
    """The first half of ``prepare_bytes``: decode (and perturb) without building views, for
    callers that look at the picture first (scan's too-small check). Raises LoadError."""
    digest = bytes.fromhex(sha256) if sha256 else hashlib.sha256(data).digest()
    image, fmt = decode_image(data, path, max_pixels=max_pixels, shared=True)
    seed_digest = digest
    if perturb is not None:
        changed = perturb(rgb(image), str(path))
        if changed is not None:
            image, new_bytes = changed
            seed_digest = hashlib.sha256(new_bytes).digest()
    return Decoded(image, fmt, digest.hex(), seed_from_digest(seed_digest))


def prepare_bytes(
    data: bytes,
    path: str | os.PathLike,
    config,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    perturb: Perturb | None = None,
    sha256: str | None = None,
) -> PreparedFile:
    """The views of a file whose bytes are already read (``sha256``: their hash, if known).
    Raises LoadError with a one-line reason when they cannot be decoded."""
    decoded = decode_bytes(data, path, max_pixels=max_pixels, perturb=perturb, sha256=sha256)
    views = build_views(decoded.image, config, decoded.seed)
    return PreparedFile(str(path), decoded.sha256, len(data), decoded.format, decoded.image, views)


def prepare_file(path: str | os.PathLike, config, **options) -> PreparedFile:
    """Read ``path`` and build its views for ``config`` (a ModelConfig); options as for
    ``prepare_bytes``. Raises LoadError when the file cannot be read or decoded."""
    return prepare_bytes(read_bytes(path), path, config, **options)
