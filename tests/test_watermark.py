"""Pixel watermarks (glass_cli.io.watermark): marks made here with invisible-watermark's own
encoder, called the way each pipeline calls it; real photos; hostile pictures; the scan path;
the TrustMark adapter."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import pywt
from imwatermark import WatermarkEncoder
from imwatermark.maxDct import EmbedMaxDct
from PIL import Image, ImageOps
from typer.testing import CliRunner

from glass_cli.cli import app
from glass_cli.io import watermark as wm
from glass_cli.io.evidence import Finding
from glass_cli.io.image import decode_image

from .conftest import noise_image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "examples").glob("*.jpg"))
runner = CliRunner(env={"COLUMNS": "200", "GLASS_WEIGHTS": ""})

KEYS = {"sd1": ("SD 1.x watermark", 136), "sd2": ("SD 2.x watermark", 32), "sdxl": ("SDXL watermark", 48)}


def photo(index: int, side: int) -> Image.Image:
    image, _ = decode_image(PHOTOS[index].read_bytes(), PHOTOS[index])
    return ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)


def mark(image: Image.Image, pipeline: str) -> Image.Image:
    """``image`` marked by invisible-watermark as ``pipeline`` calls it: the SD scripts pass the
    8-bit picture as BGR; diffusers' SDXL pipelines pass float RGB where BGR is expected;
    Stability AI's generative-models passes float BGR. Float results are clipped and rounded
    to 8 bits, as the pipelines' conversion to a picture does."""
    rgb = np.asarray(image.convert("RGB"))
    enc = WatermarkEncoder()
    if pipeline in ("sd1", "sd2"):
        enc.set_watermark("bytes", b"StableDiffusionV1" if pipeline == "sd1" else b"SDV2")
        return Image.fromarray(np.ascontiguousarray(enc.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct")[..., ::-1]))
    enc.set_watermark("bits", [int(b) for b in "101100111110110010010000011110111011000110011110"])
    pixels = rgb.astype(np.float32)
    if pipeline == "sdxl-diffusers":
        out = enc.encode(pixels, "dwtDct")
    else:
        out = enc.encode(np.ascontiguousarray(pixels[..., ::-1]), "dwtDct")[..., ::-1]
    return Image.fromarray(np.clip(out, 0, 255).round().astype(np.uint8))


def summary(findings: list[Finding]) -> list[tuple[str, str, bool, str]]:
    return [(f.source, f.key, f.ai, f.label) for f in findings]


# ------------------------------------------------------------------ the messages


def test_messages_are_the_pipelines_own():
    by_key = {m.key: m for m in wm.MESSAGES}
    assert [(m.key, m.length) for m in wm.MESSAGES] == [("sd1", 136), ("sd2", 32), ("sdxl", 48)]
    assert np.packbits(by_key["sd1"].bits).tobytes() == b"StableDiffusionV1"
    assert np.packbits(by_key["sd2"].bits).tobytes() == b"SDV2"
    assert int("".join(map(str, by_key["sdxl"].bits)), 2) == 0b101100111110110010010000011110111011000110011110
    assert by_key["sdxl"].text == "0xb3ec907bb19e"
    assert [layout.name for layout in by_key["sdxl"].layouts] == ["float RGB-as-BGR", "float BGR"]


# ------------------------------------------------------------------ marked pictures


@pytest.mark.parametrize(("pipeline", "key", "side"), [
    ("sd1", "sd1", 512), ("sd2", "sd2", 768), ("sdxl-diffusers", "sdxl", 1024), ("sdxl-sgm", "sdxl", 1024),
])
def test_each_pipelines_mark_is_found_with_every_bit(pipeline, key, side):
    label, length = KEYS[key]
    marked = mark(photo(0, side), pipeline)
    findings = wm.read_watermarks(marked)
    assert summary(findings) == [("watermark", key, True, label)]
    text = {m.key: m.text for m in wm.MESSAGES}[key]
    assert findings[0].value.startswith(f"{text}: {length}/{length} bits agree (100%), ")
    layout = {"sd1": "8-bit BGR", "sd2": "8-bit BGR", "sdxl-diffusers": "float RGB-as-BGR", "sdxl-sgm": "float BGR"}[pipeline]
    assert findings[0].value.endswith(f", {layout} layout")


@pytest.mark.parametrize("index", range(len(PHOTOS)))
def test_marks_on_every_example_photo(index):
    """Every example photo (cameras and generators that do not mark), marked by the SD 1.x
    script and by diffusers' SDXL pipeline: each found as its own message only."""
    base = photo(index, 512)
    assert summary(wm.read_watermarks(mark(base, "sd1"))) == [("watermark", "sd1", True, "SD 1.x watermark")]
    assert summary(wm.read_watermarks(mark(base, "sdxl-diffusers"))) == [("watermark", "sdxl", True, "SDXL watermark")]


def test_unmarked_photos_give_no_finding_and_stay_far_below_the_thresholds():
    assert len(PHOTOS) == 8
    for path in PHOTOS:
        image, _ = decode_image(path.read_bytes(), path)
        assert wm.read_watermarks(image) == [], path.name
        for reading in wm.read_dwt_dct(image):
            assert reading.agree <= reading.message.length * 0.8, (path.name, reading.message.key, reading.agree)


def test_a_large_picture_reads_rows_spread_over_it():
    marked = mark(photo(1, 1024).resize((1024, 4096)), "sdxl-diffusers")  # 512 rows of 128 blocks, 128 read
    (reading,) = [r for r in wm.read_dwt_dct(marked) if r.message.key == "sdxl"]
    assert reading.agree == 48
    assert wm.MAX_BLOCKS * 0.9 < reading.blocks <= wm.MAX_BLOCKS
    assert wm._block_rows(512, 128).tolist() == [round(i * 511 / 127) for i in range(128)]
    assert wm._block_rows(128, 128).tolist() == list(range(128))  # a 1024x1024 output: every block
    assert wm._block_rows(375, 500).tolist() == [round(i * 374 / 31) for i in range(32)]  # 4000x3000


def test_unmarked_pictures_stop_after_the_sample_and_marked_ones_are_read_whole():
    plain = photo(1, 1024)
    readings = wm.read_dwt_dct(plain)
    assert [r.message.key for r in readings] == ["sd1", "sd2", "sdxl"]
    assert all(r.agree < r.message.screen for r in readings)
    assert all(wm.SCREEN_BLOCKS * 0.9 < r.blocks <= wm.SCREEN_BLOCKS for r in readings)
    (marked,) = [r for r in wm.read_dwt_dct(mark(plain, "sdxl-diffusers")) if r.message.key == "sdxl"]
    assert wm.MAX_BLOCKS * 0.9 < marked.blocks <= wm.MAX_BLOCKS


def test_alpha_is_dropped_and_the_mark_still_found():
    marked = mark(photo(2, 512), "sd1").convert("RGBA")
    assert summary(wm.read_watermarks(marked)) == [("watermark", "sd1", True, "SD 1.x watermark")]


def test_a_resize_removes_the_mark():
    """The mark is tied to the 8-pixel grid (what the bench measures): a 0.5x downscale of a
    marked picture gives no finding rather than a wrong one."""
    marked = mark(photo(3, 1024), "sdxl-diffusers")
    assert wm.read_watermarks(marked.resize((512, 512), Image.Resampling.BICUBIC)) == []


def test_block_bits_equal_invisible_watermarks_own_decoder():
    """On every block whose coefficient is not exactly on a bin edge, the numpy decoder reads
    the bit that invisible-watermark's decoder (OpenCV + PyWavelets) reads, for each layout."""
    image = photo(4, 512)
    for layout in (wm.SCRIPTS_8BIT, wm.DIFFUSERS_FLOAT, wm.SGM_FLOAT):
        rgb = np.asarray(image)
        pixels = rgb if layout.swap_red_blue else rgb[..., ::-1]
        pixels = np.ascontiguousarray(pixels if layout.offset == 128.0 else pixels.astype(np.float32))
        band, _ = pywt.dwt2(cv2.cvtColor(pixels, cv2.COLOR_BGR2YUV)[..., 1], "haar")
        theirs = np.array(EmbedMaxDct(wmLen=1).decode_frame(band, 36, [[]])[0], dtype=bool).reshape(64, 64)
        ours, clear = wm._block_bits(wm._band(wm._strips(image, wm._block_rows(64, 64), 64).astype(np.float32), layout, {}))
        assert ours.shape == (64, 64)
        assert np.array_equal(ours[clear], theirs[clear]), layout.name
        assert clear.mean() > 0.85, layout.name


# ------------------------------------------------------------------ hostile pictures


def _hostile() -> dict[str, Image.Image]:
    big = noise_image(640, 480, 7)
    return {
        "1x1": noise_image(1, 1),
        "20x12": noise_image(20, 12),
        "255x256 (below the encoder's minimum)": noise_image(255, 256),
        "0x0": Image.new("RGB", (0, 0)),
        "65536x1": Image.new("RGB", (65536, 1), (128, 128, 128)),
        "1x65536": Image.new("RGB", (1, 65536), (128, 128, 128)),
        "grey L": big.convert("L"),
        "16-bit I;16": Image.fromarray(np.asarray(big.convert("L"), dtype=np.uint16) * 257),
        "32-bit I": big.convert("I"),
        "float F": big.convert("F"),
        "CMYK": big.convert("CMYK"),
        "palette P": big.convert("P"),
        "bilevel 1": big.convert("1"),
        "LA": big.convert("LA"),
        "flat grey": Image.new("RGB", (512, 512), (128, 128, 128)),
        "flat black": Image.new("RGB", (512, 512)),
        "flat white": Image.new("RGB", (512, 512), (255, 255, 255)),
        "noise 640x480": big,
    }


@pytest.mark.parametrize("name", list(_hostile()))
def test_hostile_pictures_never_raise_and_give_no_finding(name):
    assert wm.read_watermarks(_hostile()[name]) == []


def test_a_picture_that_cannot_be_converted_gives_no_finding():
    class Broken:
        mode, size = "RGB", (512, 512)

        def crop(self, box):
            raise OSError("image file is truncated")

    assert wm.read_watermarks(Broken()) == []


# ------------------------------------------------------------------ scan


@pytest.fixture
def marked_dir(tmp_path):
    d = tmp_path / "marked"
    d.mkdir()
    mark(photo(0, 512), "sd1").save(d / "sd1.png")
    mark(photo(1, 1024), "sdxl-diffusers").save(d / "sdxl.png")
    (d / "photo.jpg").write_bytes(PHOTOS[5].read_bytes())
    return d


def _records(tmp_path, *args):
    out = tmp_path / "scan.json"
    result = runner.invoke(app, ["scan", *map(str, args), "--json", str(out), "--all"])
    assert out.is_file(), result.output
    return result, {Path(r["path"]).name: r for r in json.loads(out.read_text())["files"]}


def test_scan_reports_the_marks_beside_the_score(tmp_path, marked_dir, tiny_glass):
    report = tmp_path / "report.html"
    result, recs = _records(tmp_path, marked_dir, "--weights", tiny_glass, "--report", report)
    assert result.exit_code in (0, 1), result.output

    def marks(name):
        return [(e["source"], e["key"], e["ai"], e["label"]) for e in recs[name]["evidence"] if e["source"] == "watermark"]

    assert marks("sd1.png") == [("watermark", "sd1", True, "SD 1.x watermark")]
    assert marks("sdxl.png") == [("watermark", "sdxl", True, "SDXL watermark")]
    assert marks("photo.jpg") == []
    assert recs["sd1.png"]["evidence_declares_ai"] is True
    assert recs["sdxl.png"]["evidence_declares_ai"] is True
    assert "SD 1.x watermark" in result.output and "SDXL watermark" in result.output
    page = report.read_text()
    assert 'data-source="watermark"><summary>watermark sd1: StableDiffusionV1: 136/136 bits agree (100%), ' in page
    assert "(declares AI)</summary>" in page


def test_scores_do_not_depend_on_the_watermark_reader(tmp_path, marked_dir, tiny_glass):
    _, on = _records(tmp_path, marked_dir, "--weights", tiny_glass)
    _, off = _records(tmp_path, marked_dir, "--weights", tiny_glass, "--no-watermarks")
    assert {k: r["p_ai"] for k, r in on.items()} == {k: r["p_ai"] for k, r in off.items()}
    assert all(e["source"] != "watermark" for r in off.values() for e in r["evidence"])


# ------------------------------------------------------------------ TrustMark


def test_trustmark_without_the_package_is_one_line_before_any_work(tmp_path, marked_dir, tiny_glass, monkeypatch):
    monkeypatch.setitem(sys.modules, "trustmark", None)  # what an install without the extra looks like
    result = runner.invoke(app, ["scan", str(marked_dir), "--weights", str(tiny_glass), "--trustmark"])
    assert result.exit_code == 2
    assert result.output.strip() == "glass: error: --trustmark needs the trustmark package: pip install 'glass-cli[trustmark]'"


class FakeTrustMark:
    """Stands in for trustmark.TrustMark, whose models this machine cannot download."""

    decoded = ("0110100110", True, 1)
    loaded = True
    calls: list[dict] = []

    def __init__(self, **kwargs):
        FakeTrustMark.calls.append(kwargs)
        self.decoder = object() if FakeTrustMark.loaded else None
        if not FakeTrustMark.loaded:  # what trustmark 0.9.2 prints offline, then it carries on without models
            print("Error downloading model file. trustmark_Q.yaml decoder_Q.ckpt<urlopen error [Errno -2] Name or service not known>")

    def decode(self, image, MODE="text"):
        assert MODE == "binary" and image.mode == "RGB"
        if isinstance(self.decoded, Exception):
            raise self.decoded
        return self.decoded


@pytest.fixture
def fake_trustmark(monkeypatch):
    module = types.ModuleType("trustmark")
    module.TrustMark = FakeTrustMark
    monkeypatch.setitem(sys.modules, "trustmark", module)
    monkeypatch.setattr(FakeTrustMark, "calls", [])
    return FakeTrustMark


def test_trustmark_reader_reports_the_payload(fake_trustmark):
    reader = wm.TrustMarkReader(device="cpu")
    assert fake_trustmark.calls == [{"verbose": False, "model_type": "Q", "device": "cpu", "loadRemover": False}]
    assert reader.read(noise_image(300, 300)) == [
        Finding("watermark", "trustmark", "TrustMark (variant Q) payload 0110100110, schema 1", False, "TrustMark watermark")
    ]


def test_trustmark_reader_without_a_mark_or_with_a_failing_decode(fake_trustmark, monkeypatch):
    reader = wm.TrustMarkReader()
    monkeypatch.setattr(fake_trustmark, "decoded", ("", False, -1))
    assert reader.read(noise_image(300, 300)) == []
    monkeypatch.setattr(fake_trustmark, "decoded", RuntimeError("bad tensor"))
    assert reader.read(noise_image(300, 300)) == []


def test_trustmark_models_missing_is_one_line(fake_trustmark, monkeypatch, tmp_path, marked_dir, tiny_glass):
    monkeypatch.setattr(fake_trustmark, "loaded", False)  # the package prints and returns no model offline
    with pytest.raises(wm.WatermarkSetupError) as info:
        wm.TrustMarkReader()
    reason = f"{wm.TRUSTMARK_OFFLINE}: urlopen error [Errno -2] Name or service not known"
    assert str(info.value) == reason
    result = runner.invoke(app, ["scan", str(marked_dir), "--weights", str(tiny_glass), "--trustmark"])
    assert result.exit_code == 2
    assert result.output.strip() == f"glass: error: {reason}"


def test_scan_with_trustmark_adds_its_finding_to_every_file(fake_trustmark, tmp_path, marked_dir, tiny_glass):
    _, recs = _records(tmp_path, marked_dir, "--weights", tiny_glass, "--trustmark")
    for name, rec in recs.items():
        tm = [e for e in rec["evidence"] if e["key"] == "trustmark"]
        assert tm == [{"source": "watermark", "key": "trustmark", "value": "TrustMark (variant Q) payload 0110100110, schema 1",
                       "ai": False, "label": "TrustMark watermark"}], name
    assert fake_trustmark.calls[0]["device"] == "cpu"
