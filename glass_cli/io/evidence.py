"""Provenance evidence read from a file's metadata, reported beside the pixel score.

The model judges pixels; this module reports what the file *says* about itself: a C2PA
manifest (read with the Content Authenticity Initiative's c2pa-python), generation
parameters that Stable Diffusion front-ends write into PNG text chunks (A1111/Forge
"parameters", ComfyUI "prompt"/"workflow", InvokeAI, NovelAI, Fooocus, ...), EXIF
Software/Make/Model/UserComment, and IPTC DigitalSourceType values in XMP. Metadata is
trivially stripped or forged, so evidence is never folded into P(AI): it is shown next to it.

Everything works from the file's bytes (already read once by scan), with bounded work: text
chunks are decompressed up to a cap, values are cut at ``MAX_VALUE`` characters.
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from glass_cli.io.damage import damage_findings, exif_problem

MAX_VALUE = 65536
"""Longest value kept in full (a ComfyUI workflow is typically 10-60 kB)."""
_MAX_INFLATE = 1 << 20

AI_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}
"""IPTC digital source types that declare generative-AI content."""

# PNG text keys written by generation front-ends (key -> tool that writes it).
_GENERATOR_KEYS = {
    "parameters": "A1111/Forge/SD.Next",
    "prompt": "ComfyUI",
    "workflow": "ComfyUI",
    "invokeai_metadata": "InvokeAI",
    "invokeai_graph": "InvokeAI",
    "sd-metadata": "InvokeAI",
    "dream": "InvokeAI",
    "fooocus_scheme": "Fooocus",
    "generation_data": "Civitai",
    "novelai": "NovelAI",
}
# Words in Software / CreatorTool / comment values that name image generators.
_GENERATOR_WORDS = re.compile(
    r"novelai|midjourney|dall[\-·ꞏ ]?e|stable ?diffusion|firefly|imagen|comfyui|automatic1111|"
    r"invokeai|fooocus|flux\.?1|leonardo\.ai|ideogram|gpt-?image|gemini|chatgpt|sora",
    re.IGNORECASE,
)
_A1111_TEXT = re.compile(r"Steps: \d+.*Sampler: ", re.DOTALL)
_DST = re.compile(r"digitalsourcetype/([A-Za-z]+)")


@dataclass(frozen=True)
class Finding:
    source: str
    """Where it was found: c2pa, png-text, exif, xmp, jpeg-comment; ``damage`` for a problem
    with the file that glass worked around (see io.damage)."""
    key: str
    value: str
    ai: bool = False
    """True when this item on its own declares AI generation."""
    label: str = ""
    """A few words for the table column."""

    def to_dict(self) -> dict:
        return asdict(self)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + f"... [{len(text) - MAX_VALUE} more characters]"


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    return d.decompress(data, _MAX_INFLATE)


# ------------------------------------------------------------------ container walkers


def jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of each JPEG marker segment before the image data."""
    if not data.startswith(b"\xff\xd8"):
        return
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more metadata
            return
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return
        yield marker, data[i + 4 : i + 2 + length]
        i += 2 + length


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each PNG chunk up to IEND."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return
    i, n = 8, len(data)
    while i + 8 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        ctype = data[i + 4 : i + 8]
        yield ctype, data[i + 8 : i + 8 + length]
        if ctype == b"IEND":
            return
        i += 12 + length


def png_text(data: bytes) -> Iterator[tuple[str, str]]:
    """(keyword, text) from tEXt, zTXt and iTXt chunks."""
    for ctype, payload in png_chunks(data):
        try:
            if ctype == b"tEXt":
                key, _, text = payload.partition(b"\0")
                yield key.decode("latin-1"), text.decode("latin-1")
            elif ctype == b"zTXt":
                key, _, rest = payload.partition(b"\0")
                yield key.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
            elif ctype == b"iTXt":
                key, _, rest = payload.partition(b"\0")
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\0")
                _tkey, _, text = rest.partition(b"\0")
                yield key.decode("latin-1"), (_inflate(text) if compressed else text).decode("utf-8", "replace")
        except (zlib.error, IndexError, UnicodeDecodeError):
            continue


