"""`glass scan` end to end through the CLI: outputs, JSON records, exit codes, bad input."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from glass_cli.cli import app
from glass_cli.io import image as image_io

from .conftest import noise_image

runner = CliRunner(env={"COLUMNS": "200", "GLASS_WEIGHTS": ""})


def scan(*args: str):
    """`glass scan ARGS`. The tiny test models look at 32 px views, so their scans judge
    images of any size (--min-side 1) unless a test sets --min-side itself."""
    argv = ["scan", *map(str, args)]
    if "--min-side" not in argv:
        argv += ["--min-side", "1"]
    return runner.invoke(app, argv)


def scan_json(tmp_path, *args):
    out = tmp_path / "out.json"
    result = scan(*args, "--json", out)
    assert out.is_file(), result.output
    return result, json.loads(out.read_text())


def tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_mixed_folder_table_json_and_summary(tmp_path, photo_dir, tiny_glass):
    before = tree_state(photo_dir)
    result, doc = scan_json(tmp_path, photo_dir, "--weights", tiny_glass, "--threshold", "0", "--batch-size", "2", "--precision", "fp32")
    assert result.exit_code == 1, result.output
    assert tree_state(photo_dir) == before  # nothing written inside the scanned folder
    files = doc["files"]
    assert [Path(f["path"]).relative_to(photo_dir).as_posix() for f in files] == [
        "grey.png", "small.webp", "sub/square.bmp", "tall.png", "wide.jpg"
    ]
    assert doc["summary"] == {"scanned": 5, "flagged": 5, "uncertain": 0, "real": 0, "errors": 0}
    assert doc["threshold"] == 0.0 and doc["device"] == "cpu"
    assert doc["model"]["config"]["local_backbone"] == "test_resnet"
    for f in files:
        assert f["verdict"] == "ai" and 0.0 <= f["p_ai"] <= 1.0 and f["error"] is None
        assert len(f["crops"]) == 3 and abs(sum(c["weight"] for c in f["crops"]) - 1) < 1e-6
        assert f["sha256"] and f["bytes"] == Path(f["path"]).stat().st_size
    by_name = {Path(f["path"]).name: f for f in files}
    assert by_name["wide.jpg"]["sampling"] == "stratified" and (by_name["wide.jpg"]["width"], by_name["wide.jpg"]["height"]) == (640, 480)
    assert by_name["small.webp"]["sampling"] == "fallback"
    assert "Flagged files" in result.stdout and "wide.jpg" in result.stdout
    assert "5 scanned, 5 flagged as AI (P(AI) >= 0), 0 real, 0 not scanned" in result.stdout
    assert "model: glass test_efficientnet+test_resnet K=3 S=32" in result.stdout


def test_nothing_flagged_exits_zero_and_prints_no_table(photo_dir, tiny_glass):
    result = scan(photo_dir, "--weights", tiny_glass, "--threshold", "1")
    assert result.exit_code == 0, result.output
    assert "Flagged" not in result.stdout
    assert "5 scanned, 0 flagged as AI (P(AI) >= 1), 5 real, 0 not scanned" in result.stdout


def test_threshold_defaults_to_the_models(tmp_path, photo_dir, tiny_glass):
    _, doc = scan_json(tmp_path, photo_dir, "--weights", tiny_glass)
    assert doc["threshold"] == 0.5
    for f in doc["files"]:
        assert f["verdict"] == ("ai" if f["p_ai"] >= 0.5 else "real")


def test_same_bytes_same_score_whatever_name_batch_or_order(tmp_path, tiny_glass):
    d = tmp_path / "in"
    (d / "nested").mkdir(parents=True)
    noise_image(700, 500, 11).save(d / "a.jpg", quality=92)
    shutil.copy(d / "a.jpg", d / "nested" / "zz-copy.jpg")
    for i in range(3):
        noise_image(300 + 50 * i, 260, 20 + i).save(d / f"other{i}.png")
    (tmp_path / "o1").mkdir()
    _, doc1 = scan_json(tmp_path / "o1", d, "--weights", tiny_glass, "--batch-size", "4")
    (tmp_path / "o2").mkdir()
    _, doc2 = scan_json(tmp_path / "o2", d / "nested" / "zz-copy.jpg", "--weights", tiny_glass, "--batch-size", "1")
    by_name = {Path(f["path"]).name: f for f in doc1["files"]}
    alone = doc2["files"][0]
    for rec in (by_name["a.jpg"], by_name["zz-copy.jpg"]):
        assert [c["box"] for c in rec["crops"]] == [c["box"] for c in alone["crops"]]
        assert np.allclose([c["weight"] for c in rec["crops"]], [c["weight"] for c in alone["crops"]], atol=1e-6)
        assert abs(rec["p_ai"] - alone["p_ai"]) < 1e-6
        assert rec["sha256"] == alone["sha256"]


def _bad_corpus(d: Path) -> dict[str, str | None]:
    """name -> expected error reason (None: must be scanned)."""
    d.mkdir()
    (d / "zero.jpg").write_bytes(b"")
    buf = io.BytesIO()
    noise_image(400, 300, 1).save(buf, "JPEG", quality=90)
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (d / "text.jpg").write_text("this is not a picture\n")
    noise_image(1, 1).save(d / "one-pixel.png")
    noise_image(120, 90, 2).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)).save(d / "sixteen-bit.png")
    pal = noise_image(50, 40, 3).convert("P")
    pal.save(d / "palette-alpha.png", transparency=0)
    frames = [noise_image(40, 40, s) for s in (4, 5, 6)]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 8
    noise_image(300, 100, 7).save(d / "rotated.jpg", exif=exif.tobytes())
    noise_image(30, 30, 8).save(d / "locked.png")
    (d / "loop").symlink_to(d, target_is_directory=True)
    return {
        "zero.jpg": "empty file (0 bytes)",
        "truncated.jpg": "truncated image data (file incomplete or corrupt)",
        "text.jpg": "not an image, or a format glass cannot read",
        "locked.png": "permission denied",
        "one-pixel.png": None, "cmyk.jpg": None, "sixteen-bit.png": None,
        "palette-alpha.png": None, "animated.gif": None, "rotated.jpg": None,
    }


def test_bad_input_corpus_every_file_a_row(tmp_path, tiny_glass, monkeypatch):
    d = tmp_path / "bad"
    expected = _bad_corpus(d)
    real_open = image_io._open_readonly

    def guarded(path):
        if Path(path).name == "locked.png":  # tests run as root, where chmod 000 does not stop reads
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path)

    monkeypatch.setattr(image_io, "_open_readonly", guarded)
    result, doc = scan_json(tmp_path, d, "--weights", tiny_glass, "--threshold", "1")
    assert result.exit_code == 3, result.output  # nothing flagged, some files unreadable
    got = {Path(f["path"]).name: f for f in doc["files"]}
    assert sorted(got) == sorted(expected)  # the symlink loop is walked once, nothing twice
    for name, reason in expected.items():
        rec = got[name]
        if reason is None:
            assert rec["verdict"] == "real" and rec["error"] is None, name
        else:
            assert rec["verdict"] == "error" and rec["error"] == reason and rec["p_ai"] is None, name
    assert (got["rotated.jpg"]["width"], got["rotated.jpg"]["height"]) == (100, 300)
    assert (got["one-pixel.png"]["width"], got["one-pixel.png"]["sampling"]) == (1, "fallback")
    assert "Not scanned" in result.stdout and "Traceback" not in result.output
    assert "6 scanned, 0 flagged as AI (P(AI) >= 1), 6 real, 4 not scanned" in result.stdout
    result = scan(d, "--weights", tiny_glass, "--threshold", "0")
    assert result.exit_code == 1  # flagged wins over unreadable


def test_many_sizes_and_the_baseline(tmp_path, tiny_baseline):
    d = tmp_path / "sizes"
    d.mkdir()
    for i, (w, h) in enumerate([(1, 1), (31, 33), (32, 32), (64, 640), (1000, 20), (513, 257)]):
        noise_image(w, h, i).save(d / f"{w}x{h}.png")
    result, doc = scan_json(tmp_path, d, "--weights", tiny_baseline, "--all")
    assert result.exit_code in (0, 1), result.output
    assert len(doc["files"]) == 6
    for f in doc["files"]:
        assert f["crops"] == [] and f["sampling"] is None and f["error"] is None
    assert "Scanned files" in result.stdout and "model: baseline test_efficientnet S=32" in result.stdout


def test_recursive_switch(tmp_path, photo_dir, tiny_glass):
    _, doc = scan_json(tmp_path, photo_dir, "--weights", tiny_glass, "--no-recursive")
    assert [Path(f["path"]).name for f in doc["files"]] == ["grey.png", "small.webp", "tall.png", "wide.jpg"]


def test_json_to_stdout_keeps_stdout_clean(photo_dir, tiny_glass):
    result = scan(photo_dir, "--weights", tiny_glass, "--json", "-", "--threshold", "0")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and len(doc["files"]) == 5
    assert "5 scanned, 5 flagged" in result.stderr


def test_refuses_to_write_inside_scanned_folder(photo_dir, tiny_glass):
    before = tree_state(photo_dir)
    result = scan(photo_dir, "--weights", tiny_glass, "--json", photo_dir / "sub" / "out.json")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"glass: error: {photo_dir / 'sub' / 'out.json'}: refusing to write inside the scanned folder "
        f"{photo_dir.resolve()}; write it elsewhere"
    )
    assert tree_state(photo_dir) == before


def test_without_weights_says_how_to_get_them(photo_dir, monkeypatch):
    monkeypatch.setattr("glass_cli.models.checkpoint.default_weights", lambda engine="auto": None)
    result = scan(photo_dir)
    assert result.exit_code == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("glass: error: no model weights:") and "--weights" in line and "\n" not in line


def test_usage_errors_are_one_line(tmp_path, photo_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing.safetensors"
    cases = [
        ([tmp_path / "nowhere", "--weights", missing], f"{tmp_path / 'nowhere'}: no such file or folder"),
        ([empty], f"no image files found in {empty}"),
        ([photo_dir, "--weights", missing], f"{missing}: no such checkpoint (shipped models: default, baseline, glass)"),
        ([photo_dir, "--weights", "baseine"], "baseine: no model by that name; did you mean baseline? shipped models: default, "
                                              "baseline, glass (or give a .safetensors checkpoint or an .onnx export)"),
    ]
    for args, message in cases:
        result = scan(*args)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.strip() == f"glass: error: {message}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_gpu(photo_dir, tiny_glass):
    result = scan(photo_dir, "--weights", tiny_glass, "--device", "cuda")
    assert result.exit_code == 2
    assert result.stderr.strip() == "glass: error: --device cuda was asked for, but torch sees no CUDA GPU on this machine"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cpu_bf16_scores_near_fp32_under_its_own_model_id(tmp_path, photo_dir, tiny_glass, monkeypatch):
    """--precision bf16 on the CPU: autocast where the CPU has bfloat16 instructions, scores
    within bf16's rounding of fp32's, and a model id of its own; auto chooses it there and
    fp32 elsewhere; a clear refusal of bf16 without the instructions, and fp16 stays CUDA-only."""
    from glass_cli.inference import engines

    _, fp32 = scan_json(tmp_path, photo_dir, "--weights", tiny_glass, "--engine", "torch", "--precision", "fp32")
    if engines.cpu_bf16_supported():
        result, bf16 = scan_json(tmp_path, photo_dir, "--weights", tiny_glass, "--engine", "torch", "--precision", "bf16")
        assert result.exit_code in (0, 1), result.output
        ids = {f["model_id"] for f in bf16["files"]}
        assert ids == {fp32["model"]["id"] + "/bf16"} == {bf16["model"]["id"]} and bf16["model"]["precision"] == "bf16"
        plain = {f["path"]: f["p_ai"] for f in fp32["files"] if f["p_ai"] is not None}
        low = {f["path"]: f["p_ai"] for f in bf16["files"] if f["p_ai"] is not None}
        assert plain.keys() == low.keys() and len(plain) == 5
        assert 0 < max(abs(plain[k] - low[k]) for k in plain) < 0.05
        _, auto = scan_json(tmp_path, photo_dir, "--weights", tiny_glass, "--engine", "torch")
        assert auto["files"] == bf16["files"] and auto["device"] == "cpu (bf16)"  # auto: bf16 where the CPU has it
    monkeypatch.setattr(engines, "cpu_bf16_supported", lambda: False)
    _, auto = scan_json(tmp_path, photo_dir, "--weights", tiny_glass, "--engine", "torch")
    assert auto["files"] == fp32["files"] and auto["device"] == "cpu"  # and fp32 where it does not
    refused = scan(photo_dir, "--weights", tiny_glass, "--engine", "torch", "--precision", "bf16")
    assert refused.exit_code == 2 and refused.stderr.strip() == (
        "glass: error: --precision bf16 needs CUDA or a CPU with bfloat16 instructions (avx512_bf16 or AMX); this one has neither"
    )
    half = scan(photo_dir, "--weights", tiny_glass, "--engine", "torch", "--precision", "fp16")
    assert half.exit_code == 2 and half.stderr.strip() == (
        "glass: error: --precision fp16 needs CUDA; the CPU engine runs in fp32 or bf16 (or use an ONNX export)"
    )


def test_help_shows_examples_and_exit_codes():
    result = runner.invoke(app, ["scan", "--help"])
    assert result.exit_code == 0
    assert "glass scan ./photos --threshold 0.7" in result.stdout and "Exit codes" in result.stdout
    assert runner.invoke(app, ["--version"]).stdout.startswith("glass ")


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from glass_cli.cli import app; assert 'torch' not in sys.modules and 'timm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_workers_do_not_change_results(tmp_path, photo_dir, tiny_glass):
    docs = []
    for w in ("1", "3"):
        (tmp_path / w).mkdir()
        _, doc = scan_json(tmp_path / w, photo_dir, "--weights", tiny_glass, "--workers", w, "--batch-size", "2")
        docs.append({f["path"]: (f["p_ai"], [c["box"] for c in f["crops"]]) for f in doc["files"]})
    assert docs[0].keys() == docs[1].keys()
    for path, (p, boxes) in docs[0].items():
        assert docs[1][path][1] == boxes and abs(docs[1][path][0] - p) < 1e-6


def test_shards_partition_the_files(tmp_path, tiny_glass):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(12):
        noise_image(40, 40, i).save(d / f"f{i:02d}.png")
    (d / "bad.jpg").write_bytes(b"x")
    seen = []
    for i in (1, 2, 3):
        out = tmp_path / f"s{i}.jsonl"
        result = scan(d, "--weights", tiny_glass, "--shard", f"{i}/3", "--jsonl", out, "--threshold", "1")
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert 0 < len(records) < 13  # every shard gets a share, none gets all
        assert result.exit_code == (3 if any(r["verdict"] == "error" for r in records) else 0), result.output
        seen += [r["path"] for r in records]
    assert sorted(seen) == sorted(str(p) for p in d.iterdir())  # disjoint and complete
    result = scan(d, "--weights", tiny_glass, "--shard", "4/3")
    assert result.exit_code == 2 and result.stderr.strip() == "glass: error: --shard I/N needs 1 <= I <= N, got '4/3'"


def test_bad_destination_fails_before_the_walk_and_the_model(tmp_path, photo_dir, tiny_glass, monkeypatch):
    import glass_cli.scan.job as job

    def forbidden(*args, **kwargs):
        raise AssertionError("a bad destination must fail before this")

    monkeypatch.setattr(job, "iter_files", forbidden)
    monkeypatch.setattr(job, "open_engine", forbidden)
    cases = [
        (["--json", photo_dir / "out.json"], f"{photo_dir / 'out.json'}: refusing to write inside the scanned folder {photo_dir}; write it elsewhere"),
        (["--json", "-", "--csv", "-"], "only one of --json, --jsonl and --csv can write to stdout ('-')"),
        (["--report", "-"], "--report needs a path, not '-'"),
    ]
    for args, message in cases:
        result = scan(photo_dir, "--weights", tiny_glass, *args)
        assert (result.exit_code, result.stdout, result.stderr.strip()) == (2, "", f"glass: error: {message}")
    assert not (photo_dir / "out.json").exists()


def test_scan_paths_from_python(tmp_path, photo_dir, tiny_glass):
    from glass_cli.errors import ScanError
    from glass_cli.outputs.sinks import OutputOptions
    from glass_cli.scan.job import scan_paths
    from glass_cli.scan.settings import ScanSettings

    out = tmp_path / "scan.jsonl"
    job = scan_paths([photo_dir], ScanSettings(weights=tiny_glass, threshold=0.0, outputs=OutputOptions(jsonl=str(out)),
                                               workers=1))
    assert job.engine is None and len(job.files) == len(list(photo_dir.iterdir()))  # walked, model not loaded yet
    results = job.run()  # in the order they finish: errors at once, scored files by batch
    assert sorted(r.index for r in results) == list(range(len(job.files)))
    too_small = [r for r in results if r.error]
    assert sorted((Path(r.path).name, r.error) for r in too_small) == [  # the default --min-side is 128
        ("grey.png", "too small to judge (100x80): glass scores images of at least 128 px on each side (--min-side)"),
        ("small.webp", "too small to judge (20x12): glass scores images of at least 128 px on each side (--min-side)"),
    ]
    small = next(r for r in too_small if r.path.endswith("small.webp"))
    assert (small.width, small.height, small.p_ai) == (20, 12, None)
    assert len(out.read_text().splitlines()) == len(results)
    assert job.exit_code == (1 if any(r.flagged for r in results) else 3)
    with pytest.raises(ScanError, match="refusing to write inside the scanned folder"):
        scan_paths([photo_dir], ScanSettings(weights=tiny_glass, outputs=OutputOptions(csv=str(photo_dir / "x.csv"))))


def test_error_wrapper_one_line_exit_codes_and_debug(photo_dir, tiny_glass, monkeypatch):
    import glass_cli.scan.job as job
    from glass_cli.inference.engines import EngineError

    def boom(*args, **kwargs):
        raise raised

    cases = [
        (EngineError("the engine says no"), 2, "glass: error: the engine says no"),
        (PermissionError(13, "Permission denied", "/some/file"), 2, "glass: error: /some/file: Permission denied"),
        (KeyError("surprise"), 2, "glass: error: unexpected KeyError: 'surprise' (run again with --debug for the traceback)"),
        (KeyboardInterrupt(), 130, "glass: error: interrupted after 0 files"),
    ]
    for raised, code, line in cases:
        monkeypatch.setattr(job, "open_engine", boom)
        result = scan(photo_dir, "--weights", tiny_glass)
        assert (result.exit_code, result.stderr.strip()) == (code, line)
        assert "Traceback" not in result.output
        if code != 130:
            debug = scan(photo_dir, "--weights", tiny_glass, "--debug")
            assert debug.exit_code == 1 and debug.exception is raised  # --debug lets it through


def test_cli_choices_come_from_the_library():
    from glass_cli import config
    from glass_cli import errors as library_errors
    from glass_cli.cli import options
    from glass_cli.evaluation.cv import options as cv
    from glass_cli.inference import engines
    from glass_cli.tuning import options as study

    assert [m.value for m in options.Balance] == list(config.BALANCE_MODES)
    assert [m.value for m in options.Reencode] == list(config.REENCODE_MODES)
    assert [m.value for m in options.Precision] == list(engines.PRECISIONS)
    assert [m.value for m in options.Engine] == list(engines.ENGINES)
    assert [m.value for m in options.GroupBy] == list(cv.GROUP_BY)
    assert [m.value for m in options.Metric] == list(study.METRIC_NAMES)
    assert options.MAX_PIXELS == 250_000_000 and library_errors.EXIT_USAGE == 2
    fields = {f for f in config.TrainConfig.__dataclass_fields__}
    assert set(options.FLAG_FIELDS.values()) <= fields
    assert options.FLAG_FIELDS["lr_head"] == "lr_atten_class" and options.FLAG_FIELDS["cache"] == "cache_images"


def test_training_options_are_the_same_set_in_train_cv_and_tune():
    import click
    import typer

    from glass_cli.cli import options

    command = typer.main.get_command(app)

    def names(cmd):
        sub = command.commands[cmd]
        return {p.name for p in sub.get_params(click.Context(sub))}

    shared = {s.name for s in options.MODEL + options.OPTIMISATION + options.DATA + options.RUNTIME}
    assert shared <= names("train") and shared <= names("cv") and shared <= names("tune")
    assert {"dropout", "size_aug", "warmup_epochs"} <= names("cv") & names("tune")


def test_readme_scan_table_is_generated_from_help():
    cogapp = pytest.importorskip("cogapp")
    from glass_cli.cli.doc import options_table

    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert options_table("scan") in readme.read_text(encoding="utf-8")
    assert cogapp.Cog().main(["cog", "--check", str(readme)]) == 0
    table = options_table("scan")
    for row in ("| `--shard I/N` |", "| `--workers N` |", "| `--recursive / --no-recursive` |", "| `--max-pixels N` | Refuse images"):
        assert row in table
