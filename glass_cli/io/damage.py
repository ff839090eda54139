"""Damage that leaves the pixels intact: found, worked around, and reported as evidence.

Real collections hold files that a strict decoder refuses although every pixel is there:
a PNG whose text chunk was rewritten without its CRC (workflow-embedding tools do this), a
JPEG or PNG with bytes appended after the end of the image (a phone's motion-photo video,
a download that was concatenated), an EXIF block that does not parse. glass scores such
files and says what is wrong with them, in one ``Finding`` per problem (source ``damage``).

Damage to the pixel data itself stays an error: a bad CRC on a critical PNG chunk (IHDR,
PLTE, IDAT, IEND) or a truncated stream is not repaired, because the picture glass would
score might not be the one in the file.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from glass_cli.errors import GlassError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""A marker inside entropy-coded JPEG data: 0xFF not followed by a stuffed zero, a restart
number or another fill byte."""


@dataclass(frozen=True)
class Chunk:
    ctype: bytes
    start: int
    """Offset of the chunk's length field."""
    end: int
    """Offset just past its CRC."""
    crc_ok: bool

    @property
    def ancillary(self) -> bool:
        """Bit 5 of the first type byte (a lower-case letter): decoders may ignore the chunk."""
        return bool(self.ctype[0] & 0x20)

    @property
    def name(self) -> str:
        return self.ctype.decode("latin-1")


def walk_png(data: bytes) -> tuple[list[Chunk], int | None]:
    """Every complete chunk of a PNG up to IEND, and the offset just past IEND (None when the
    stream stops before it: truncated, or a broken length field)."""
    chunks: list[Chunk] = []
    i, n = len(PNG_SIGNATURE), len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        end = i + 12 + length
        if length > 0x7FFFFFFF or end > n:
            return chunks, None
        ctype = data[i + 4 : i + 8]
        crc = int.from_bytes(data[end - 4 : end], "big")
        chunks.append(Chunk(ctype, i, end, zlib.crc32(data[i + 4 : end - 4]) == crc))
        if ctype == b"IEND":
            return chunks, end
        i = end
    return chunks, None


class PixelDamage(GlassError, ValueError):
    """A PNG whose pixel data cannot be trusted; the message says which chunk."""


def repair_png(data: bytes) -> bytes:
    """``data`` without the ancillary chunks whose CRC is wrong: the same object when there are
    none or when the file is not a PNG. Raises PixelDamage when a critical chunk's CRC is
    wrong (Pillow itself does not check the CRC of IDAT chunks): no repair is attempted
    where the pixels themselves may be damaged."""
    if not data.startswith(PNG_SIGNATURE):
        return data
    chunks, _ = walk_png(data)
    critical = next((c for c in chunks if not c.ancillary and not c.crc_ok), None)
    if critical is not None:
        raise PixelDamage(f"the PNG {critical.name} chunk at byte {critical.start} has a wrong CRC")
    bad = [c for c in chunks if c.ancillary and not c.crc_ok]
    if not bad:
        return data
    parts, at = [], 0
    for chunk in bad:
        parts.append(data[at : chunk.start])
        at = chunk.end
    parts.append(data[at:])
    return b"".join(parts)


def jpeg_end(data: bytes) -> int | None:
    """Offset just past the JPEG's end-of-image marker, or None when there is none (a
    truncated file). Walks the marker segments and the entropy-coded scans between them,
    so markers inside an embedded thumbnail (within APP1) are not mistaken for the end."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i, n = 2, len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:
            return i + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if i + 4 > n:
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker != 0xDA:
            continue
        found = _NEXT_MARKER.search(data, i)  # skip the entropy-coded data after a scan header
        if found is None:
            return None
        i = found.start()
    return None


_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
"""Bytes per value of each TIFF field type (EXIF is a TIFF structure)."""


def exif_problem(payload: bytes) -> str | None:
    """Why an EXIF block (JPEG APP1 with its ``Exif\\0\\0`` prefix, or a PNG eXIf chunk) is
    broken, or None: the TIFF header, the first IFD and every value it points to must lie
    inside the block. A structural check, so it gives the same answer in any thread (Pillow
    only warns on such blocks, and warnings cannot be told apart between threads)."""
    tiff = payload[6:] if payload.startswith(b"Exif\0\0") else payload
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return "no TIFF header"
    order = "little" if tiff[:2] == b"II" else "big"
    if int.from_bytes(tiff[2:4], order) != 42:
        return "bad TIFF magic number"
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return f"first IFD at byte {ifd} is past the block's end ({len(tiff)} bytes)"
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    if ifd + 2 + 12 * count > len(tiff):
        return f"first IFD claims {count} entries, more than the block holds"
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        size = _TIFF_SIZES.get(int.from_bytes(entry[2:4], order), 1) * int.from_bytes(entry[4:8], order)
        if size > 4 and int.from_bytes(entry[8:12], order) + size > len(tiff):
            return f"entry {i} points past the block's end"
    return None


def _size(n: int) -> str:
    return f"{n} byte{'s' if n != 1 else ''}" if n < 10_000 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _trailing(extra: bytes, where: str) -> Iterator[tuple[str, str, str]]:
    if not extra.strip(b"\0\xff"):  # zero or 0xFF padding to a block size is what many cameras write
        return
    what = "an appended MP4 video (a motion photo)" if extra[4:8] == b"ftyp" else "data glass does not read"
    yield "trailing-data", f"{_size(len(extra))} after the {where}: {what}", "data after image end"


def damage_findings(data: bytes) -> Iterator[tuple[str, str, str]]:
    """(key, value, label) for each problem of a PNG or JPEG container that leaves the pixels
    readable: ancillary PNG chunks with a wrong CRC, and data after the end of the image
    (padding with zero or 0xFF bytes, which cameras write, is not reported)."""
    if data.startswith(PNG_SIGNATURE):
        chunks, end = walk_png(data)
        for chunk in chunks:
            if chunk.ancillary and not chunk.crc_ok:
                yield ("bad-crc", f"the PNG {chunk.name} chunk at byte {chunk.start} has a wrong CRC; glass skipped it "
                       "and scored the pixels", f"damaged {chunk.name} chunk (skipped)")
        if end is not None:
            yield from _trailing(data[end:], "PNG's end (IEND)")
    elif data.startswith(b"\xff\xd8"):
        end = jpeg_end(data)
        if end is not None:
            yield from _trailing(data[end:], "JPEG's end-of-image marker")
