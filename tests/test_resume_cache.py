"""Long scans: --resume after a kill (the records of one uninterrupted scan, every file once)
and --cache (a file seen before is answered without decoding or scoring, and the answer is
the one a fresh scan gives)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glass_cli.cli import app

from .conftest import noise_image

runner = CliRunner(env={"COLUMNS": "200", "GLASS_WEIGHTS": ""})
GLASS = shutil.which("glass", path=os.path.dirname(sys.executable))


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """A few hundred small generated pictures in two formats, and three bad files."""
    d = tmp_path_factory.mktemp("many") / "inbox"
    (d / "sub").mkdir(parents=True)
    for i in range(240):
        picture = noise_image(40 + i % 50, 90 - i % 40, seed=100 + i)
        target = d / ("sub" if i % 7 == 0 else "") / f"img{i:03d}"
        picture.save(f"{target}.png") if i % 3 == 0 else picture.save(f"{target}.jpg", quality=85)
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("not a picture")
    noise_image(20, 20, 9).save(d / "tiny.png")  # below --min-side 32
    return d


def records(path: Path) -> dict[str, str]:
    """{path: the record's line} of a JSON Lines file, refusing doubles and torn lines."""
    text = path.read_text()
    assert text.endswith("\n")
    lines = text.splitlines()
    out = {json.loads(line)["path"]: line for line in lines}
    assert len(out) == len(lines), "a file has two records"
    return out


def scan_args(folder, weights, jsonl, *extra) -> list[str]:
    return [GLASS, "scan", str(folder), "--weights", str(weights), "--min-side", "32", "--batch-size", "4",
            "--workers", "2", "--jsonl", str(jsonl), *map(str, extra)]


def killed_after(args: list[str], jsonl: Path, lines: int, timeout: float = 120) -> bool:
    """Run a scan and SIGKILL it once ``jsonl`` holds at least ``lines`` records; False when
    the scan finished first."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= lines:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    proc.wait(timeout=timeout)
    return False


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, many, tiny_onnx):
    out = tmp_path_factory.mktemp("whole") / "scan.jsonl"
    done = subprocess.run(scan_args(many, tiny_onnx, out, "--json", out.with_suffix(".json")), capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    return records(out), json.loads(out.with_suffix(".json").read_text()), done.stdout


def kill_three_times_then_finish(tmp_path, many, weights, *extra):
    jsonl = tmp_path / "scan.jsonl"
    kills = 0
    for lines in (30, 110, 190):
        resume = ["--resume"] if jsonl.exists() else []
        kills += killed_after(scan_args(many, weights, jsonl, *extra, *resume), jsonl, lines)
    done = subprocess.run(scan_args(many, weights, jsonl, *extra, "--resume", "--json", tmp_path / "scan.json"),
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    return kills, done, jsonl


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_three_kills_and_resumes_give_the_records_of_one_scan(tmp_path, many, tiny_onnx, uninterrupted, pool):
    want, want_doc, want_stdout = uninterrupted
    kills, done, jsonl = kill_three_times_then_finish(tmp_path, many, tiny_onnx, "--pool", pool)
    assert kills == 3
    assert done.returncode == 1, done.stderr
    assert records(jsonl) == want  # every file once, no torn line, the same records
    doc = json.loads((tmp_path / "scan.json").read_text())
    assert doc["files"] == want_doc["files"] and doc["summary"] == want_doc["summary"]
    summary = [line for line in done.stdout.splitlines() if " scanned, " in line]
    assert summary == [line for line in want_stdout.splitlines() if " scanned, " in line] == [
        "240 scanned, 240 flagged as AI (P(AI) >= 0.5), 0 real, 3 not scanned"]  # the whole scan's


def test_a_torn_last_line_is_dropped_and_its_file_scanned_again(tmp_path, many, tiny_onnx, uninterrupted):
    want, _, _ = uninterrupted
    jsonl = tmp_path / "scan.jsonl"
    result = runner.invoke(app, scan_args(many, tiny_onnx, jsonl)[1:])
    assert result.exit_code == 1, result.output
    lines = jsonl.read_bytes().splitlines(keepends=True)
    jsonl.write_bytes(b"".join(lines[:100]) + lines[100][:37])  # the kill cut record 101 short
    result = runner.invoke(app, [*scan_args(many, tiny_onnx, jsonl)[1:], "--resume"])
    assert result.exit_code == 1, result.output
    assert records(jsonl) == want
    assert "resumed: 99 files already scanned in scan.jsonl, 144 to scan" in result.stderr  # an unreadable file is tried again


def test_resume_refuses_records_of_other_settings(tmp_path, many, tiny_onnx, tiny_glass, tiny_baseline):
    jsonl = tmp_path / "scan.jsonl"
    assert runner.invoke(app, scan_args(many, tiny_onnx, jsonl)[1:]).exit_code == 1
    before = jsonl.read_bytes()
    cases = [
        (["--min-side", "48"], "its records were written with --min-side 32, this scan has 48"),
        (["--threshold", "0.9"], "its records were written with --threshold 0.5, this scan has 0.9"),
        (["--no-watermarks"], "its records were written with --watermarks on, this scan has off"),
    ]
    for extra, message in cases:
        args = scan_args(many, tiny_onnx, jsonl)[1:]
        if extra[0] == "--min-side":
            args = [a if a != "32" else "48" for a in args]
        else:
            args += extra
        result = runner.invoke(app, [*args, "--resume"])
        assert (result.exit_code, result.stderr) == (2, f"glass: error: {jsonl}: {message}; resume with the same settings, "
                                                        "or scan into a new file\n")
    result = runner.invoke(app, [*scan_args(many, tiny_glass, jsonl)[1:], "--precision", "fp32", "--resume"])  # the same model, in torch
    assert result.exit_code == 2 and "its records were written with --engine onnx, this scan has torch;" in result.stderr
    result = runner.invoke(app, [*scan_args(many, tiny_baseline, jsonl)[1:], "--resume"])
    assert result.exit_code == 2 and "its records were written with the model sha256:" in result.stderr
    (tmp_path / "scan.jsonl.settings.json").unlink()
    result = runner.invoke(app, [*scan_args(many, tiny_onnx, jsonl)[1:], "--resume"])
    assert result.stderr == (f"glass: error: {jsonl}: its settings file scan.jsonl.settings.json is missing, so its records "
                             "cannot be matched to this scan; scan into a new file\n")
    assert jsonl.read_bytes() == before  # a refused resume leaves the records alone
    result = runner.invoke(app, ["scan", str(many), "--weights", str(tiny_onnx), "--resume"])
    assert (result.exit_code, result.stderr) == (2, "glass: error: --resume needs --jsonl FILE: the records to resume from\n")


def test_a_changed_file_is_scanned_again(tmp_path, many, tiny_onnx):
    folder = tmp_path / "inbox"
    shutil.copytree(many, folder)
    jsonl = tmp_path / "scan.jsonl"
    assert runner.invoke(app, scan_args(folder, tiny_onnx, jsonl)[1:]).exit_code == 1
    noise_image(70, 70, seed=5).save(folder / "img001.jpg", quality=80)  # replaced since
    result = runner.invoke(app, [*scan_args(folder, tiny_onnx, jsonl)[1:], "--resume"])
    assert result.exit_code == 1, result.output
    assert "resumed: 241 files already scanned in scan.jsonl, 2 to scan" in result.stderr  # and the empty file
    new = json.loads(records(jsonl)[str(folder / "img001.jpg")])
    assert (new["width"], new["height"]) == (70, 70)


# ---------------------------------------------------------------------------- the cache


def test_a_cached_rescan_skips_the_decode_and_equals_a_fresh_scan(tmp_path, many, tiny_onnx, monkeypatch):
    import glass_cli.scan.step as step

    cache = tmp_path / "results.sqlite"
    fresh, first, cached = (tmp_path / f"{name}.jsonl" for name in ("fresh", "first", "cached"))
    assert runner.invoke(app, scan_args(many, tiny_onnx, fresh)[1:]).exit_code == 1
    assert runner.invoke(app, [*scan_args(many, tiny_onnx, first)[1:], "--cache", cache]).exit_code == 1
    decoded = []
    real = step.decode_bytes
    monkeypatch.setattr(step, "decode_bytes", lambda *a, **k: decoded.append(a[1]) or real(*a, **k))
    result = runner.invoke(app, [*scan_args(many, tiny_onnx, cached)[1:], "--cache", cache])
    assert result.exit_code == 1, result.output
    assert records(cached) == records(first) == records(fresh)  # the cache never changes a result
    # only what the cache does not keep is decoded again: the file that is no picture (the
    # empty one fails before any decode)
    assert sorted(Path(p).name for p in decoded) == ["text.png"]
    assert "cache: 241 of 243 files answered from results.sqlite" in result.stderr


def test_the_same_picture_under_another_name_is_a_hit_and_another_model_misses(tmp_path, many, tiny_onnx,
                                                                                  tiny_baseline, monkeypatch):
    import glass_cli.scan.step as step

    cache = tmp_path / "results.sqlite"
    assert runner.invoke(app, [*scan_args(many, tiny_onnx, tmp_path / "a.jsonl")[1:], "--cache", cache]).exit_code == 1
    reposted = tmp_path / "reposted"
    reposted.mkdir()
    shutil.copy(many / "img005.jpg", reposted / "viral-copy.jpg")
    decoded = []
    real = step.decode_bytes
    monkeypatch.setattr(step, "decode_bytes", lambda *a, **k: decoded.append(a[1]) or real(*a, **k))
    out = tmp_path / "b.jsonl"
    assert runner.invoke(app, [*scan_args(reposted, tiny_onnx, out)[1:], "--cache", cache]).exit_code == 1
    assert decoded == []
    copy, original = json.loads(records(out)[str(reposted / "viral-copy.jpg")]), json.loads(records(tmp_path / "a.jsonl")[str(many / "img005.jpg")])
    assert {k: v for k, v in copy.items() if k not in ("path", "mtime_ns")} == {k: v for k, v in original.items() if k not in ("path", "mtime_ns")}
    out = tmp_path / "c.jsonl"
    result = runner.invoke(app, [*scan_args(reposted, tiny_baseline, out)[1:], "--cache", cache])
    assert result.exit_code == 0, result.output
    assert [Path(p).name for p in decoded] == ["viral-copy.jpg"]  # another model id: a miss


@pytest.mark.slow
def test_two_scans_at_once_share_one_cache(tmp_path, many, tiny_onnx):
    cache = tmp_path / "results.sqlite"
    halves = [tmp_path / "inbox" / "a", tmp_path / "inbox" / "b"]
    for i, half in enumerate(halves):
        half.mkdir(parents=True)
        for f in sorted(many.glob("img*"))[i::2]:
            shutil.copy(f, half / f.name)
    procs = [subprocess.Popen(scan_args(half, tiny_onnx, tmp_path / f"{half.name}.jsonl", "--cache", cache),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for half in halves]
    assert [p.wait(timeout=300) for p in procs] == [1, 1], [p.stderr.read() for p in procs]
    import sqlite3

    with sqlite3.connect(cache) as conn:
        (n,) = conn.execute("SELECT count(*) FROM results").fetchone()
    assert n == len(list(many.glob("img*")))  # nothing lost, nothing doubled
    both = {**records(tmp_path / "a.jsonl"), **records(tmp_path / "b.jsonl")}
    again = tmp_path / "again.jsonl"
    done = subprocess.run(scan_args(tmp_path / "inbox", tiny_onnx, again, "--cache", cache), capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert records(again) == both  # every answer from the cache, each one what its scan wrote
    assert "cache: 205 of 205 files answered from results.sqlite" in done.stderr


def test_each_shard_resumes_from_its_own_records(tmp_path, many, tiny_onnx):
    first, second = tmp_path / "s1.jsonl", tmp_path / "s2.jsonl"
    assert runner.invoke(app, [*scan_args(many, tiny_onnx, first)[1:], "--shard", "1/2"]).exit_code == 1
    unread = sum(json.loads(line)["bytes"] is None for line in records(first).values())  # the empty file, if in this shard
    result = runner.invoke(app, [*scan_args(many, tiny_onnx, first)[1:], "--shard", "1/2", "--resume"])
    n = len(records(first))
    assert result.exit_code == 1 and f"resumed: {n - unread} files already scanned in s1.jsonl, {unread} to scan" in result.stderr
    result = runner.invoke(app, [*scan_args(many, tiny_onnx, first)[1:], "--shard", "2/2", "--resume"])
    assert (result.exit_code, result.stderr) == (2, f"glass: error: {first}: its records were written with --shard 1/2, this "
                                                    "scan has 2/2; resume with the same settings, or scan into a new file\n")
    assert runner.invoke(app, [*scan_args(many, tiny_onnx, second)[1:], "--shard", "2/2"]).exit_code == 1
    assert len(records(first)) + len(records(second)) == 243
