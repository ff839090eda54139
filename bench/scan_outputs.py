"""Every output of `glass scan` over one mixed folder, written to a folder for a before/after diff.

A refactor that must not change what users get is checked by running this on both sides and
comparing the two folders (`diff -r BEFORE AFTER`); run the old side from a worktree of
the earlier commit with `PYTHONPATH=WORKTREE`. The folder scanned is generated here, the
same bytes every time: the README's examples, a few shapes and formats (PNG, WebP, grey,
CMYK and EXIF-rotated JPEGs, a 16-bit PNG), a file too small to judge, a truncated JPEG, an
empty file, text named .jpg, and the real HEIC/AVIF/WebP photos of shared/data/formats when
they are there. Each run (the shipped ONNX default, which is the resize-only baseline; the shipped GLASS
model from its ONNX export and on the torch engine; and the torch engine with an uncertain
band and --all) keeps:

    stdout.txt, stderr.txt, exit.txt, scan.json, scan.jsonl, scan.csv, report.html,
    crops/ (PNGs)

The HTML report's creation time is replaced by a fixed string; nothing else is edited.

    python bench/scan_outputs.py OUT_DIR [--formats ../shared/data/formats]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

RUNS = {
    "onnx-default": [],
    "onnx-glass": ["--weights", "glass"],
    "torch-glass": ["--weights", str(ROOT / "weights/glass-lite0.safetensors")],
    "torch-band": ["--weights", str(ROOT / "weights/glass-lite0.safetensors"), "--uncertain", "0.3:0.8",
                   "--threshold", "0.8", "--all"],
}


def make_folder(dest: Path, formats: Path | None) -> None:
    dest.mkdir(parents=True)
    for f in sorted((ROOT / "examples").glob("*.jpg")):
        shutil.copy(f, dest / f.name)
    rng = np.random.default_rng(7)
    pixels = (rng.random((600, 900, 3)) * 255).astype(np.uint8)
    picture = Image.fromarray(pixels)
    picture.save(dest / "noise.png")
    picture.save(dest / "noise.webp", quality=80)
    picture.convert("L").save(dest / "grey.jpg", quality=90)
    picture.convert("CMYK").save(dest / "cmyk.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    picture.save(dest / "rotated.jpg", quality=88, exif=exif)
    Image.fromarray((rng.random((300, 400)) * 65535).astype(np.uint16)).save(dest / "deep.png")
    picture.resize((40, 30)).save(dest / "tiny.jpg", quality=90)
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=90)
    (dest / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (dest / "empty.png").write_bytes(b"")
    (dest / "notes.jpg").write_text("not a picture\n")
    sub = dest / "sub"
    sub.mkdir()
    picture.crop((0, 0, 512, 384)).save(sub / "crop.jpg", quality=75)
    if formats is not None and formats.is_dir():
        for f in sorted(formats.iterdir()):
            if f.suffix.lower() in (".heic", ".avif", ".webp"):
                shutil.copy(f, dest / f.name)


def run(name: str, extra: list[str], folder: Path, out: Path) -> None:
    target = out / name
    target.mkdir(parents=True)
    glass = Path(sys.executable).with_name("glass")
    cmd = [str(glass), "scan", str(folder), "--json", str(target / "scan.json"), "--jsonl", str(target / "scan.jsonl"),
           "--csv", str(target / "scan.csv"), "--report", str(target / "report.html"), "--save-crops",
           str(target / "crops"), "--workers", "2", *extra]
    env = {"COLUMNS": "160", "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # another checkout's glass_cli, e.g. a git worktree of the commit before
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    (target / "stdout.txt").write_text(done.stdout.replace(str(folder), "FOLDER"))
    (target / "stderr.txt").write_text(done.stderr.replace(str(folder), "FOLDER"))
    (target / "exit.txt").write_text(f"{done.returncode}\n")
    for f in target.glob("scan.*"):
        f.write_text(f.read_text().replace(str(folder), "FOLDER"))
    report = target / "report.html"
    if report.exists():
        text = report.read_text().replace(str(folder), "FOLDER")
        report.write_text(re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( ?UTC|Z|[+-]\d\d:?\d\d)?", "TIME", text))
    print(f"{name}: exit {done.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--formats", type=Path, default=ROOT.parent / "shared/data/formats")
    args = parser.parse_args()
    if args.out.exists():
        sys.exit(f"{args.out}: exists; give a new folder")
    # Always the same folder: crop file names carry a hash of the scanned path.
    folder = Path(tempfile.gettempdir()) / "glass-scan-outputs" / "scanned"
    shutil.rmtree(folder.parent, ignore_errors=True)
    make_folder(folder, args.formats)
    args.out.mkdir(parents=True)
    for name, extra in RUNS.items():
        run(name, extra, folder, args.out)


if __name__ == "__main__":
    main()
