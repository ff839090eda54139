"""Invisible watermarks in the decoded pixels, reported as evidence beside the pixel score.

Metadata is lost on almost every upload; some generator pipelines also hide a fixed message
in the pixels themselves:

- the Stable Diffusion reference scripts (CompVis 1.x: ``StableDiffusionV1``; Stability AI
  2.x: ``SDV2``) and the SDXL pipelines (diffusers, and Stability AI's generative-models,
  a fixed 48-bit pattern) mark every output with the ``invisible-watermark`` package's
  "dwtDct" method;
- Adobe's TrustMark (the ``trustmark`` package, a neural encoder/decoder) carries the
  identifier that C2PA uses to recover stripped Content Credentials. Its models are
  downloaded from Adobe on first use, so it is read only when asked (``--trustmark``).

How the dwtDct mark is laid out (read from invisible-watermark 0.2.0; this module decodes
it with numpy alone, no OpenCV or PyWavelets): the picture, cut down to a multiple of 4
pixels, is converted to YUV with OpenCV's BT.601 weights and only the U plane carries the
mark. One Haar step turns each 2x2 pixel group into one approximation coefficient (the sum
of the four U values divided by 2). The approximation band is tiled into 4x4 blocks, that
is 8x8 pixels of the picture, taken in raster order; block n carries bit n mod L of an
L-bit message. In each block the coefficient of largest magnitude among the 15 after the
first is quantised with a step of 36 so that its magnitude lands a quarter step (bit 0) or
three quarters of a step (bit 1) into its bin. Reading takes that coefficient's magnitude
modulo 36: above half the step is a 1. Each bit is a vote of the blocks that carry it
(against the picture's own share of ones, see ``_match``), and the finding reports how
many of the message's bits agree.

Two details of how the pipelines call the encoder matter when reading:

- the chroma offset: OpenCV adds 128 to U for 8-bit pictures (the SD scripts encode the
  saved 8-bit image) but 0.5 for floating-point ones (the SDXL pipelines encode float
  arrays before quantising); the offset moves every coefficient and changes which one is
  largest, so each message is read with the offset its pipeline used;
- channel order: OpenCV expects BGR; the SD scripts and generative-models convert first,
  diffusers hands over RGB as it is, so red and blue are swapped in its conversion.

The mark is tied to the pixel grid: it survives lossless saving, only partly JPEG, and not
a resize or a crop that moves the 8-pixel grid (docs/experiments/watermarks.md has the
measurements behind the thresholds below). Reading is cheap: a sample of
``SCREEN_BLOCKS`` blocks in whole rows spread over the picture, and up to ``MAX_BLOCKS``
when that sample looks marked (2.7 ms for a small photo, 8.4 ms for a 12 MP one, on two
busy cores).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from glass_cli.errors import GlassError
from glass_cli.io.evidence import Finding

SOURCE = "watermark"
"""Finding.source of every watermark finding."""

STEP = 36.0
"""Quantisation step of the marked coefficient (invisible-watermark's default for U)."""
MIN_AREA = 256 * 256
"""The encoder refuses pictures with fewer pixels; smaller ones are not read."""
SCREEN_BLOCKS = 1 << 11
"""Blocks (8x8 pixels) of the first read: whole rows, evenly spread (a 0.13 MP sample,
15 votes per bit of the longest message)."""
MAX_BLOCKS = 1 << 14
"""Blocks of the second read, made only when the first looks like a mark: every block of
an SD output (512 or 768 square) and of an SDXL output (about one megapixel: 1024 square,
1152x896, 1344x768, ...); a 12 MP photo costs 1 MP."""


@dataclass(frozen=True)
class Layout:
    """How a pipeline handed its pixels to the encoder."""

    name: str
    swap_red_blue: bool
    """True when RGB pixels were passed where BGR was expected."""
    offset: float
    """The chroma offset OpenCV used: 128 for 8-bit input, 0.5 for floating-point input."""


SCRIPTS_8BIT = Layout("8-bit BGR", False, 128.0)
DIFFUSERS_FLOAT = Layout("float RGB-as-BGR", True, 0.5)
SGM_FLOAT = Layout("float BGR", False, 0.5)


@dataclass(frozen=True)
class Message:
    key: str
    text: str
    """The message as written in the pipeline's source (text, or the bit string)."""
    bits: tuple[int, ...]
    writer: str
    label: str
    layouts: tuple[Layout, ...]
    min_agree: int
    """Bits that must agree for a finding (chosen on real photos and marked images, see
    docs/experiments/watermarks.md)."""
    screen: int
    """Bits agreeing in the first, sampled read that make the whole picture be read
    (about 2 standard deviations above what unmarked pictures give)."""

    @property
    def length(self) -> int:
        return len(self.bits)


def _text_bits(text: str) -> tuple[int, ...]:
    return tuple(int(b) for byte in text.encode("utf-8") for b in f"{byte:08b}")


SDXL_PATTERN = "101100111110110010010000011110111011000110011110"

MESSAGES: tuple[Message, ...] = (
    Message("sd1", "StableDiffusionV1", _text_bits("StableDiffusionV1"),
            "Stable Diffusion 1.x reference scripts (CompVis)", "SD 1.x watermark", (SCRIPTS_8BIT,), 100, 80),
    Message("sd2", "SDV2", _text_bits("SDV2"),
            "Stable Diffusion 2.x reference scripts (Stability AI)", "SD 2.x watermark", (SCRIPTS_8BIT,), 29, 22),
    Message("sdxl", "0x" + f"{int(SDXL_PATTERN, 2):012x}", tuple(int(b) for b in SDXL_PATTERN),
            "SDXL pipelines (diffusers, Stability AI generative-models)", "SDXL watermark", (DIFFUSERS_FLOAT, SGM_FLOAT), 42, 31),
)


@dataclass(frozen=True)
class Reading:
    """How well one message matches one picture (the best of its layouts)."""

    message: Message
    layout: Layout
    agree: int
    """Message bits that the majority votes reproduce."""
    blocks: int
    """Blocks that voted."""
    block_agree: float
    """Share of those blocks whose own bit is the message bit they carry (about 0.5 when
    unmarked, for a balanced message)."""

    @property
    def found(self) -> bool:
        return self.agree >= self.message.min_agree

    def finding(self) -> Finding:
        m = self.message
        value = (f"{m.text}: {self.agree}/{m.length} bits agree ({100 * self.agree / m.length:.0f}%), "
                 f"{100 * self.block_agree:.0f}% of {self.blocks} blocks; the invisible-watermark dwtDct mark of the "
                 f"{m.writer}, {self.layout.name} layout")
        return Finding(SOURCE, m.key, value, True, m.label)


# ------------------------------------------------------------------ dwtDct decoding


def _block_rows(rows: int, cols: int, budget: int = 0) -> np.ndarray:
    """Which rows of blocks to read: all of them, or ``budget`` (default MAX_BLOCKS) blocks'
    worth of whole rows spread evenly from the first to the last."""
    wanted = max(1, (budget or MAX_BLOCKS) // cols)
    if rows <= wanted:
        return np.arange(rows)
    return np.unique(np.linspace(0, rows - 1, wanted).round().astype(np.int64))


def _strips(image: Image.Image, rows: np.ndarray, cols: int) -> np.ndarray:
    """The 8-pixel strips of the chosen block rows, stacked: uint8 (8 * len(rows), 8 * cols, 3)."""
    runs, start = [], 0
    for k in range(1, len(rows) + 1):  # consecutive rows are cropped together
        if k == len(rows) or rows[k] != rows[k - 1] + 1:
            runs.append((int(rows[start]), int(rows[k - 1]) + 1))
            start = k
    parts = [np.asarray(image.crop((0, 8 * a, 8 * cols, 8 * b)))[..., :3] for a, b in runs]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def _quads(plane: np.ndarray) -> np.ndarray:
    """Sums over each 2x2 pixel group (the Haar approximation is half of that)."""
    return plane[0::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 0::2] + plane[1::2, 1::2]


_LUMA_8BIT = np.array([4899, 9617, 1868], dtype=np.float32)
"""OpenCV's 14-bit fixed-point BT.601 luma weights for 8-bit input (R, G, B)."""


def _scripts_band(rgb: np.ndarray) -> np.ndarray:
    """Approximation band of the U plane of 8-bit BGR input (``rgb``: float32 RGB). OpenCV
    works in 14-bit fixed point, rounding Y to a whole number before U (this equals
    cv2.cvtColor on every value of a random million pixels); every intermediate here is a
    whole number below 2**24, so float32 holds it exactly."""
    scale = np.float32(1 / 16384)
    luma = np.floor((rgb @ _LUMA_8BIT + np.float32(8192)) * scale)
    u = np.floor(((rgb[..., 2] - luma) * np.float32(8061) + np.float32((128 << 14) + 8192)) * scale)
    return _quads(u) * np.float32(0.5)


def _float_band(quads: np.ndarray, layout: Layout) -> np.ndarray:
    """Approximation band of the U plane of floating-point input: U is linear in the pixel
    values there, so it is formed from the 2x2 sums of each channel (a quarter of the work)."""
    red, green, blue = -0.492 * 0.299, -0.492 * 0.587, 0.492 * (1 - 0.114)
    weights = np.array([blue, green, red] if layout.swap_red_blue else [red, green, blue], dtype=np.float32)
    return (quads @ weights + np.float32(4 * layout.offset)) * np.float32(0.5)


def _band(rgb: np.ndarray, layout: Layout, cache: dict) -> np.ndarray:
    """The approximation band for ``layout`` (``rgb``: float32 RGB pixels); ``cache`` keeps
    the 2x2 channel sums that the floating-point layouts share."""
    if layout.offset == 128.0:
        return _scripts_band(rgb)
    if "quads" not in cache:
        cache["quads"] = _quads(rgb)
    return _float_band(cache["quads"], layout)


def _block_bits(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bit, clear) per 4x4 block of the approximation band, each (block rows, block columns).

    A block is not clear when its coefficient sits exactly on a bin edge (a multiple of half
    the step): no mark leaves it there (marks sit a quarter step from either edge), and its
    bit is then decided by rounding noise; such blocks, common in flat 8-bit areas, do not
    vote."""
    n, c = band.shape[0] // 4, band.shape[1] // 4
    blocks = band.reshape(n, 4, c, 4).transpose(0, 2, 1, 3).reshape(n, c, 16)[..., 1:]
    pick = np.abs(blocks).argmax(axis=-1)[..., None]
    residue = np.mod(np.abs(np.take_along_axis(blocks, pick, axis=-1)[..., 0]), STEP)
    edge = np.abs(residue - STEP / 2 * np.round(residue / (STEP / 2)))
    return residue > STEP / 2, edge > 1e-3


def _match(message: Message, layout: Layout, bits: np.ndarray, clear: np.ndarray, index: np.ndarray) -> Reading:
    slot = index % message.length
    ones = np.bincount(slot, weights=bits & clear, minlength=message.length)
    votes = np.bincount(slot, weights=clear, minlength=message.length)
    # A bit is 1 when its blocks hold more ones than the picture does overall: smooth
    # chroma pushes whole regions to one value, which a plain 50% majority would copy
    # into every bit.
    rate = ones.sum() / max(votes.sum(), 1.0)
    decoded = ones > rate * votes
    expected = np.asarray(message.bits, dtype=bool)
    agree = int((decoded == expected).sum())
    voters = int(clear.sum())
    block_agree = float(((bits == expected[slot]) & clear).sum() / max(voters, 1))
    return Reading(message, layout, agree, voters, block_agree)


def _read(image: Image.Image, budget: int, messages: tuple[Message, ...]) -> tuple[list[Reading], bool]:
    """(each message's best reading, whether every block was read) from at most ``budget``
    blocks in whole rows."""
    cols, rows = image.size[0] // 8, image.size[1] // 8
    chosen = _block_rows(rows, cols, budget)
    rgb = _strips(image, chosen, cols).astype(np.float32)
    index = (chosen[:, None] * cols + np.arange(cols)[None, :]).ravel()
    bits: dict[Layout, tuple[np.ndarray, np.ndarray]] = {}
    cache: dict = {}
    readings = []
    for message in messages:
        best = None
        for layout in message.layouts:
            if layout not in bits:
                bit, clear = _block_bits(_band(rgb, layout, cache))
                bits[layout] = bit.ravel(), clear.ravel()
            reading = _match(message, layout, *bits[layout], index)
            if best is None or reading.agree > best.agree:
                best = reading
        readings.append(best)
    return readings, len(chosen) == rows


def read_dwt_dct(image: Image.Image, messages: tuple[Message, ...] = MESSAGES) -> list[Reading]:
    """Each message's best reading of ``image`` (an RGB picture); [] when the picture is
    below the encoder's minimum size.

    A first read samples ``SCREEN_BLOCKS`` blocks; only when some message agrees there at
    least as well as its ``screen`` does a second read take up to ``MAX_BLOCKS`` (unmarked
    pictures mostly stop after the first, marked ones get every vote)."""
    width, height = image.size
    if width * height < MIN_AREA or width < 8 or height < 8:
        return []
    readings, complete = _read(image, SCREEN_BLOCKS, messages)
    if not complete and any(r.agree >= r.message.screen for r in readings):
        readings, _ = _read(image, MAX_BLOCKS, messages)
    return readings


# ------------------------------------------------------------------ TrustMark (optional)


class WatermarkSetupError(GlassError):
    """A watermark reader asked for but not usable here (package or models missing)."""


TRUSTMARK_MISSING = "--trustmark needs the trustmark package: pip install 'glass-cli[trustmark]'"
TRUSTMARK_OFFLINE = ("TrustMark's models could not be loaded: the trustmark package fetches them once from Adobe "
                     "(cai-watermark.adobe.net) into its own folder on first use, and that failed (offline?)")


def trustmark_installed() -> bool:
    """Whether the trustmark package can be imported (without importing it: it loads torch
    and lightning)."""
    if "trustmark" in sys.modules:
        return sys.modules["trustmark"] is not None
    return importlib.util.find_spec("trustmark") is not None


class TrustMarkReader:
    """Adobe TrustMark decoding through the ``trustmark`` package (variant Q, the default).

    Loading raises WatermarkSetupError with a one-line reason when the package is not
    installed or its models cannot be fetched. ``read`` is thread-safe and never raises."""

    def __init__(self, model_type: str = "Q", device: str = ""):
        try:
            from trustmark import TrustMark
        except ImportError:
            raise WatermarkSetupError(TRUSTMARK_MISSING) from None
        self.model_type = model_type
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):  # it prints progress, and download errors instead of raising
            try:
                self._tm = TrustMark(verbose=False, model_type=model_type, device=device, loadRemover=False)
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise WatermarkSetupError(f"{TRUSTMARK_OFFLINE}: {first[:160]}") from None
        if getattr(self._tm, "decoder", None) is None:
            reason = re.findall(r"<([^<>]{1,160})>", printed.getvalue())  # urllib's "<urlopen error ...>"
            raise WatermarkSetupError(f"{TRUSTMARK_OFFLINE}: {reason[-1]}" if reason else TRUSTMARK_OFFLINE)
        self._lock = threading.Lock()

    def read(self, image: Image.Image) -> list[Finding]:
        try:
            with self._lock, contextlib.redirect_stdout(io.StringIO()):
                payload, present, schema = self._tm.decode(image, MODE="binary")
        except Exception:
            return []
        if not present:
            return []
        value = f"TrustMark (variant {self.model_type}) payload {payload}, schema {schema}"
        return [Finding(SOURCE, "trustmark", value, False, "TrustMark watermark")]


# ------------------------------------------------------------------ entry point


def _rgb(image: Image.Image) -> Image.Image | None:
    if image.mode in ("RGB", "RGBX"):  # RGBX: a JPEG's shared decode buffer, same pixels
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # scale 16-bit to 8 bits instead of clipping
        array = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(array / 257.0, 0, 255).round().astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def read_watermarks(image: Image.Image, *, dwt_dct: bool = True, trustmark: TrustMarkReader | None = None) -> list[Finding]:
    """Watermark findings for a decoded picture: the SD/SDXL dwtDct messages found (above
    each message's bit threshold), then TrustMark's payload when a reader is given. Never
    raises: a picture that cannot be read gives no findings."""
    try:
        rgb = _rgb(image)
        findings = [r.finding() for r in read_dwt_dct(rgb) if r.found] if dwt_dct else []
    except Exception:  # evidence is best effort: an odd picture must not cost the scan
        return []
    if trustmark is not None:
        findings += trustmark.read(rgb if rgb.mode == "RGB" else rgb.convert("RGB"))
    return findings