# ------------------------------------------------------------------ readers


def _png_findings(data: bytes) -> list[Finding]:
    out = []
    for key, text in png_text(data):
        if key == "XML:com.adobe.xmp":
            out.extend(_xmp_findings(text))
            continue
        tool = _GENERATOR_KEYS.get(key.lower())
        ai = tool is not None or bool(_A1111_TEXT.search(text)) or (
            key.lower() in ("software", "source", "comment", "description") and bool(_GENERATOR_WORDS.search(text))
        )
        if tool is None and ai:
            m = _GENERATOR_WORDS.search(text)
            tool = m.group(0) if m else "generation parameters"
        label = f"PNG {key} ({tool})" if ai else ""
        out.append(Finding("png-text", key, _cut(text), ai, label))
    return out


def _xmp_findings(xmp: str) -> list[Finding]:
    out = []
    for term in dict.fromkeys(_DST.findall(xmp)):
        ai = term in AI_SOURCE_TYPES
        out.append(Finding("xmp", "DigitalSourceType", term, ai, f"XMP {term}"))
    m = re.search(r"CreatorTool(?:=\"|>)([^\"<]{1,200})", xmp)
    if m:
        ai = bool(_GENERATOR_WORDS.search(m.group(1)))
        out.append(Finding("xmp", "CreatorTool", m.group(1), ai, f"XMP CreatorTool {m.group(1)}" if ai else ""))
    return out


_EXIF_TAGS = {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x013B: "Artist", 0x010E: "ImageDescription"}


def _exif_findings(exif) -> list[Finding]:
    out = []
    for tag, name in _EXIF_TAGS.items():
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not value or not str(value).strip("\0 "):
            continue
        value = str(value).strip("\0 ")
        ai = name in ("Software", "ImageDescription", "Artist") and bool(_GENERATOR_WORDS.search(value))
        out.append(Finding("exif", name, _cut(value), ai, f"EXIF {name} {value[:40]}" if ai else ""))
    try:
        comment = exif.get_ifd(0x8769).get(0x9286)  # Exif IFD UserComment
    except Exception:
        comment = None
    if comment:
        if isinstance(comment, bytes):
            head, body = comment[:8], comment[8:]
            text = body.decode("utf-16-be" if head.startswith(b"UNICODE") else "latin-1", "replace").strip("\0 ")
        else:
            text = str(comment).strip("\0 ")
        if text:
            ai = bool(_A1111_TEXT.search(text) or _GENERATOR_WORDS.search(text))
            out.append(Finding("exif", "UserComment", _cut(text), ai, "EXIF UserComment (generation parameters)" if ai else ""))
    return out


def _c2pa_findings(data: bytes, mime: str | None) -> list[Finding]:
    if b"c2pa" not in data or b"jumb" not in data:
        return []
    present = Finding("c2pa", "manifest", "present", False, "C2PA manifest")
    if mime is None:
        return [present]
    try:
        import c2pa

        with c2pa.Reader(mime, io.BytesIO(data)) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state()
    except Exception as exc:  # unreadable or unsupported manifest: presence still counts
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Finding("c2pa", "manifest", f"present, unreadable ({first[:200]})", False, "C2PA manifest (unreadable)")]
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    generator = manifest.get("claim_generator") or ", ".join(
        " ".join(str(v) for v in (g.get("name"), g.get("version")) if v) for g in manifest.get("claim_generator_info", [])
    )
    out = [Finding("c2pa", "claim_generator", generator or "(not stated)", False, f"C2PA: {generator or 'manifest'}")]
    sources = []
    for assertion in manifest.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions", []):
                dst = str(action.get("digitalSourceType", ""))
                if dst:
                    sources.append(dst.rsplit("/", 1)[-1])
    for term in dict.fromkeys(sources):
        ai = term in AI_SOURCE_TYPES
        out.append(Finding("c2pa", "digitalSourceType", term, ai, f"C2PA {term}"))
    sig = manifest.get("signature_info") or {}
    if sig.get("issuer") or sig.get("common_name"):
        out.append(Finding("c2pa", "signer", f"{sig.get('common_name', '')} ({sig.get('issuer', '')})".strip()))
    out.append(Finding("c2pa", "validation", str(state)))
    return out


