"""Forensic outputs of `glass scan`: JSON/JSONL/CSV records, crops, HTML report, evidence,
the uncertain band, and the extended bad-input corpus."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from glass_cli.io import image as image_io
from glass_cli.outputs.pictures import VERDICT_COLOURS

from .conftest import noise_image
from .provenance import c2pa_signed_jpeg, jpeg_with_xmp, png_bomb, png_with_text
from .test_scan_cli import scan, tree_state

A1111 = "portrait of a sailor\nSteps: 30, Sampler: Euler a, CFG scale: 6, Seed: 42, Size: 768x768"
RECORD_KEYS = {
    "path", "verdict", "p_ai", "threshold", "model_id", "engine", "width", "height", "bytes", "mtime_ns", "sha256", "format",
    "sampling", "crops", "evidence", "evidence_declares_ai", "error",
}


@pytest.fixture
def mixed_dir(tmp_path):
    d = tmp_path / "case"
    d.mkdir()
    noise_image(640, 480, 1).save(d / "camera.jpg", quality=93)
    (d / "a1111.png").write_bytes(png_with_text(parameters=A1111))
    (d / "xmp-ai.jpg").write_bytes(jpeg_with_xmp("trainedAlgorithmicMedia"))
    (d / "c2pa.jpg").write_bytes(c2pa_signed_jpeg())
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return d


def test_all_outputs_from_one_scan(tmp_path, mixed_dir, tiny_glass):
    out = tmp_path / "out"
    before = tree_state(mixed_dir)
    result = scan(mixed_dir, "--weights", tiny_glass, "--threshold", "0",
                  "--json", out / "r.json", "--jsonl", out / "r.jsonl", "--csv", out / "r.csv",
                  "--save-crops", out / "crops", "--report", out / "r.html")
    assert result.exit_code == 1, result.output
    assert tree_state(mixed_dir) == before
    doc = json.loads((out / "r.json").read_text())
    lines = [json.loads(line) for line in (out / "r.jsonl").read_text().splitlines()]
    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text())))
    assert len(doc["files"]) == len(lines) == len(rows) == 5
    assert {r["path"] for r in lines} == {f["path"] for f in doc["files"]} == {r["path"] for r in rows}
    for rec in doc["files"]:
        assert set(rec) == RECORD_KEYS
        assert rec["model_id"] == doc["model"]["id"] and rec["model_id"].startswith("sha256:")
    recs = {Path(r["path"]).name: r for r in doc["files"]}
    assert recs["broken.jpg"]["verdict"] == "error" and recs["broken.jpg"]["sha256"]
    assert recs["a1111.png"]["evidence_declares_ai"] and recs["a1111.png"]["evidence"][0]["value"] == A1111
    assert recs["xmp-ai.jpg"]["evidence"][0]["value"] == "trainedAlgorithmicMedia"
    assert {e["key"] for e in recs["c2pa.jpg"]["evidence"]} >= {"claim_generator", "digitalSourceType", "validation"}
    assert not recs["camera.jpg"]["evidence_declares_ai"]
    csv_rec = {Path(r["path"]).name: r for r in rows}
    assert csv_rec["a1111.png"]["evidence"] == "PNG parameters (A1111/Forge/SD.Next)"
    assert csv_rec["camera.jpg"]["top_crop_box"].count(" ") == 3 and csv_rec["broken.jpg"]["error"]
    # crops: K crop PNGs + an overlay per flagged file, named after the file
    crops = sorted(p.name for p in (out / "crops").iterdir())
    assert len(crops) == 4 * (3 + 1)
    camera = [c for c in crops if c.startswith("camera-")]
    assert camera[-1].endswith(".overlay.png") and camera[0].split(".crop1-w")[0] == camera[-1].split(".overlay")[0]
    first = Image.open(out / "crops" / camera[0])
    assert first.size == (32, 32)
    # the overlay: boxes in the verdict's colour (these files are flagged), a legend strip below
    rec = recs["camera.jpg"]
    ov = Image.open(out / "crops" / camera[-1]).convert("RGB")
    assert ov.height > rec["height"] and ov.width >= rec["width"]
    left, top, right, bottom = rec["crops"][0]["box"]  # rank 1, at preview scale 1 (the image is small), below the header
    header = next(y for y in range(ov.height) if ov.getpixel((left, y)) == VERDICT_COLOURS["ai"] and y > 30) - top
    assert all(ov.getpixel((left, header + y)) == VERDICT_COLOURS["ai"] for y in range(top + 3, bottom - 3))  # its left edge
    assert [c["rank"] for c in rec["crops"]] == [1, 2, 3]
    assert csv_rec["a1111.png"]["evidence_declares_ai"] == "true" and csv_rec["camera.jpg"]["evidence_declares_ai"] == "false"
    # evidence column in the table
    assert "PNG parameters (A1111/Forge/SD.Next)" in result.stdout and "XMP trainedAlgorithmicMedia" in result.stdout
    html = (out / "r.html").read_text()
    assert html.count('<tr class="file"') == 5 and "http" not in html.split("<body")[1].replace("http://cv.iptc", "")


def test_resize_only_model_outputs_say_there_are_no_crops(tmp_path, mixed_dir, tiny_baseline, tiny_glass):
    """The shipped default is resize-only: its overlays and report say no crops were judged
    instead of promising crops ranked by attention."""
    out = tmp_path / "out"
    result = scan(mixed_dir, "--weights", tiny_baseline, "--threshold", "0", "--save-crops", out / "crops", "--report", out / "r.html")
    assert result.exit_code == 1, result.output
    crops = sorted(p.name for p in (out / "crops").iterdir())
    assert len(crops) == 4 and all(name.endswith(".overlay.png") for name in crops)  # an overlay per flagged file, no crop PNGs
    html = (out / "r.html").read_text()
    assert "<th>image (the model judged the whole picture, resized: no crops)</th>" in html and "numbered by attention rank" not in html
    glass = scan(mixed_dir, "--weights", tiny_glass, "--threshold", "0", "--report", out / "g.html")
    assert glass.exit_code == 1 and "<th>image (boxes: the crops, numbered by attention rank;" in (out / "g.html").read_text()
    # the heading follows the model, not the files: a GLASS scan whose only file is unreadable still promises crops
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "b.jpg").write_bytes(b"not a jpeg")
    none_read = scan(broken, "--weights", tiny_glass, "--report", out / "b.html")
    assert none_read.exit_code == 3 and "numbered by attention rank" in (out / "b.html").read_text()
    # the overlay's legend says so too
    from glass_cli.outputs.pictures import legend_lines
    from glass_cli.results import CropScore, ScanResult
    assert legend_lines(ScanResult(path="x.jpg", verdict="ai")) == ["no crops: a resize-only model judged the whole picture"]
    one = ScanResult(path="x.jpg", verdict="ai", crops=[CropScore(box=(0, 0, 224, 224), weight=1.0)])
    assert legend_lines(one, 224) == ["crops ranked by attention weight", "1: weight 1.000  box (0,0)-(224,224)  224x224 px"]


def test_stdout_streams_and_single_stdout_rule(mixed_dir, tiny_glass):
    result = scan(mixed_dir, "--weights", tiny_glass, "--jsonl", "-")
    streamed = [Path(json.loads(line)["path"]).name for line in result.stdout.splitlines()]
    assert streamed[0] == "broken.jpg"  # errors stream at once; good files when their batch has run
    assert len(result.stdout.splitlines()) == 5 and "5 scanned" not in result.stdout
    result = scan(mixed_dir, "--weights", tiny_glass, "--csv", "-")
    assert result.stdout.splitlines()[0].startswith("path,verdict,p_ai,threshold,model_id")
    result = scan(mixed_dir, "--weights", tiny_glass, "--json", "-", "--csv", "-")
    assert result.exit_code == 2
    assert result.stderr.strip() == "glass: error: only one of --json, --jsonl and --csv can write to stdout ('-')"


def test_crops_and_report_refused_inside_scanned_folder(mixed_dir, tiny_glass):
    before = tree_state(mixed_dir)
    for flag, dest in (("--save-crops", mixed_dir / "crops"), ("--report", mixed_dir / "r.html"), ("--jsonl", mixed_dir / "x.jsonl")):
        result = scan(mixed_dir, "--weights", tiny_glass, flag, dest)
        assert result.exit_code == 2 and "refusing to write inside the scanned folder" in result.stderr
    assert tree_state(mixed_dir) == before


def test_uncertain_band(tmp_path, mixed_dir, tiny_glass):
    out = tmp_path / "all.json"
    scan(mixed_dir, "--weights", tiny_glass, "--json", out)
    scores = sorted(f["p_ai"] for f in json.loads(out.read_text())["files"] if f["p_ai"] is not None)
    low, high = scores[0], scores[-1] + 1e-6  # every scored file falls in the band, the threshold too
    result = scan(mixed_dir, "--weights", tiny_glass, "--uncertain", f"{low}:{high}", "--threshold", str(low), "--json", out)
    doc = json.loads(out.read_text())
    assert result.exit_code == 1
    assert doc["summary"]["uncertain"] == 4 and doc["uncertain"] == [low, high]
    assert {f["verdict"] for f in doc["files"]} == {"uncertain", "error"}
    assert "4 uncertain" in result.stdout
    for bad in ("1.5", "0.7:0.2", "a:b"):
        result = scan(mixed_dir, "--weights", tiny_glass, "--uncertain", bad)
        assert result.exit_code == 2 and "Traceback" not in result.output and result.stderr.startswith("glass: error: ")


def test_verdicts_follow_the_scores_whatever_the_band(tmp_path, mixed_dir, tiny_glass):
    """A band that leaves out the threshold is refused (it would call a higher score real and
    a lower one uncertain); WIDTH puts the band around the threshold."""
    result = scan(mixed_dir, "--weights", tiny_glass, "--threshold", "0.791", "--uncertain", "0.4:0.6")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("glass: error: --uncertain 0.4:0.6 leaves out the threshold 0.791, so verdicts would not follow "
                             "the scores; give a band that holds it, or --uncertain WIDTH for the threshold plus or minus WIDTH\n")
    out = tmp_path / "band.json"
    scan(mixed_dir, "--weights", tiny_glass, "--json", out)
    scores = sorted(f["p_ai"] for f in json.loads(out.read_text())["files"] if f["p_ai"] is not None)
    middle = (scores[1] + scores[2]) / 2
    width = (scores[2] - scores[1]) / 2 + 1e-9  # scores[1] and [2] inside, the others outside
    result = scan(mixed_dir, "--weights", tiny_glass, "--threshold", str(middle), "--uncertain", f"{width}", "--json", out)
    doc = json.loads(out.read_text())
    by_score = sorted((f["p_ai"], f["verdict"]) for f in doc["files"] if f["p_ai"] is not None)
    assert [v for _, v in by_score] == ["real", "uncertain", "uncertain", "ai"]
    assert doc["uncertain"] == pytest.approx([middle - width, middle + width])


def test_killed_scan_keeps_finished_records(tmp_path, mixed_dir, tiny_glass, monkeypatch):
    import glass_cli.inference.engines as engines

    calls = {"n": 0}
    real = engines.TorchEngine.predict

    def dies_on_second_batch(self, g, c):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, g, c)

    monkeypatch.setattr(engines.TorchEngine, "predict", dies_on_second_batch)
    out = tmp_path / "partial.jsonl"
    result = scan(mixed_dir, "--weights", tiny_glass, "--jsonl", out, "--batch-size", "2")
    assert result.exit_code == 130 and result.stderr.strip() == "glass: error: interrupted after 3 files"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3  # the unreadable file and the first batch of two


def test_unexpected_errors_are_one_line_without_debug(mixed_dir, tiny_glass, monkeypatch):
    import glass_cli.inference.engines as engines

    def boom(self, g, c):
        raise RuntimeError("simulated engine failure")

    monkeypatch.setattr(engines.TorchEngine, "predict", boom)
    result = scan(mixed_dir, "--weights", tiny_glass)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "glass: error: unexpected RuntimeError: simulated engine failure (run again with --debug for the traceback)"
    )
    result = scan(mixed_dir, "--weights", tiny_glass, "--debug")
    assert isinstance(result.exception, RuntimeError)


def test_extended_bad_input_corpus(tmp_path, tiny_glass, monkeypatch):
    d = tmp_path / "hostile"
    d.mkdir()
    (d / "bomb.png").write_bytes(png_bomb())
    Image.new("L", (10_000, 10_000), 128).save(d / "hundred-mp.png")  # 100 MP: must scan
    noise_image(64, 64, 1).save(os.path.join(os.fsencode(d), b"caf\xe9.jpg"))
    noise_image(64, 64, 2).save(d / "locked.jpg")
    (d / "folder.jpg").mkdir()
    noise_image(64, 64, 3).save(d / "vanishing.jpg")
    real_open = image_io._open_readonly

    def hostile_open(path):
        path = Path(path)
        if path.name == "locked.jpg":
            raise PermissionError(13, "Permission denied", str(path))
        if path.name == "vanishing.jpg":
            path.unlink()  # deleted between the walk and the read
        return real_open(path)

    monkeypatch.setattr(image_io, "_open_readonly", hostile_open)
    out = tmp_path / "r.json"
    result = scan(d, "--weights", tiny_glass, "--threshold", "1", "--all", "--json", out, "--report", tmp_path / "r.html")
    assert result.exit_code == 3, result.output
    recs = {Path(f["path"]).name: f for f in json.loads(out.read_text())["files"]}
    assert recs["bomb.png"]["error"] == "100000x100000 is 10000 MP, above the limit of 250 MP (raise it with --max-pixels)"
    assert recs["hundred-mp.png"]["verdict"] == "real" and recs["hundred-mp.png"]["width"] == 10_000
    assert recs["caf\\xe9.jpg"]["verdict"] == "real"  # the undecodable byte shown as an escape
    assert recs["locked.jpg"]["error"] == "permission denied"
    assert recs["folder.jpg"]["error"] == "is a directory, not an image file"
    assert recs["vanishing.jpg"]["error"] == "file not found (deleted, moved, or a broken link)"
    assert "caf\\xe9.jpg" in result.stdout and "Traceback" not in result.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120,
        )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)")
def test_html_report_renders_in_headless_chromium(tmp_path, mixed_dir, tiny_glass):
    from html.parser import HTMLParser

    report = tmp_path / "report.html"
    scan(mixed_dir, "--weights", tiny_glass, "--report", report)

    class Dom(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.rects, self.images, self.ranks, self.thumbs, self.items = [], [], 0, [], [], 0

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "tr" and a.get("class") == "file":
                self.rows.append(float(a["data-score"]))
            elif tag == "rect" and "data-rank" in a:  # a crop box (the others are its number's tag)
                self.rects.append(float(a["fill-opacity"]))
                self.ranks.append(int(a["data-rank"]))
            elif tag == "image":
                self.images += a.get("href", "").startswith("data:image/jpeg;base64,")
            elif tag == "svg":
                self.thumbs.append(a["class"])
            elif tag == "li":
                self.items += 1

    def rendered(url: str) -> Dom:
        proc = _chromium("--dump-dom", url)
        assert proc.returncode == 0, proc.stderr[-2000:]
        dom = Dom()
        dom.feed(proc.stdout)
        return dom

    dom = rendered(report.as_uri())  # the DOM after the page's script ran
    assert len(dom.rows) == 5 and dom.images == 4 and len(dom.rects) == 4 * 3
    assert dom.rows == sorted(dom.rows, reverse=True)
    assert max(dom.rects) == pytest.approx(0.3, abs=1e-3) and min(dom.rects) > 0
    assert sorted(dom.ranks) == sorted([1, 2, 3] * 4) and dom.items == 4 * 3  # every crop boxed, numbered and listed
    assert set(dom.thumbs) <= {"thumb v-real", "thumb v-ai"}  # boxes take the verdict's colour
    asc = rendered(report.as_uri() + "#sort=asc")
    assert asc.rows == sorted(dom.rows) and asc.rows[0] == -1  # the unreadable file first
    shot = tmp_path / "shot.png"
    proc = _chromium("--window-size=1200,900", f"--screenshot={shot}", report.as_uri())
    assert proc.returncode == 0 and shot.is_file()
    px = Image.open(shot).convert("RGB")
    colours = px.resize((60, 45)).getcolors(4000)
    assert colours is not None and len(colours) > 50  # thumbnails rendered, not a blank page
