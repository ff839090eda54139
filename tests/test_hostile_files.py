"""Entries that must never hang a scan or fill its memory (special files, endless and huge
files, slow decodes), and damaged files whose pixels are intact (scored, damage reported)."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from glass_cli.inference.pipeline import ordered_map
from glass_cli.io import image as image_io
from glass_cli.io.damage import exif_problem, jpeg_end, repair_png
from glass_cli.io.image import LoadError, read_bytes

from .conftest import noise_image
from .test_scan_cli import scan


def _png(img: Image.Image, **text: str) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in text.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _break_crc(data: bytes, ctype: bytes) -> bytes:
    """``data`` with the CRC of its first ``ctype`` chunk inverted."""
    i = 8
    while True:
        length = int.from_bytes(data[i : i + 4], "big")
        if data[i + 4 : i + 8] == ctype:
            at = i + 8 + length
            crc = int.from_bytes(data[at : at + 4], "big") ^ 0xFFFFFFFF
            return data[:at] + crc.to_bytes(4, "big") + data[at + 4 :]
        i += 12 + length


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _records(path: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in map(json.loads, path.read_text().splitlines())}


def test_special_and_huge_entries_become_records_within_seconds(tmp_path, tiny_glass):
    d = tmp_path / "evidence"
    d.mkdir()
    noise_image(96, 64, 1).save(d / "good.jpg", quality=90)
    os.mkfifo(d / "pipe.jpg")
    (d / "zero.jpg").symlink_to("/dev/zero")
    (d / "rand.png").symlink_to("/dev/urandom")
    with open(d / "sparse.jpg", "wb") as f:
        f.truncate(2 << 30)  # 2 GiB of nothing, no disk used
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.png"))
    out = tmp_path / "out.jsonl"
    start = time.monotonic()
    try:
        result = scan(d, "--weights", tiny_glass, "--threshold", "1", "--all", "--jsonl", out)
    finally:
        sock.close()
    assert time.monotonic() - start < 30
    assert result.exit_code == 3, result.output  # nothing flagged, some entries not scanned
    recs = _records(out)
    assert sorted(recs) == ["good.jpg", "pipe.jpg", "rand.png", "sock.png", "sparse.jpg", "zero.jpg"]
    assert recs["good.jpg"]["verdict"] == "real" and recs["good.jpg"]["p_ai"] is not None
    assert {name: r["error"] for name, r in recs.items() if name != "good.jpg"} == {
        "pipe.jpg": "named pipe, not a file",
        "zero.jpg": "character device, not a file",
        "rand.png": "character device, not a file",
        "sock.png": "socket, not a file",
        "sparse.jpg": "2.0 GiB, above the read limit of 1.0 GiB (raise it with --max-bytes)",
    }
    assert all(r["bytes"] is None for name, r in recs.items() if name != "good.jpg")  # nothing was read
    assert "5 not scanned" in result.stdout and "Traceback" not in result.output


def test_max_bytes_option_and_a_file_that_grows_while_read(tmp_path, tiny_glass, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    noise_image(200, 200, 2).save(d / "big.png")  # about 120 kB of noise
    noise_image(32, 32, 3).save(d / "small.png")
    size = (d / "big.png").stat().st_size
    out = tmp_path / "out.jsonl"
    result = scan(d, "--weights", tiny_glass, "--threshold", "1", "--all", "--jsonl", out, "--max-bytes", "100K")
    assert result.exit_code == 3, result.output
    recs = _records(out)
    assert recs["big.png"]["error"] == f"{size / 1024:.1f} KiB, above the read limit of 100.0 KiB (raise it with --max-bytes)"
    assert recs["small.png"]["verdict"] == "real"

    real_fstat = os.fstat

    def stale_size(fd):  # the file was 10 bytes when opened and has grown since
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 10, *info[7:]))

    monkeypatch.setattr(image_io.os, "fstat", stale_size)
    with pytest.raises(LoadError) as caught:
        read_bytes(d / "big.png", max_bytes=50_000)
    assert caught.value.reason == "grew past the read limit of 48.8 KiB while being read (raise it with --max-bytes)"
    assert len(read_bytes(d / "big.png", max_bytes=size)) == size  # exactly at the limit is fine


@pytest.mark.parametrize("text,message", [
    ("12x", "expected a size such as 512M or 2G, got '12x'"),
    ("0", "must be at least 1 byte, got '0'"),
])
def test_max_bytes_parse_errors(tmp_path, tiny_glass, text, message):
    noise_image(32, 32).save(tmp_path / "a.png")
    result = scan(tmp_path / "a.png", "--weights", tiny_glass, "--max-bytes", text)
    assert result.exit_code == 2 and message in result.output


def test_a_stuck_decode_is_given_up_and_later_files_keep_flowing(tmp_path, tiny_glass, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    for i, name in enumerate(("a.png", "slow.png", "c.png", "d.png")):
        noise_image(48, 48, i).save(d / name)
    release = threading.Event()
    real_decode = image_io.decode_image

    def decode(data, path="<bytes>", **kw):
        if Path(path).name == "slow.png":
            release.wait(30)  # a decoder stuck in a loop
        return real_decode(data, path, **kw)

    monkeypatch.setattr("glass_cli.preprocess.prepare.decode_image", decode)
    out = tmp_path / "out.jsonl"
    start = time.monotonic()
    result = scan(d, "--weights", tiny_glass, "--threshold", "1", "--all", "--jsonl", out,
                  "--file-timeout", "0.5", "--workers", "2")
    elapsed = time.monotonic() - start
    release.set()
    assert elapsed < 20 and result.exit_code == 3, result.output
    recs = _records(out)  # JSONL is written as results come: the error at once, the others by batch
    assert {name: r["verdict"] for name, r in recs.items()} == {"a.png": "real", "slow.png": "error", "c.png": "real", "d.png": "real"}
    assert recs["slow.png"]["error"] == "still reading or decoding after 0.5 s; given up (raise the limit with --file-timeout)"


def test_ordered_map_timeouts_keep_order_and_pool_size():
    def work(x):
        if x in (2, 5):
            time.sleep(1.0)
        return x * 10

    got = list(ordered_map(work, range(8), workers=2, window=4, timeout=0.2, on_timeout=lambda x, s: ("late", x)))
    assert got == [0, 10, ("late", 2), 30, 40, ("late", 5), 60, 70]
    assert list(ordered_map(work, [1, 3], workers=1, timeout=5)) == [10, 30]  # one thread, no limit hit
    with pytest.raises(ZeroDivisionError):
        list(ordered_map(lambda x: 1 // x, [1, 0, 2], workers=2))


def test_damaged_but_decodable_files_are_scored_with_the_damage_reported(tmp_path, tiny_glass):
    d = tmp_path / "d"
    d.mkdir()
    picture = noise_image(64, 48, 4)
    (d / "bad-text-crc.png").write_bytes(_break_crc(_png(picture, prompt='{"3": {"class_type": "KSampler"}}'), b"tEXt"))
    (d / "bad-idat-crc.png").write_bytes(_break_crc(_png(picture), b"IDAT"))
    (d / "trailing.jpg").write_bytes(_jpeg(picture) + b"appended junk " * 100)
    (d / "padded.jpg").write_bytes(_jpeg(picture) + b"\0" * 4096)  # cameras pad to a block size
    (d / "trailing.png").write_bytes(_png(picture) + b"tail")
    exif = Image.Exif()
    exif[0x0110] = "Camera"
    broken = bytearray(exif.tobytes())
    broken[10:14] = b"\xff\xff\xff\x7f"  # the first IFD's offset (big-endian), far past the block's end
    (d / "broken-exif.jpg").write_bytes(_jpeg(picture, exif=bytes(broken)))
    out = tmp_path / "out.jsonl"
    result = scan(d, "--weights", tiny_glass, "--threshold", "1", "--all", "--jsonl", out)
    assert result.exit_code == 3, result.output
    recs = _records(out)
    damage = {name: [(f["key"], f["value"]) for f in r["evidence"] if f["source"] == "damage"] for name, r in recs.items()}
    assert recs["bad-idat-crc.png"]["verdict"] == "error"
    assert recs["bad-idat-crc.png"]["error"] == "corrupt image data (the PNG IDAT chunk at byte 33 has a wrong CRC)"
    for name in ("bad-text-crc.png", "trailing.jpg", "padded.jpg", "trailing.png", "broken-exif.jpg"):
        assert recs[name]["verdict"] == "real" and (recs[name]["width"], recs[name]["height"]) == (64, 48), name
    assert damage["bad-text-crc.png"] == [("bad-crc", "the PNG tEXt chunk at byte 33 has a wrong CRC; glass skipped it and scored the pixels")]
    assert damage["trailing.jpg"] == [("trailing-data", "1400 bytes after the JPEG's end-of-image marker: data glass does not read")]
    assert damage["trailing.png"] == [("trailing-data", "4 bytes after the PNG's end (IEND): data glass does not read")]
    assert damage["padded.jpg"] == []
    assert damage["broken-exif.jpg"] == [("exif", "the EXIF block does not parse (first IFD at byte 4294967167 is past the "
                                                  "block's end (34 bytes)); pixels scored without it")]
    # the damaged chunk's workflow is still reported as what it is
    assert any(f["key"] == "prompt" for f in recs["bad-text-crc.png"]["evidence"])
    assert "damaged tEXt chunk (skipped)" in result.stdout


def test_training_and_eval_read_the_damaged_png_too(tmp_path):
    data = _break_crc(_png(noise_image(40, 40, 5), workflow="{}"), b"tEXt")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with pytest.raises(Exception):
        Image.open(path).load()  # Pillow alone refuses it
    loaded = image_io.load_image(path)
    assert loaded.image.size == (40, 40) and loaded.sha256 == __import__("hashlib").sha256(data).hexdigest()


def test_exif_structure_checks():
    exif = Image.Exif()
    exif[0x0110] = "Camera"
    good = exif.tobytes()  # b"Exif\0\0" + a TIFF block (Pillow writes it big-endian)
    order = "little" if good[6:8] == b"II" else "big"
    assert exif_problem(good) is None and exif_problem(good[6:]) is None  # JPEG APP1 and PNG eXIf forms
    assert exif_problem(b"Exif\0\0XX*\0") == "no TIFF header"
    assert exif_problem(good[:8] + (43).to_bytes(2, order) + good[10:]) == "bad TIFF magic number"
    many = bytearray(good)
    many[14:16] = (500).to_bytes(2, order)  # the first IFD's entry count
    assert exif_problem(bytes(many)) == "first IFD claims 500 entries, more than the block holds"
    far = bytearray(good)
    far[6 + 8 + 2 + 8 : 6 + 8 + 2 + 12] = (10_000).to_bytes(4, order)  # the Model string's value offset
    assert exif_problem(bytes(far)) == "entry 0 points past the block's end"


def test_png_repair_and_jpeg_end_are_exact():
    picture = noise_image(30, 20, 6)
    good = _png(picture, a="1", b="2")
    assert repair_png(good) is good
    broken = _break_crc(good, b"tEXt")
    fixed = repair_png(broken)
    assert len(fixed) == len(good) - 15  # one 3-byte tEXt chunk ("a", NUL, "1") is gone, nothing else
    assert Image.open(io.BytesIO(fixed)).tobytes() == Image.open(io.BytesIO(good)).tobytes()
    assert zlib.crc32(fixed) != zlib.crc32(good)
    for kw in ({}, {"progressive": True}, {"subsampling": 0}, {"restart_marker_blocks": 1}):
        jpeg = _jpeg(picture, **kw)
        assert jpeg_end(jpeg) == len(jpeg) and jpeg_end(jpeg + b"xyz") == len(jpeg)
        assert jpeg_end(jpeg[:-20]) is None
