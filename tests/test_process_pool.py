"""Worker processes for preparing files (inference.processes): the same records as threads,
order kept, bounded, a stuck or crashing file costs only itself, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glass_cli.cli import app
from glass_cli.inference.processes import SlotLayout, choose_pool, exit_reason, process_map
from glass_cli.preprocess.sampling import CropPlan
from glass_cli.preprocess.views import Views
from tests.conftest import noise_image

LAYOUT = SlotLayout((3, 4, 4), (2, 3, 4, 4))


def fake_prepare(item):
    """Module level, so worker processes can import it. Items are ints; a few misbehave."""
    if item == "stuck":
        time.sleep(3600)
    if item == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if item == "raise":
        raise ZeroDivisionError("boom")
    if item == "none":
        return ("none", os.getpid()), None
    g = np.full((3, 4, 4), float(item), np.float32)
    c = np.full((2, 3, 4, 4), -float(item), np.float32)
    return (item, os.getpid()), Views(g, c, CropPlan(((0, 0, 4, 4),), "stratified", 1, (0,)), (item, item))


def _late(item, seconds):
    return ("late", item, seconds), None


def _lost(item, code):
    return ("lost", item, exit_reason(code)), None


def test_process_map_keeps_order_and_hands_views_through_shared_memory():
    items = list(range(30)) + ["none"] + list(range(30, 40))
    got = list(process_map(fake_prepare, items, LAYOUT, workers=2, window=4))
    assert [r[0] for r, _ in got] == items
    assert len({r[1] for r, _ in got}) == 2  # two worker processes did the work
    for (item, _), views in got:
        if item == "none":
            assert views is None
            continue
        assert views.global_view.shape == (3, 4, 4) and np.all(views.global_view == item)
        assert views.crops.shape == (2, 3, 4, 4) and np.all(views.crops == -item)
        assert views.image_size == (item, item) and views.plan.boxes == ((0, 0, 4, 4),)


def test_a_stuck_file_is_killed_and_a_crashed_worker_costs_only_its_file():
    items = [0, "stuck", 1, "crash", 2, 3, "crash", 4]
    start = time.monotonic()
    got = list(process_map(fake_prepare, items, LAYOUT, workers=2, window=4, timeout=1.0, on_timeout=_late, on_lost=_lost))
    assert time.monotonic() - start < 30
    firsts = [r[0] if r[0] not in ("late", "lost") else r[:3] for r, _ in got]
    assert firsts == [0, ("late", "stuck", 1.0), 1, ("lost", "crash", "killed by SIGKILL"), 2, 3,
                      ("lost", "crash", "killed by SIGKILL"), 4]


def test_an_exception_in_prepare_is_raised_in_the_caller():
    with pytest.raises(ZeroDivisionError, match="boom"):
        list(process_map(fake_prepare, [1, "raise", 2], LAYOUT, workers=2, window=2))


def test_choose_pool():
    assert [choose_pool("auto", n) for n in (1, 4, 5, 16)] == ["thread", "thread", "process", "process"]
    assert choose_pool("thread", 16) == "thread" and choose_pool("process", 1) == "process"
    with pytest.raises(ValueError):
        choose_pool("gpu", 2)


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "mixed"
    d.mkdir()
    for i in range(7):
        noise_image(90 + 13 * i, 70 + 7 * i, i).save(d / f"p{i}.jpg", quality=90)
    noise_image(80, 64, 9).save(d / "q.png")
    (d / "text.jpg").write_bytes(b"not an image at all")
    (d / "empty.png").write_bytes(b"")
    (d / "cut.jpg").write_bytes((d / "p1.jpg").read_bytes()[:300])
    return d


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("model", ["tiny_glass", "tiny_baseline"])
def test_process_pool_gives_the_records_of_the_thread_pool(runner, tmp_path, model, request):
    weights = str(request.getfixturevalue(model))
    d = _folder(tmp_path)
    outs = {}
    for pool in ("thread", "process"):
        out, report = tmp_path / f"{pool}.jsonl", tmp_path / f"{pool}.html"
        result = runner.invoke(app, ["scan", str(d), "--weights", weights, "--min-side", "1", "--all", "--jsonl", str(out),
                                     "--report", str(report), "--workers", "2", "--pool", pool, "--batch-size", "3",
                                     "--threshold", "1"])
        assert result.exit_code == 3, result.output  # nothing flagged by this tiny model, some files not scanned
        # the report's pictures come back from the workers too; it says when it was written, to the minute
        outs[pool] = out.read_text(), re.sub(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", b"<when>", report.read_bytes())
    assert outs["thread"] == outs["process"]
    recs = _records(tmp_path / "process.jsonl")
    assert len(recs) == 11 and len({r["path"] for r in recs}) == 11
    assert {Path(r["path"]).name: r["error"] for r in recs if r["verdict"] == "error"} == {
        "text.jpg": "not an image, or a format glass cannot read",
        "empty.png": "empty file (0 bytes)",
        "cut.jpg": "truncated image data (file incomplete or corrupt)",
    }


def test_pool_option_is_checked(runner, tmp_path, tiny_glass):
    d = _folder(tmp_path)
    result = runner.invoke(app, ["scan", str(d), "--weights", str(tiny_glass), "--pool", "gpu"])
    flat = " ".join(result.output.replace("│", " ").split())  # rich wraps the error box
    assert result.exit_code == 2 and "Invalid value for '--pool': Value error, 'gpu' is not one of 'auto', 'thread', 'process'." in flat


def _descendants(pid: int) -> list[str]:
    found, todo = [], [str(pid)]
    while todo:
        kids = subprocess.run(["pgrep", "-P", todo.pop()], capture_output=True, text=True).stdout.split()
        found += kids
        todo += kids
    return found


def _alive(pid: str) -> bool:
    try:
        return "\tZ" not in Path(f"/proc/{pid}/status").read_text().split("State:")[1][:4]
    except (FileNotFoundError, IndexError):
        return False


def _shm_entries() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir()} if Path("/dev/shm").is_dir() else set()


def _terminal_sigint() -> None:
    """SIGINT as a terminal's process has it. A job started with & by a non-interactive shell
    (a CI script run in the background) inherits SIGINT ignored, and Python then never turns
    Ctrl-C into KeyboardInterrupt: the scan would run to its end, as it should there."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process group is POSIX")
def test_ctrl_c_stops_the_workers_and_removes_the_shared_memory(tmp_path, tiny_glass):
    d = tmp_path / "many"
    d.mkdir()
    noise_image(900, 700, 1).save(d / "f0000.png", compress_level=1)
    for i in range(1, 1600):  # hard links: cheap to make, and a scan (about 20 s) that Ctrl-C surely lands in
        os.link(d / "f0000.png", d / f"f{i:04d}.png")
    before = _shm_entries()
    glass = Path(sys.executable).with_name("glass")
    proc = subprocess.Popen([str(glass), "scan", str(d), "--weights", str(tiny_glass), "--pool", "process", "--workers", "2",
                             "--jsonl", str(tmp_path / "out.jsonl")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_terminal_sigint)
    deadline = time.monotonic() + 60
    out = tmp_path / "out.jsonl"
    while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 0):
        time.sleep(0.2)
    children = _descendants(proc.pid)
    assert len(children) >= 2, "the scan should have worker processes by now"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after" in stderr
    deadline = time.monotonic() + 15  # multiprocessing's helpers (fork server) leave once they see the parent gone
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)]
    assert _shm_entries() <= before
    done = _records(out)
    assert len({r["path"] for r in done}) == len(done)  # what was written, written once
