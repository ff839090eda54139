"""Pictures that show why a file was scored as it was: attention overlays and crop PNGs."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from PIL import Image, ImageDraw

from glass_cli.inference.scan import ScanResult
from glass_cli.io import atomic

BOX_COLOUR = (255, 40, 40)


def overlay(result: ScanResult) -> Image.Image:
    """The preview image with every crop box drawn, filled in proportion to its attention
    weight (the most attended crop most opaque) and outlined."""
    expl = result.explanation
    if expl is None:
        raise ValueError(f"{result.path}: scanned without explain=True, no preview kept")
    base = expl.preview.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    top = max((c.weight for c in result.crops), default=1.0) or 1.0
    width = max(2, round(max(base.size) / 300))
    for c in sorted(result.crops, key=lambda c: c.weight):
        box = [round(v * expl.scale) for v in c.box]
        strength = c.weight / top
        draw.rectangle(box, fill=BOX_COLOUR + (round(120 * strength),), outline=BOX_COLOUR + (255,), width=width)
    return Image.alpha_composite(base, layer).convert("RGB")


def _safe_stem(path: str) -> str:
    stem = Path(path).stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60] or "image"


def file_prefix(result: ScanResult) -> str:
    """Unique, readable prefix for a file's pictures: name stem + a hash of its path."""
    digest = hashlib.sha256(result.path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{_safe_stem(result.path)}-{digest}"


def save_crops(result: ScanResult, folder: str | Path, top: int | None = None) -> list[Path]:
    """Write the file's crops (highest attention first) and its overlay as PNG; returns paths.

    Names: ``<stem>-<hash>.crop<rank>-w<weight>.png`` and ``<stem>-<hash>.overlay.png``.
    """
    expl = result.explanation
    if expl is None:
        raise ValueError(f"{result.path}: scanned without explain=True, no crops kept")
    folder = Path(folder)
    prefix = file_prefix(result)
    order = sorted(range(len(result.crops)), key=lambda i: -result.crops[i].weight)[:top]
    written = []
    for rank, i in enumerate(order, 1):
        name = f"{prefix}.crop{rank}-w{result.crops[i].weight:.3f}.png"
        written.append(atomic.write_bytes(folder / name, png_bytes(expl.crops[i])))
    written.append(atomic.write_bytes(folder / f"{prefix}.overlay.png", png_bytes(overlay(result))))
    return written


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def thumbnail_jpeg(result: ScanResult, side: int = 360) -> bytes:
    """A small JPEG of the image (boxes are drawn over it by the HTML report)."""
    img = result.explanation.preview.copy()
    img.thumbnail((side, side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=82)
    return buf.getvalue()
