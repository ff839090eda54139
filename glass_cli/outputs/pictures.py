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


VERDICT_WORDS = {"ai": "AI", "uncertain": "uncertain", "real": "real"}


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


def box_groups(result: ScanResult) -> list[tuple[list[int], CropScore]]:
    """The crops by distinct box: (ranks, the best-ranked crop of that box), best first. On a
    picture smaller than the grid every crop may be the whole picture; it is drawn once."""
    groups: dict[tuple[int, ...], tuple[list[int], CropScore]] = {}
    for rank, crop in ranked(result):
        groups.setdefault(tuple(crop.box), ([], crop))[0].append(rank)
    return list(groups.values())


def rank_tag(ranks: list[int]) -> str:
    return ",".join(map(str, ranks)) if len(ranks) < 3 else f"{ranks[0]}-{ranks[-1]}"


def _header(result: ScanResult, width: int, colour) -> Image.Image:
    """File name, P(AI), verdict, threshold and model: a PNG passed on alone keeps its context."""
    font = _font(max(14, round(width / 60)))
    name = Path(result.path).name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    lines = [(name, (20, 20, 20)),
             (f"P(AI) {result.p_ai:.3f}: {VERDICT_WORDS.get(result.verdict, result.verdict)} at threshold "
              f"{result.threshold:g}; model {result.model_id}", colour)]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    height = sum(probe.textbbox((0, 0), t, font=font)[3] + 4 for t, _ in lines) + 10
    out = Image.new("RGB", (width, height), (255, 255, 255))
    draw, y = ImageDraw.Draw(out), 5
    for text, fill in lines:
        draw.text((8, y), text, fill=fill, font=font)
        y += draw.textbbox((0, 0), text, font=font)[3] + 4
    return out


def _strip(result: ScanResult, crop_size: int | None, colour, height: int) -> Image.Image | None:
    """The top crops at the size the model saw them (native pixels; a larger window shrunk to
    ``crop_size``), each under its rank and weight, in a column beside the picture."""
    expl = result.explanation
    if not expl.crops:
        return None
    side = crop_size or max(max(c.size) for c in expl.crops)
    font = _font(max(12, side // 16))
    caption = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), "1: 0.000", font=font)[3] + 6
    fits = max(1, (max(height, side + caption) + 8) // (side + caption + 8))
    shown = box_groups(result)[:max(4, fits)]  # at least the top 4, more when the picture is tall enough
    out = Image.new("RGB", (side + 16, len(shown) * (side + caption + 8) + 8), (255, 255, 255))
    draw, y = ImageDraw.Draw(out), 8
    index = {tuple(c.box): i for i, c in enumerate(result.crops)}
    for ranks, crop in shown:
        picture = expl.crops[index[tuple(crop.box)]]
        if max(picture.size) > side:
            picture = picture.resize((side, side), Image.Resampling.BOX)
        draw.text((8, y), f"{rank_tag(ranks)}: {crop.weight:.3f}", fill=colour, font=font)
        y += caption
        out.paste(picture, (8, y))
        draw.rectangle((7, y - 1, 8 + picture.width, y + picture.height), outline=colour, width=1)
        y += side + 8
    return out


def overlay(result: ScanResult, crop_size: int | None = None) -> Image.Image:
    """What the model looked at, in one picture: a header (file, P(AI), verdict, threshold,
    model), the preview with every distinct crop box outlined in the verdict's colour and
    numbered by rank (1 = most attention; the fill light and growing with the weight), the top
    crops at the size the model saw them in a column beside it, and a legend below (rank,
    weight, box and native size of each crop, the sampling path).

    On a large photo a 224 px crop is a few pixels of the preview: its box keeps a visible
    minimum size and its number sits outside it, and the column shows its pixels. Crops
    overlap (a native crop inside a window of twice its size), so the fills are blended one
    over the other and every outline and number is drawn after all of them."""
    colour = VERDICT_COLOURS.get(result.verdict, (128, 128, 128))
    body = annotated(result)
    strip = _strip(result, crop_size, colour, body.height)
    if strip is not None:
        joined = Image.new("RGB", (body.width + strip.width, max(body.height, strip.height)), (255, 255, 255))
        joined.paste(body, (0, 0))
        joined.paste(strip, (body.width, 0))
        body = joined
    body = _with_legend(body, result, colour, crop_size)
    header = _header(result, body.width, colour)
    out = Image.new("RGB", (body.width, header.height + body.height), (255, 255, 255))
    out.paste(header, (0, 0))
    out.paste(body, (0, header.height))
    return out


def annotated(result: ScanResult) -> Image.Image:
    """The preview with the crop boxes drawn on it (``overlay``'s picture)."""
    expl = result.explanation
    if expl is None:
        raise ValueError(f"{result.path}: scanned without explain=True, no preview kept")
    colour = VERDICT_COLOURS.get(result.verdict, (128, 128, 128))
    picture = expl.preview.convert("RGBA")
    groups = box_groups(result)
    top = groups[0][1].weight if groups else 1.0
    line = max(2, round(max(picture.size) / 300))
    font = _font(max(12, round(max(picture.size) / 40)))
    least = 6 * line  # a box never drawn smaller than this, however small it is on the preview
    boxes = []
    for ranks, c in reversed(groups):  # rank 1 last, on top
        box = [round(v * expl.scale) for v in c.box]
        for lo, hi in ((0, 2), (1, 3)):
            if box[hi] - box[lo] < least:
                middle = (box[lo] + box[hi]) // 2
                box[lo], box[hi] = middle - least // 2, middle + least // 2
        boxes.append((ranks, c, box))
    for _, c, box in boxes:
        fill = Image.new("RGBA", picture.size, (0, 0, 0, 0))
        ImageDraw.Draw(fill).rectangle(box, fill=colour + (round(70 * c.weight / (top or 1.0)),))
        picture = Image.alpha_composite(picture, fill)
    draw = ImageDraw.Draw(picture)
    for _, _, box in boxes:
        draw.rectangle(box, outline=colour + (255,), width=line)
    for ranks, _, box in boxes:
        tag = f" {rank_tag(ranks)} "
        width, height = draw.textbbox((0, 0), tag, font=font)[2:]
        small = box[2] - box[0] < 2 * width or box[3] - box[1] < 2 * height
        x = box[0] + line if not small else min(box[2] + line, picture.width - width)  # beside a small box, not over it
        y = box[1] + line if not small else max(0, box[1] - height - line)
        left, upper, right, lower = draw.textbbox((x, y), tag, font=font)
        draw.rectangle((left - 1, upper - 1, right + 1, lower + 1), fill=colour + (255,))  # drawn, not blended: opaque
        draw.text((x, y), tag, fill=(255, 255, 255, 255), font=font)
    return picture.convert("RGB")


def legend_lines(result: ScanResult, crop_size: int | None = None) -> list[str]:
    """The text under an overlay: the crops by attention rank, or that there are none."""
    if not result.crops:  # a resize-only model (the shipped default) looks at no crops
        return ["no crops: a resize-only model judged the whole picture"]
    lines = ["crops ranked by attention weight"] + [
        f"{rank}: weight {c.weight:.3f}  box ({c.box[0]},{c.box[1]})-({c.box[2]},{c.box[3]})  {crop_label(c, crop_size)}"
        for rank, c in ranked(result)]
    if result.sampling == "fallback":
        lines.append("fallback sampling: image too small for a grid of distinct crops, so crops overlap")
    return lines


def _with_legend(picture: Image.Image, result: ScanResult, colour, crop_size) -> Image.Image:
    font = _font(max(14, round(picture.width / 60)))
    lines = legend_lines(result, crop_size)
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
