"""What the library promises a program that imports it: every error it raises on purpose is a
GlassError carrying its exit code, and a scan leaves the host process as it found it (Pillow's
bomb limit, the warning filters, torch's thread count)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import glass_cli
from glass_cli.errors import EXIT_NO_RESULT, EXIT_PARITY, EXIT_USAGE, GlassError


def _library_modules():
    for info in pkgutil.walk_packages(glass_cli.__path__, "glass_cli."):
        if info.name.startswith("glass_cli.cli") or info.name.endswith("__main__"):
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError:  # an optional extra (ray) absent
            continue


def test_every_error_class_of_the_library_is_a_glass_error():
    found = {}
    for module in _library_modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, BaseException):
                found[f"{module.__name__}.{name}"] = cls
    assert len(found) >= 17
    assert [name for name, cls in found.items() if not issubclass(cls, GlassError)] == []


def test_exit_codes_mean_one_thing_each():
    from glass_cli.inference.export import ExportError, ParityError

    assert (ExportError.exit_code, ParityError.exit_code, GlassError.exit_code) == (EXIT_USAGE, EXIT_PARITY, EXIT_USAGE)
    from glass_cli import errors

    codes = {name: value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    assert len(set(codes.values())) == len(codes) and codes["EXIT_NO_RESULT"] == EXIT_NO_RESULT == 5


def test_a_scan_from_python_leaves_the_host_process_as_it_found_it(tmp_path, tiny_glass):
    """In a fresh interpreter: the host sets its own Pillow limit, filters and torch threads,
    scans a folder with both engines' paths (thread and process pools), and finds them unchanged."""
    from .conftest import noise_image

    noise_image(200, 150, 1).save(tmp_path / "a.jpg")  # above the default --min-side
    noise_image(150, 200, 2).save(tmp_path / "b.png")
    code = textwrap.dedent(f"""
        import warnings, torch, sympy  # sympy (torch's) adds a filter of its own when first imported
        from PIL import Image
        Image.MAX_IMAGE_PIXELS = 1234567
        warnings.simplefilter("default")
        torch.set_num_threads(1)
        before = (Image.MAX_IMAGE_PIXELS, list(warnings.filters), torch.get_num_threads())
        from glass_cli.scan.job import scan_paths
        from glass_cli.scan.settings import ScanSettings
        for pool in ("thread", "process"):
            results = scan_paths([{str(tmp_path)!r}], ScanSettings(weights={str(tiny_glass)!r}, pool=pool, workers=2)).run()
            assert len(results) == 2 and all(r.p_ai is not None for r in results), results
        after = (Image.MAX_IMAGE_PIXELS, list(warnings.filters), torch.get_num_threads())
        print(before == after)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "True", proc.stderr


def test_a_picture_above_pillows_limit_but_within_glass_is_opened(tmp_path, monkeypatch):
    """glass applies --max-pixels itself; Pillow's own limit, whatever the host set it to,
    neither refuses the file nor is switched off."""
    from PIL import Image

    from glass_cli.io.image import LoadError, decode_image

    from .conftest import noise_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above 2x this
    path = tmp_path / "p.png"
    noise_image(100, 80, 3).save(path)
    image, fmt = decode_image(path.read_bytes(), path)
    assert (image.size, fmt, Image.MAX_IMAGE_PIXELS) == ((100, 80), "PNG", 1000)
    with pytest.raises(LoadError, match="above the limit"):
        decode_image(path.read_bytes(), path, max_pixels=7999)


def test_each_output_format_is_one_sink_one_field_and_one_flag(runner):
    from glass_cli.cli import app
    from glass_cli.outputs.sinks import SINKS, OutputOptions

    assert [s.option for s in SINKS] == [f.name for f in dataclasses.fields(OutputOptions)]
    help_text = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "200"}).stdout
    assert all(sink.flag() in help_text for sink in SINKS)
    assert OutputOptions(csv="x.csv").explain is False and OutputOptions(report="r.html").explain is True


def test_scan_settings_check_themselves():
    from glass_cli.errors import ScanError
    from glass_cli.scan.settings import Limits, ScanSettings

    cases = [
        (lambda: ScanSettings(batch_size=0), "--batch-size must be at least 1"),
        (lambda: ScanSettings(threshold=1.5), "--threshold must lie between 0 and 1, got 1.5"),
        (lambda: ScanSettings(uncertain=(0.6, 0.4)), "--uncertain needs 0 <= LOW < HIGH <= 1, got 0.6:0.4"),
        (lambda: ScanSettings(pool="fibre"), "--pool: pool must be auto, thread or process, not 'fibre'"),
        (lambda: ScanSettings(ray_actors=2), "--ray-actors needs --ray"),
        (lambda: Limits(file_timeout=0), "--file-timeout must be above 0 seconds"),
        (lambda: Limits(min_side=0), "--min-side must be at least 1"),
    ]
    for make, message in cases:
        with pytest.raises(ScanError) as caught:
            make()
        assert str(caught.value) == message
    with pytest.raises(dataclasses.FrozenInstanceError):
        ScanSettings().batch_size = 4
