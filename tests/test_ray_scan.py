"""glass scan --ray: on a 2-CPU Ray instance started here, the same records, outputs and exit
codes as a local scan of the same folder of good and bad files, also when workers die."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glass_cli import extras
from glass_cli.cli import app

from . import ray_faults
from .conftest import noise_image

ray = pytest.importorskip("ray")
from glass_cli.scan import cluster  # noqa: E402
from glass_cli.scan.settings import RAY_ADDRESS_HELP, Limits, ScanSettings  # noqa: E402

runner = CliRunner(env={"COLUMNS": "200", "GLASS_WEIGHTS": ""})


@pytest.fixture(scope="module")
def kill_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kill")


@pytest.fixture(scope="module")
def ray_cluster(kill_dir):
    """A private Ray of 2 CPUs whose workers carry the tests' fault injection (``ray_faults``)."""
    ray.cloudpickle.register_pickle_by_value(ray_faults)  # the workers need not import the tests package
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {ray_faults.KILL_ENV: str(kill_dir), "OMP_NUM_THREADS": "1"},
                          "worker_process_setup_hook": ray_faults.install})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Good files in several formats and sizes, and one of each kind of bad file."""
    d = tmp_path_factory.mktemp("mixed") / "photos"
    (d / "sub").mkdir(parents=True)
    for i, (w, h) in enumerate([(120, 90), (64, 200), (300, 240), (97, 101), (150, 150), (80, 64)]):
        img = noise_image(w, h, seed=10 + i)
        img.save(d / f"good{i}.jpg", quality=92) if i % 2 else img.save(d / f"good{i}.png")
    noise_image(200, 160, 30).save(d / "sub" / "nested.webp")
    noise_image(20, 20, 31).save(d / "tiny.png")  # below --min-side
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("not a picture")
    good = (d / "good0.png").read_bytes()
    (d / "cut.png").write_bytes(good[: len(good) // 3])
    (d / "folder.jpg").mkdir()
    return d


def scan(*args) -> tuple:
    result = runner.invoke(app, ["scan", *map(str, args), "--min-side", "32"])
    return result


REPORT_TIME = re.compile(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def outputs(tmp: Path, folder: Path, weights: Path, *extra) -> tuple:
    tmp.mkdir(parents=True, exist_ok=True)
    result = scan(folder, "--weights", weights, "--batch-size", "3", "--jsonl", tmp / "s.jsonl", "--csv", tmp / "s.csv",
                  "--json", tmp / "s.json", "--report", tmp / "s.html", *extra)
    files = [(tmp / f"s.{ext}").read_bytes() for ext in ("jsonl", "csv", "json", "html")]
    files[3] = REPORT_TIME.sub(b"<when>", files[3])  # the report says when it was written, to the minute
    return (result, *files)


@pytest.fixture(scope="module")
def local(tmp_path_factory, mixed, tiny_onnx):
    return outputs(tmp_path_factory.mktemp("local"), mixed, tiny_onnx)


@pytest.mark.slow
def test_ray_scan_writes_the_records_of_a_local_scan(ray_cluster, local, mixed, tiny_onnx, tmp_path):
    result, jsonl, csv, doc, html = outputs(tmp_path, mixed, tiny_onnx, "--ray", "local")
    want_result, want_jsonl, want_csv, want_doc, want_html = local
    assert (result.exit_code, want_result.exit_code) == (1, 1), result.output
    assert jsonl == want_jsonl and csv == want_csv and doc == want_doc and html == want_html
    assert result.stdout == want_result.stdout and result.stderr == want_result.stderr
    records = [json.loads(line) for line in jsonl.splitlines()]
    assert len(records) == 12 and len({r["path"] for r in records}) == 12
    errors = {Path(r["path"]).name: r["error"] for r in records if r["verdict"] == "error"}
    assert sorted(errors) == ["cut.png", "empty.jpg", "folder.jpg", "text.png", "tiny.png"]
    assert errors["empty.jpg"] == "empty file (0 bytes)" and errors["folder.jpg"] == "is a directory, not an image file"
    assert all(r["p_ai"] is not None and len(r["crops"]) == 3 for r in records if r["verdict"] != "error")
    assert "7 scanned, " in result.stdout and ", 5 not scanned" in result.stdout


@pytest.mark.slow
def test_killed_workers_are_retried_and_no_file_is_lost_or_doubled(ray_cluster, local, mixed, tiny_onnx, tmp_path, kill_dir):
    armed = [kill_dir / "prepare-good2.png", kill_dir / "score-good3.jpg", kill_dir / "prepare-text.png"]
    for path in armed:
        path.touch()
    result, jsonl, *rest = outputs(tmp_path, mixed, tiny_onnx, "--ray", "local")
    assert [p.exists() for p in armed] == [False, False, False]  # each worker took its file and died
    assert result.exit_code == 1, result.output
    assert (jsonl, *rest) == local[1:]
    paths = [json.loads(line)["path"] for line in jsonl.splitlines()]
    assert len(paths) == len(set(paths)) == 12


def test_scan_dataset_in_a_pipeline_of_ones_own(ray_cluster, local, mixed, tiny_onnx):
    files = sorted(str(p) for p in mixed.rglob("*") if p.is_file())
    ds = ray.data.from_items([{"path": p} for p in files])
    rows = cluster.scan_dataset(ds, ScanSettings(weights=tiny_onnx, batch_size=4, limits=Limits(min_side=32))).take_all()
    want = {json.loads(line)["path"]: line for line in local[1].decode().splitlines()}
    assert sorted(r["path"] for r in rows) == files
    assert {r["path"]: r["record"] for r in rows} == {p: want[p] for p in files}
    one = next(r for r in rows if r["path"].endswith("good0.png"))
    result = cluster.load_result(one["result"])
    assert (result.verdict, result.p_ai) == (one["verdict"], one["p_ai"]) and result.p_ai == json.loads(want[one["path"]])["p_ai"]


@pytest.mark.slow
def test_the_cli_joins_a_running_cluster_by_its_address(ray_cluster, local, mixed, tiny_onnx, tmp_path):
    glass = shutil.which("glass", path=os.path.dirname(sys.executable))
    out = tmp_path / "s.jsonl"
    proc = subprocess.run([glass, "scan", str(mixed), "--weights", str(tiny_onnx), "--batch-size", "3", "--min-side", "32",
                           "--jsonl", str(out), "--ray", ray_cluster], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr
    assert out.read_bytes() == local[1]
    # Ray 2.60's C++ core logs one line per actor pool it starts about constructor
    # arguments in the object store (ray-project/ray#53727); glass itself prints nothing.
    assert [line for line in proc.stderr.splitlines() if "has constructor arguments in the object store" not in line] == []
    assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2  # the cluster outlives the job


@pytest.mark.parametrize("argv, message", [
    (["--ray", "nowhere"], "--ray nowhere: expected " + RAY_ADDRESS_HELP),
    (["--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: cannot reach a Ray head node there (Connection refused)"),
    (["--ray-actors", "2"], "--ray-actors needs --ray"),
    (["--ray", "local", "--trustmark"], "--trustmark does not run on Ray yet: scan without --ray to decode TrustMark"),
    (["--ray", "local", "--decode", "gpu"], "--decode gpu does not run on Ray: the Ray scan decodes in its CPU tasks"),
    (["--ray", "local", "--pool", "process"], "--pool applies to a local scan; on Ray each file is prepared in a Ray task"),
])
def test_bad_ray_options_are_one_line(argv, message, mixed, tiny_onnx):
    result = scan(mixed, "--weights", tiny_onnx, *argv)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"glass: error: {message}\n")


def test_cuda_on_a_cluster_without_gpus(ray_cluster, mixed, tiny_onnx):
    result = scan(mixed, "--weights", tiny_onnx, "--ray", "local", "--device", "cuda")
    assert (result.exit_code, result.stderr) == (2, "glass: error: --device cuda was asked for, but the Ray cluster reports no GPU\n")
    result = scan(mixed, "--weights", tiny_onnx, "--ray", "local", "--ray-actors", "2")
    assert result.exit_code == 2
    assert result.stderr == ("glass: error: 2 engine actor(s) would hold all 2 CPU(s) of the Ray cluster and leave none to read "
                             "the files (lower --ray-actors)\n")


def test_without_the_ray_extra(monkeypatch, mixed, tiny_onnx):
    monkeypatch.setattr(extras, "missing", lambda names: [m for m in names if m == "ray"])
    result = scan(mixed, "--weights", tiny_onnx, "--ray", "local")
    assert (result.exit_code, result.stderr) == (2, "glass: error: glass scan --ray needs the ray extra, which this install "
                                                    "lacks (ray not found): pip install 'glass-cli[ray]' (in a checkout: pip install -e '.[ray]')\n")


def test_the_plain_install_imports_no_ray():
    code = "import sys, glass_cli.cli, glass_cli.scan.job; print('ray' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


@pytest.mark.slow
def test_a_killed_ray_scan_resumes_to_the_records_of_a_local_scan(ray_cluster, tiny_onnx, tmp_path):
    from .test_resume_cache import killed_after, records

    folder = tmp_path / "inbox"
    folder.mkdir()
    for i in range(60):
        noise_image(64 + i, 90, seed=200 + i).save(folder / f"p{i:02d}.jpg", quality=90)
    local_jsonl = tmp_path / "local.jsonl"
    assert scan(folder, "--weights", tiny_onnx, "--batch-size", "3", "--jsonl", local_jsonl).exit_code == 1
    glass = shutil.which("glass", path=os.path.dirname(sys.executable))
    jsonl = tmp_path / "ray.jsonl"
    args = [glass, "scan", str(folder), "--weights", str(tiny_onnx), "--batch-size", "3", "--min-side", "32",
            "--jsonl", str(jsonl), "--ray", ray_cluster]
    assert killed_after(args, jsonl, 15, timeout=240)
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stderr
    assert records(jsonl) == records(local_jsonl)
