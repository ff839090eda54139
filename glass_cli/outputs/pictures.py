"""Pictures that show why a file was scored as it was: attention overlays and crop PNGs."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from glass_cli.io import atomic
from glass_cli.results import CropScore, ScanResult

VERDICT_COLOURS = {
    "ai": (220, 30, 30),
    "uncertain": (230, 150, 0),
    "real": (30, 120, 220),
}
"""Box colour by the file's verdict: red only on files flagged as AI."""


def ranked(result: ScanResult) -> list[tuple[int, CropScore]]:
    """(rank, crop) from the most attended crop down; rank 1 is the highest weight."""
    return list(enumerate(result.ranked_crops(), 1))


def crop_label(crop: CropScore, crop_size: int | None = None) -> str:
    """'448x448 px, shrunk to 224' for a crop of a larger scale, '224x224 px' for a native one."""
    w, h = crop.box[2] - crop.box[0], crop.box[3] - crop.box[1]
    shrink = f", shrunk to {crop_size}" if crop_size and max(w, h) > crop_size else ""
    return f"{w}x{h} px{shrink}"


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def overlay(result: ScanResult, crop_size: int | None = None) -> Image.Image:
    """The preview with every crop box outlined in the verdict's colour and numbered by rank
    (1 = most attention), the fill light and growing with the weight, and a legend strip
    below: rank, weight, box and native size of each crop, and the sampling path.

    Crops overlap (a native crop inside a window of twice its size), so the fills are blended
    one over the other and every outline and number is drawn after all of them: no box hides
    another."""
    expl = result.explanation
    if expl is None:
        raise ValueError(f"{result.path}: scanned without explain=True, no preview kept")
    colour = VERDICT_COLOURS.get(result.verdict, (128, 128, 128))
    picture = expl.preview.convert("RGBA")
    order = ranked(result)
    top = order[0][1].weight if order else 1.0
    line = max(2, round(max(picture.size) / 300))
    font = _font(max(12, round(max(picture.size) / 40)))
    boxes = [(rank, c, [round(v * expl.scale) for v in c.box]) for rank, c in reversed(order)]  # rank 1 last, on top
    for _, c, box in boxes:
        fill = Image.new("RGBA", picture.size, (0, 0, 0, 0))
        ImageDraw.Draw(fill).rectangle(box, fill=colour + (round(70 * c.weight / (top or 1.0)),))
        picture = Image.alpha_composite(picture, fill)
    draw = ImageDraw.Draw(picture)
    for _, _, box in boxes:
        draw.rectangle(box, outline=colour + (255,), width=line)
    for rank, _, box in boxes:
        tag = f" {rank} "
        x, y = box[0] + line, box[1] + line
        left, upper, right, lower = draw.textbbox((x, y), tag, font=font)
        draw.rectangle((left - 1, upper - 1, right + 1, lower + 1), fill=colour + (255,))  # drawn, not blended: opaque
        draw.text((x, y), tag, fill=(255, 255, 255, 255), font=font)
    return _with_legend(picture.convert("RGB"), result, order, colour, crop_size)


def _with_legend(picture: Image.Image, result: ScanResult, order, colour, crop_size) -> Image.Image:
    font = _font(max(14, round(picture.width / 60)))
    head = f"P(AI) {result.p_ai:.3f}, verdict {result.verdict}; crops ranked by attention weight"
    lines = [head] + [f"{rank}: weight {c.weight:.3f}  box ({c.box[0]},{c.box[1]})-({c.box[2]},{c.box[3]})  "
                      f"{crop_label(c, crop_size)}" for rank, c in order]
    if result.sampling == "fallback":
        lines.append("fallback sampling: image too small for a grid of distinct crops, so crops overlap")
    probe = ImageDraw.Draw(picture)
    height = sum(probe.textbbox((0, 0), t, font=font)[3] + 4 for t in lines) + 8
    width = max(picture.width, max(probe.textbbox((0, 0), t, font=font)[2] for t in lines) + 16)
    out = Image.new("RGB", (width, picture.height + height), (255, 255, 255))
    out.paste(picture, (0, 0))
    draw = ImageDraw.Draw(out)
    y = picture.height + 4
    for i, text in enumerate(lines):
        draw.text((8, y), text, fill=colour if i == 0 else (20, 20, 20), font=font)
        y += draw.textbbox((0, 0), text, font=font)[3] + 4
    return out


def _safe_stem(path: str) -> str:
    stem = Path(path).stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60] or "image"


def file_prefix(result: ScanResult) -> str:
    """Unique, readable prefix for a file's pictures: name stem + a hash of its path."""
    digest = hashlib.sha256(result.path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{_safe_stem(result.path)}-{digest}"


def save_crops(result: ScanResult, folder: str | Path, top: int | None = None, crop_size: int | None = None) -> list[Path]:
    """Write the file's crops (highest attention first) and its overlay as PNG; returns paths.

    Names: ``<stem>-<hash>.crop<rank>-w<weight>.png`` and ``<stem>-<hash>.overlay.png``.
    """
    expl = result.explanation
    if expl is None:
        raise ValueError(f"{result.path}: scanned without explain=True, no crops kept")
    folder = Path(folder)
    prefix = file_prefix(result)
    order = sorted(range(len(result.crops)), key=lambda i: result.crops[i].weight, reverse=True)[:top]
    written = []
    for rank, i in enumerate(order, 1):
        name = f"{prefix}.crop{rank}-w{result.crops[i].weight:.3f}.png"
        written.append(atomic.write_bytes(folder / name, png_bytes(expl.crops[i])))
    written.append(atomic.write_bytes(folder / f"{prefix}.overlay.png", png_bytes(overlay(result, crop_size))))
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
