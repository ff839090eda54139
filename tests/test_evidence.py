import io

import pytest
from PIL import Image

from glass_cli.io.evidence import MAX_VALUE, jpeg_segments, png_chunks, read_evidence, summary

from .conftest import noise_image
from .provenance import c2pa_signed_jpeg, jpeg_bytes, jpeg_with_xmp, png_with_text, with_segment

A1111 = "a cat in a helmet\nNegative prompt: blurry\nSteps: 28, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 1024x1024"


def by_key(findings):
    return {(f.source, f.key): f for f in findings}


def test_a1111_parameters_in_png():
    ev = by_key(read_evidence(png_with_text(parameters=A1111)))
    f = ev[("png-text", "parameters")]
    assert f.ai and f.value == A1111 and f.label == "PNG parameters (A1111/Forge/SD.Next)"


def test_comfyui_prompt_and_workflow_compressed_itxt():
    workflow = '{"nodes": [' + ",".join('{"id": %d, "type": "KSampler"}' % i for i in range(40)) + "]}"
    ev = by_key(read_evidence(png_with_text(prompt='{"3": {"class_type": "KSampler"}}', workflow=workflow)))
    assert ev[("png-text", "prompt")].ai and ev[("png-text", "workflow")].value == workflow
    assert summary(list(ev.values())) == "PNG prompt (ComfyUI); PNG workflow (ComfyUI)"


def test_harmless_png_text_is_not_ai():
    ev = read_evidence(png_with_text(Title="Holiday", Software="GIMP 2.10"))
    assert [f.ai for f in ev] == [False, False] and summary(ev) == ""


def test_software_naming_a_generator():
    ev = by_key(read_evidence(png_with_text(Software="NovelAI")))
    assert ev[("png-text", "Software")].ai


def test_xmp_digital_source_type_in_jpeg():
    ev = read_evidence(jpeg_with_xmp("trainedAlgorithmicMedia"))
    assert [(f.source, f.key, f.value, f.ai) for f in ev] == [("xmp", "DigitalSourceType", "trainedAlgorithmicMedia", True)]
    assert summary(ev) == "XMP trainedAlgorithmicMedia"
    camera = read_evidence(jpeg_with_xmp("digitalCapture"))
    assert [(f.value, f.ai) for f in camera] == [("digitalCapture", False)]


def test_exif_software_make_model_and_usercomment():
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "Canon EOS 20D", "Adobe Photoshop"
    ev = by_key(read_evidence(jpeg_bytes(exif=exif.tobytes())))
    assert ev[("exif", "Make")].value == "Canon" and not any(f.ai for f in ev.values())
    assert summary(list(ev.values())) == "EXIF camera: Canon Canon EOS 20D"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\0\0\0" + A1111.encode()
    ev = by_key(read_evidence(jpeg_bytes(exif=exif.tobytes())))
    assert ev[("exif", "UserComment")].ai and ev[("exif", "UserComment")].value == A1111


def test_c2pa_manifest_claim_generator_and_source_type():
    pytest.importorskip("cryptography")
    ev = read_evidence(c2pa_signed_jpeg("trainedAlgorithmicMedia", "GlassTestGen"))
    got = by_key(ev)
    assert got[("c2pa", "claim_generator")].value == "GlassTestGen 1.0"
    assert got[("c2pa", "digitalSourceType")].ai
    assert got[("c2pa", "signer")].value == "glass test signer (glass tests)"
    assert summary(ev) == "C2PA trainedAlgorithmicMedia; C2PA: GlassTestGen 1.0"


def test_c2pa_present_but_unreadable():
    fake = with_segment(jpeg_bytes(), 0xEB, b"JP\x02\x11\x00\x00\x00\x01\x00\x00\x00\x20jumb\x00\x00\x00\x18jumdc2pa\x00\x11\x00\x10")
    ev = read_evidence(fake)
    assert [(f.source, f.key) for f in ev] == [("c2pa", "manifest")]
    assert ev[0].value.startswith("present, unreadable") and summary(ev) == "C2PA manifest (unreadable)"


def test_malformed_metadata_never_raises():
    for data in (b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n\x00\x00", b"junk" * 10, with_segment(jpeg_bytes(), 0xE1, b"Exif\0\0garbage")):
        assert isinstance(read_evidence(data), list)


def test_long_values_are_cut():
    ev = read_evidence(png_with_text(workflow="x" * (MAX_VALUE + 10)))
    assert ev[0].value.endswith("... [10 more characters]")


def test_walkers_stop_at_image_data():
    data = jpeg_bytes()
    markers = [m for m, _ in jpeg_segments(data)]
    assert 0xDB in markers and 0xDA not in markers  # quantisation tables seen, scan data not
    buf = io.BytesIO()
    noise_image(8, 8).save(buf, "PNG")
    assert [t for t, _ in png_chunks(buf.getvalue())] == [b"IHDR", b"IDAT", b"IEND"]
