"""Training augmentation: random crop, rescale, blur, re-encode (JPEG / WebP) and flip.

Augmentation works on the PIL image before ``views.build_views``, so training sees exactly
the preprocessing scan uses, applied to a perturbed picture. Every random choice comes from
a generator seeded by (run seed, epoch, sample index) (``sample_rng``): an epoch's inputs do
not depend on worker threads, process count or whether the run was resumed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from glass_cli.preprocess.views import scale_image


@dataclass(frozen=True)
class Augment:
    """Training perturbations, each applied with its probability, in this order:
    random crop (random aspect), downscale (or, with ``size_p`` > 0, size-aware rescale),
    blur, re-encode (JPEG, or with ``webp_share`` > 0 JPEG or WebP, sometimes twice), flip.

    The crop breaks the "every fake is 1024x1024" geometry, the downscale teaches the local
    branch about resized pictures, and the re-encode of both classes at random qualities
    removes the quantisation-table shortcut (see train-v1's README).

    The size-aware rescale draws a target long side log-uniformly between ``size_min`` and
    ``size_max`` (never above the image's own long side: nothing is enlarged) and resizes to
    it, whatever the class. Both classes then share one range of sizes, so the model meets
    downscaled, smoothed real photos (a web copy, a thumbnail) as real and cannot use the
    pixel count or the sharpness that comes with it as a cue.

    With ``webp_share`` > 0 that share of the re-encodes is WebP instead of JPEG, and with
    probability ``chain_p`` a re-encoded picture is re-encoded once more (a platform
    re-compressing an upload). Both classes go through the same chains, so neither a WebP
    file (in train-v2 almost only fakes) nor a camera's or a gallery's JPEG tables can tell
    the class."""

    crop_p: float = 0.3
    crop_min: float = 0.6
    """Smallest kept fraction of each side."""
    downscale_p: float = 0.5
    downscale_min: float = 0.25
    """Smallest scale factor; 0.25 takes a 4000 px camera original to 1000 px."""
    blur_p: float = 0.1
    blur_max: float = 1.0
    """Largest Gaussian blur radius in pixels."""
    jpeg_p: float = 0.7
    jpeg_min: int = 60
    jpeg_max: int = 100
    flip_p: float = 0.5
    size_p: float = 0.0
    """Probability of the size-aware rescale; when above 0 it replaces the factor downscale."""
    size_min: int = 384
    size_max: int = 1024
    """Range of the target long side, in pixels."""
    webp_share: float = 0.0
    """Share of the re-encodes that are WebP (quality ``jpeg_min``..``jpeg_max``)."""
    chain_p: float = 0.0
    """Probability that a re-encoded picture is re-encoded a second time."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.size_p <= 1.0:
            raise ValueError(f"size augmentation probability must lie in [0, 1], got {self.size_p}")
        if not 8 <= self.size_min <= self.size_max:
            raise ValueError(f"size augmentation range needs 8 <= min <= max, got {self.size_min}..{self.size_max}")

    def apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.apply_split(image, rng, native=False)[0]

    def apply_split(self, image: Image.Image, rng: np.random.Generator, native: bool = True) -> tuple[Image.Image, Image.Image]:
        """(picture for the global view, picture for the local crops). With ``native`` the
        second skips the downscale / size-aware rescale and the blur but gets the same random
        crop, the same re-encode chain (codec and qualities) and the same flip: the crops see
        native pixels as a scan of the file would. Without it (``apply``) both are the same
        picture."""
        w, h = image.size
        if rng.random() < self.crop_p:
            cw = max(1, int(round(w * rng.uniform(self.crop_min, 1.0))))
            ch = max(1, int(round(h * rng.uniform(self.crop_min, 1.0))))
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            image = image.crop((left, top, left + cw, top + ch))
        local = image
        if self.size_p > 0:
            if rng.random() < self.size_p:
                image = rescale_long_side(image, self.size_min, self.size_max, rng)
        elif rng.random() < self.downscale_p:
            image = scale_image(image, rng.uniform(self.downscale_min, 1.0))
        if rng.random() < self.blur_p:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.1, self.blur_max)))
        if not native or local.size == image.size:
            local = None  # the same picture (nothing rescaled): no second re-encode
        if rng.random() < self.jpeg_p:
            codecs = [self._codec(rng)]
            if self.chain_p > 0 and rng.random() < self.chain_p:
                codecs.append(self._codec(rng))
            for fmt, quality in codecs:
                image = encoded_roundtrip(image, fmt, quality)
                if local is not None:
                    local = encoded_roundtrip(local, fmt, quality)
        if rng.random() < self.flip_p:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if local is not None:
                local = local.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image, image if local is None else local

    def _codec(self, rng: np.random.Generator) -> tuple[str, int]:
        """One re-encode's format and quality."""
        if self.webp_share > 0 and rng.random() < self.webp_share:
            return "WEBP", int(rng.integers(self.jpeg_min, self.jpeg_max + 1))
        return "JPEG", int(rng.integers(self.jpeg_min, self.jpeg_max + 1))


def augment_for(reencode: str, **size: float) -> Augment:
    """The training augmentation of a re-encode recipe (``config.REENCODE_MODES``: ``jpeg``, JPEG
    only; ``mixed``, JPEG or WebP, some chained), with the size-aware rescale options."""
    if reencode == "mixed":
        return Augment(webp_share=0.35, chain_p=0.25, **size)
    return Augment(**size)


def rescale_long_side(image: Image.Image, low: int, high: int, rng: np.random.Generator) -> Image.Image:
    """Resize so that the long side is log-uniform in [low, min(high, long side)]; images
    whose long side is already at most ``low`` are returned as they are."""
    long_side = max(image.size)
    top = min(high, long_side)
    if long_side <= low:
        return image
    target = int(round(math.exp(rng.uniform(math.log(low), math.log(top)))))
    if target >= long_side:
        return image
    return scale_image(image, target / long_side)


def jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    return encoded_roundtrip(image, "JPEG", quality)


def encoded_roundtrip(image: Image.Image, fmt: str, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(encoded_bytes(image, fmt, quality))).convert("RGB")


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    return encoded_bytes(image, "JPEG", quality)


def encoded_bytes(image: Image.Image, fmt: str, quality: int) -> bytes:
    """``image`` saved as ``fmt`` (JPEG or WEBP) at ``quality``."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=int(quality))
    return buf.getvalue()


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator behind one training sample's augmentation and crop placement."""
    return np.random.default_rng([seed, epoch, index, 0xA06])