_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
         "HEIF": "image/heif", "AVIF": "image/avif", "GIF": "image/gif"}


def _exif_from(payload: bytes):
    from PIL import Image

    exif = Image.Exif()
    exif.load(payload)
    return exif


def _exif_block(payload: bytes) -> list[Finding]:
    """Findings of one EXIF block; a block that is structurally broken (``damage.exif_problem``)
    or that Pillow cannot parse is reported as damage beside whatever could be read."""
    problem = exif_problem(payload)
    try:
        findings = _exif_findings(_exif_from(payload))
    except Exception as exc:  # any parser failure is the finding
        findings, problem = [], problem or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if problem:
        findings.append(Finding("damage", "exif", f"the EXIF block does not parse ({problem[:120]}); pixels scored without it",
                                label="unreadable EXIF"))
    return findings


def read_evidence(data: bytes, image_format: str | None = None) -> list[Finding]:
    """Provenance findings from a file's bytes; ``image_format`` is Pillow's format name if
    known. Best effort: a malformed metadata block is skipped, never raised. Container damage
    that glass worked around (``io.damage``) and EXIF blocks that do not parse come out as
    findings of source ``damage``."""
    findings: list[Finding] = []
    try:
        findings += [Finding("damage", key, value, label=label) for key, value, label in damage_findings(data)]
        if data.startswith(b"\xff\xd8"):
            image_format = "JPEG"
            for marker, payload in jpeg_segments(data):
                if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
                    findings.extend(_exif_block(payload))
                elif marker == 0xE1 and payload.startswith(b"http://ns.adobe.com/xap/1.0/\0"):
                    findings.extend(_xmp_findings(payload[29:].decode("utf-8", "replace")))
                elif marker == 0xFE:
                    text = payload.decode("utf-8", "replace").strip("\0 ")
                    ai = bool(_GENERATOR_WORDS.search(text) or _A1111_TEXT.search(text))
                    findings.append(Finding("jpeg-comment", "COM", _cut(text), ai, "JPEG comment (generator)" if ai else ""))
        elif data.startswith(b"\x89PNG"):
            image_format = "PNG"
            findings.extend(_png_findings(data))
            for ctype, payload in png_chunks(data):
                if ctype == b"eXIf":
                    findings.extend(_exif_block(payload))
        else:
            from glass_cli.io.image import open_image

            with open_image(io.BytesIO(data)) as img:  # header only, no pixel decode
                image_format = image_format or img.format
                xmp = img.info.get("xmp")
                if xmp:
                    findings.extend(_xmp_findings(xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp)))
                findings.extend(_exif_findings(img.getexif()))
    except Exception:  # metadata is best effort: a malformed block must not cost the scan
        pass
    findings.extend(_c2pa_findings(data, _MIME.get(image_format or "")))
    return findings


def summary(findings: list[Finding], limit: int = 2) -> str:
    """A short table cell: AI-declaring items first, then C2PA, then camera make/model, then
    damage glass worked around."""
    labels = [f.label for f in findings if f.ai and f.label]
    labels += [f.label for f in findings if not f.ai and f.source == "c2pa" and f.label]
    if not labels:
        camera = " ".join(f.value for f in findings if f.source == "exif" and f.key in ("Make", "Model"))
        if camera:
            labels.append(f"EXIF camera: {camera[:40]}")
    labels += [f.label for f in findings if f.source == "damage" and f.label]
    labels = list(dict.fromkeys(labels))
    extra = f" (+{len(labels) - limit})" if len(labels) > limit else ""
    return "; ".join(labels[:limit]) + extra


def declares_ai(findings: list[Finding]) -> bool:
    return any(f.ai for f in findings)
