"""The --decode gpu path (scan.device), run on the CPU where torchvision decodes
with libjpeg-turbo: the same records as the default path, for every kind of file."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glass_cli.cli import app
from tests.conftest import noise_image

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from glass_cli.errors import ScanError  # noqa: E402
from glass_cli.inference.engines import TorchEngine  # noqa: E402
from glass_cli.io.image import decode_image  # noqa: E402
from glass_cli.outputs.sinks import OutputOptions  # noqa: E402
from glass_cli.scan.device import orient  # noqa: E402
from glass_cli.scan.local import scan  # noqa: E402
from glass_cli.scan.settings import ScanSettings  # noqa: E402


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_on_tensors_matches_pillow(orientation):
    data = _jpeg(noise_image(37, 23, orientation), exif=_exif(orientation))
    expected, _ = decode_image(data)
    stored = torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).transpose(2, 0, 1).copy())
    np.testing.assert_array_equal(orient(stored, orientation).permute(1, 2, 0).numpy(), np.asarray(expected))


def _folder(root: Path) -> Path:
    d = root / "mixed"
    d.mkdir()
    big = noise_image(700, 500, 1)
    (d / "a.jpg").write_bytes(_jpeg(big))
    (d / "b-444.jpg").write_bytes(_jpeg(noise_image(333, 257, 2), subsampling=0))
    (d / "c-progressive.jpg").write_bytes(_jpeg(noise_image(410, 300, 3), progressive=True))
    (d / "d-grey.jpg").write_bytes(_jpeg(noise_image(300, 420, 4).convert("L")))
    for o in (3, 6, 8):
        (d / f"e-rot{o}.jpg").write_bytes(_jpeg(noise_image(320, 240, 10 + o), exif=_exif(o)))
    (d / "f-cmyk.jpg").write_bytes(_jpeg(noise_image(200, 150, 5).convert("CMYK")))
    noise_image(260, 200, 6).save(d / "g.png")
    (d / "h-cut.jpg").write_bytes(_jpeg(big)[:5000])
    (d / "i-text.jpg").write_bytes(b"hello, not a picture")
    (d / "j-tiny.jpg").write_bytes(_jpeg(noise_image(40, 30, 7)))
    (d / "k-thin.jpg").write_bytes(_jpeg(noise_image(2000, 50, 8)))
    return d


@pytest.mark.parametrize("model", ["tiny_glass", "tiny_baseline"])
def test_device_path_gives_the_records_of_the_cpu_path(tmp_path, model, request):
    engine = TorchEngine.from_checkpoint(request.getfixturevalue(model), "cpu")
    files = sorted(_folder(tmp_path).iterdir())
    options = dict(batch_size=4, workers=2, outputs=OutputOptions(report="unused.html"))  # an output that keeps pictures
    cpu = sorted(scan(files, engine, ScanSettings(**options)), key=lambda r: r.index)
    device = sorted(scan(files, engine, ScanSettings(decode="gpu", **options)), key=lambda r: r.index)
    assert [r.path for r in device] == [str(f) for f in files]

    def comparable(r):
        row = dataclasses.asdict(dataclasses.replace(r, explanation=None))
        return row, r.explanation.preview.tobytes() if r.explanation else None, [c.tobytes() for c in r.explanation.crops] if r.explanation else None

    for a, b in zip(cpu, device):
        assert comparable(a) == comparable(b), a.path
    errors = {Path(r.path).name: r.error for r in device if r.verdict == "error"}
    assert errors == {
        "h-cut.jpg": "truncated image data (file incomplete or corrupt)",
        "i-text.jpg": "not an image, or a format glass cannot read",
        "j-tiny.jpg": "too small to judge (40x30): glass scores images of at least 128 px on each side (--min-side)",
        "k-thin.jpg": "too small to judge (2000x50): glass scores images of at least 128 px on each side (--min-side)",
    }
    assert sum(r.p_ai is not None for r in device) == 9


def test_decode_gpu_errors_on_this_machine(runner, tmp_path, tiny_glass):
    d = _folder(tmp_path)
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the CUDA run is bench/gpu_check.py's")
    result = runner.invoke(app, ["scan", str(d), "--weights", str(tiny_glass), "--decode", "gpu"])
    assert result.exit_code == 2
    assert result.output.strip().endswith("glass: error: --decode gpu needs a CUDA GPU for the torch engine; torch sees none "
                                          "here (or --device cpu was given); the default --decode cpu works everywhere")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    result = runner.invoke(app, ["scan", str(d), "--weights", str(onnx), "--decode", "gpu"])
    assert result.exit_code == 2
    assert result.output.strip().endswith("glass: error: --decode gpu runs the torch engine: give it a checkpoint "
                                          "(.safetensors), not an ONNX model")


def test_decode_gpu_needs_torch_engine_and_threads(tmp_path, tiny_glass):
    with pytest.raises(ScanError, match="use --pool thread or auto"):
        ScanSettings(decode="gpu", pool="process", workers=2)
    with pytest.raises(ScanError, match="--decode must be cpu or gpu, not 'tpu'"):
        ScanSettings(decode="tpu")
    engine = TorchEngine.from_checkpoint(tiny_glass, "cpu")
    engine.kind = "onnx"  # any engine that is not torch's
    with pytest.raises(ScanError, match="--decode gpu needs the torch engine"):
        list(scan([tmp_path], engine, ScanSettings(decode="gpu")))


def test_a_file_the_device_cannot_cut_takes_the_cpu_path(tmp_path, tiny_glass, monkeypatch):
    """A failure while building one file's views on the device (out of GPU memory, say)
    sends that file to the CPU path; its record is the CPU path's."""
    import glass_cli.preprocess.device as device

    engine = TorchEngine.from_checkpoint(tiny_glass, "cpu")
    files = sorted(_folder(tmp_path).iterdir())
    cpu = sorted(scan(files, engine, ScanSettings(batch_size=4, workers=2)), key=lambda r: r.index)
    real = device.device_views
    refused = []

    def flaky(pixels, config, seed):
        if tuple(pixels.shape[1:]) == (500, 700):  # a.jpg
            refused.append(seed)
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(pixels, config, seed)

    monkeypatch.setattr(device, "device_views", flaky)
    on_device = sorted(scan(files, engine, ScanSettings(batch_size=4, workers=2, decode="gpu")), key=lambda r: r.index)
    assert len(refused) == 1
    assert [dataclasses.asdict(r) for r in on_device] == [dataclasses.asdict(r) for r in cpu]
