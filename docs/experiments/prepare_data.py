#!/usr/bin/env python3
"""Build one training manifest from train-v1, a materialised train-v2 and, optionally, a
materialised train-v3 (for glass train/cv).

    python3 docs/experiments/prepare_data.py --v1 ../shared/data/train-v1 \
        --v2-manifest ../shared/data/train-v2/manifest.csv --v2-images ~/data/train-v2 \
        [--v3-manifest ../shared/data/train-v3/manifest.csv --v3-images ~/data/train-v3] --out ~/data/glass-train

Writes OUT/manifest.csv (absolute paths; columns path,label,split,generator,family,source,
content,format) and OUT/panels/: what the train-v2 README asks of its data before use.

- Sources are named alike across the two sets where they are one pipeline, so that a
  leave-source-out fold never has the same gallery on both sides: train-v1's
  ``vladmandic/sd-samples`` is train-v2's ``sd-samples``, its metadata-extractor cameras are
  ``metadata-extractor-images``, its Urban100 copies ``urban100``.
- The 2x2 grids of ``sd15-cheatsheet`` (every 1024x1024 image of it) are cut into their four
  512 px panels, written losslessly as PNG, so the seams through the middle cannot become a
  cue. Each panel keeps the grid's source, generator and family.
- train-v1 keeps its train/val split; train-v2 and train-v3 rows are all ``train``.
- train-v3 rows are taken as they are (their sources are named in no other set, so its
  one-scene sources are held out whole by ``glass cv --group-by source``); pixels keep their
  EXIF orientation, which glass applies when it decodes.

Standard library and Pillow only; rerunning skips panels already written.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from PIL import Image

V1_SOURCES = {
    "vladmandic/sd-samples": "sd-samples",
    "drewnoakes/metadata-extractor-images": "metadata-extractor-images",
}
GRID_SOURCE = "sd15-cheatsheet"
COLUMNS = ["path", "label", "split", "generator", "family", "source", "content", "format"]


def v1_source(raw: str) -> str:
    if raw in V1_SOURCES:
        return V1_SOURCES[raw]
    if "Urban100" in raw:
        return "urban100"
    return raw


def fmt_of(path: str) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    return {"jpeg": "jpg"}.get(ext, ext)


def materialised(manifest: Path, images: Path, missing: dict[str, int], name: str):
    """(row, absolute path) of each manifest row whose image is on disk; the others are
    counted in ``missing[name]``."""
    with open(manifest, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            path = (images / r["path"]).resolve()
            if path.is_file():
                yield r, path
            else:
                missing[name] += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--v1", type=Path, required=True, help="train-v1 folder (holding manifest.csv)")
    ap.add_argument("--v2-manifest", type=Path, required=True)
    ap.add_argument("--v2-images", type=Path, required=True, help="ROOT given to train-v2's materialize.py")
    ap.add_argument("--v3-manifest", type=Path, help="train-v3's manifest.csv (optional, with --v3-images)")
    ap.add_argument("--v3-images", type=Path, help="ROOT given to train-v3's materialize.py")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if (args.v3_manifest is None) != (args.v3_images is None):
        ap.error("--v3-manifest and --v3-images go together")
    out_rows: list[dict[str, str]] = []
    with open(args.v1 / "manifest.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            path = (args.v1 / r["path"]).resolve()
            out_rows.append({
                "path": str(path), "label": r["label"], "split": r["split"], "generator": r["generator"],
                "family": r["family"], "source": v1_source(r["source"]), "content": "photo" if r["label"] == "real" else "",
                "format": fmt_of(r["path"]),
            })
    panels = args.out / "panels"
    missing = {"v2": 0, "v3": 0}
    for r, path in materialised(args.v2_manifest, args.v2_images, missing, "v2"):
        base = {"label": r["label"], "split": "train", "generator": r["generator"], "family": r["family"],
                "source": r["source"], "content": r.get("content", "")}
        if r["source"] == GRID_SOURCE and (r["width"], r["height"]) == ("1024", "1024"):
            stem = r["path"].replace("/", "__").rsplit(".", 1)[0]
            grid = None
            for i, (left, top) in enumerate(((0, 0), (512, 0), (0, 512), (512, 512))):
                dst = panels / f"{stem}.panel{i}.png"
                if not dst.is_file():
                    if grid is None:
                        grid = Image.open(path).convert("RGB")
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dst.with_suffix(".part")
                    grid.crop((left, top, left + 512, top + 512)).save(tmp, format="PNG", compress_level=1)
                    os.replace(tmp, dst)
                out_rows.append({**base, "path": str(dst), "format": "png"})
            continue
        out_rows.append({**base, "path": str(path), "format": fmt_of(r["path"])})
    if args.v3_manifest is not None:
        for r, path in materialised(args.v3_manifest, args.v3_images, missing, "v3"):
            out_rows.append({
                "path": str(path), "label": r["label"], "split": "train", "generator": r["generator"],
                "family": r["family"], "source": r["source"], "content": r.get("content", ""),
                "format": fmt_of(r["path"]),
            })
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / "manifest.csv.part"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(out_rows)
    os.replace(tmp, args.out / "manifest.csv")
    notes = [f"{n} train-{v} images not materialised" for v, n in missing.items() if n]
    print(f"{len(out_rows)} rows in {args.out / 'manifest.csv'}" + "".join(f"; {n}" for n in notes))
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
