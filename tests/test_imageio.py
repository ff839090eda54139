import io

import numpy as np
import pytest
from PIL import Image

from glass_cli.io.image import LoadError, decode_image, image_extensions, load_image

from .conftest import noise_image


def _encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    "mode,fmt",
    [("RGB", "JPEG"), ("L", "PNG"), ("1", "PNG"), ("P", "GIF"), ("RGBA", "PNG"), ("LA", "PNG"),
     ("CMYK", "JPEG"), ("CMYK", "TIFF"), ("YCbCr", "JPEG"), ("I;16", "PNG"), ("F", "TIFF"), ("RGB", "WEBP")],
)
def test_any_mode_comes_back_rgb(mode, fmt):
    img = noise_image(40, 30, mode=mode) if mode not in ("I;16", "F") else None
    if mode == "I;16":
        img = Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16))
    if mode == "F":
        img = Image.fromarray(np.linspace(0, 1, 1200, dtype=np.float32).reshape(30, 40))
    out, _ = decode_image(_encode(img, fmt))
    assert out.mode == "RGB" and out.size == (40, 30)


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.full((4, 4), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    out, _ = decode_image(_encode(Image.fromarray(arr), "PNG"))
    px = np.asarray(out)
    assert px[1, 1].tolist() == [255, 255, 255] and px[0, 0].tolist() == [0, 0, 0]
    mid = Image.fromarray(np.full((2, 2), 32896, dtype=np.uint16))  # 65535 / 2 -> 128
    assert np.asarray(decode_image(_encode(mid, "PNG"))[0])[0, 0, 0] == 128


def test_palette_with_alpha_keeps_colours():
    img = Image.new("P", (8, 8))
    img.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    img.info["transparency"] = 0
    out, fmt = decode_image(_encode(img, "PNG", transparency=0))
    assert fmt == "PNG" and np.asarray(out)[0, 0].tolist() == [255, 0, 0]


def test_exif_orientation_applied():
    img = noise_image(200, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    out, _ = decode_image(_encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (100, 200)


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out, _ = decode_image(data)
    assert np.asarray(out)[5, 5].tolist() == [255, 0, 0]


def test_heic_and_avif_supported():
    pytest.importorskip("pillow_heif")
    for fmt in ("HEIF", "AVIF"):
        out, got = decode_image(_encode(noise_image(64, 48), fmt))
        assert out.size == (64, 48) and got == fmt
    assert {".heic", ".avif", ".jpg", ".png", ".webp", ".tif"} <= image_extensions()


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"hello, I am text", "not an image, or a format glass cannot read"),
        (None, "truncated image data (file incomplete or corrupt)"),
    ],
)
def test_bad_bytes_become_load_errors(data, reason):
    if data is None:
        data = _encode(noise_image(300, 300), "JPEG")[:3000]
    with pytest.raises(LoadError) as e:
        decode_image(data, "x.jpg")
    assert e.value.reason == reason and e.value.path == "x.jpg"


def test_pixel_limit_checked_from_header():
    data = _encode(Image.new("L", (5000, 5000)), "PNG")  # 25 MP, tiny file
    with pytest.raises(LoadError) as e:
        decode_image(data, "bomb.png", max_pixels=10_000_000)
    assert e.value.reason == "5000x5000 is 25 MP, above the limit of 10 MP (raise it with --max-pixels)"


def test_load_image_records_hash_and_size(tmp_path):
    p = tmp_path / "a.png"
    noise_image(10, 10).save(p)
    loaded = load_image(p)
    import hashlib

    assert loaded.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert loaded.nbytes == p.stat().st_size and loaded.format == "PNG"


def test_read_failures(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "dir.jpg").mkdir()
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere")
    expected = {
        "empty.jpg": "empty file (0 bytes)",
        "dir.jpg": "is a directory",
        "dangling.jpg": "file not found (deleted, moved, or a broken link)",
    }
    for name, reason in expected.items():
        with pytest.raises(LoadError) as e:
            load_image(tmp_path / name)
        assert e.value.reason == reason


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("orientation", [None, 3, 6, 8, 2])
@pytest.mark.parametrize("variant", ["rgb-420", "rgb-444", "progressive", "grey"])
def test_fast_jpeg_path_gives_pillows_pixels(variant, orientation, shared):
    """The simplejpeg path must never change what the model sees, whether it copies the
    picture into an RGB image or shares its buffer as RGBX."""
    from PIL import ImageOps

    img = noise_image(123, 77, 5)
    kw = {"quality": 88}
    if variant == "rgb-444":
        kw["subsampling"] = 0
    if variant == "progressive":
        kw["progressive"] = True
    if variant == "grey":
        img = img.convert("L")
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    data = _encode(img, "JPEG", **kw)
    from glass_cli.io.image import _decode_jpeg_fast

    assert _decode_jpeg_fast(data, Image.open(io.BytesIO(data)), shared) is not None  # the fast path ran
    fast, _ = decode_image(data, shared=shared)
    assert fast.mode == ("RGBX" if shared else "RGB")
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert fast.size == reference.size
    np.testing.assert_array_equal(np.asarray(fast)[..., :3], np.asarray(reference))
