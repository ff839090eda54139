"""Pixel-watermark readers (glass_cli.io.watermark): false positives, detection, survival, cost.

    .venv/bin/python bench/watermarks.py                       # everything, writes bench/results/
    .venv/bin/python bench/watermarks.py --parts fpr --fakes   # only the manifest pass, fakes too
    .venv/bin/python bench/watermarks.py --parts detect --detect-images 60

Parts (--parts, comma-separated):
  fpr     every real image of the manifest (--manifest, rows with label == real), decoded as
          scan decodes it: how many give a finding for each message, and the highest bit
          agreement seen (the margin under each threshold). With --fakes, the same for the
          fake rows, per source: generator outputs that really carry a mark.
  detect  --detect-images real photos (spread over the manifest's sources), cut to the
          generator's output size (SD 1.x 512, SD 2.x 768, SDXL 1024 px square) and marked with
          invisible-watermark's own encoder the way each pipeline calls it; detection rate and
          mean bit agreement as saved (PNG), after JPEG q90 and q75, a 0.5x downscale and a
          crop to the centre 80%.
  timing  per file, the fastest of --rounds: the watermark read, scan's decode stage (read,
          hash, metadata, decode, views) and the model's share of a batch of 8; the read as a
          ratio on a plain scan's work (decode stage + model) and on the decode stage alone
          (the bound when the model is free, a GPU). Also whole one-file scans with the
          readers off and on, alternating (noisy on a shared machine). On --timing-images
          manifest images and on 12 MP JPEGs (bench/scan.py's corpus).

TrustMark is not measured: its models download from Adobe on first use and this machine has
no network (see docs/experiments/watermarks.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glass_cli.io import watermark as wm  # noqa: E402
from glass_cli.io.image import LoadError, decode_image  # noqa: E402

MANIFEST = Path("/root/data/glass-train/manifest.csv")
RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------ marking, as the pipelines do


def mark(rgb: np.ndarray, pipeline: str) -> np.ndarray:
    """``rgb`` (uint8 HxWx3) marked with invisible-watermark's encoder the way ``pipeline``
    calls it: sd1/sd2 scripts (8-bit BGR in), diffusers SDXL (float RGB handed over as
    BGR), generative-models SDXL (float BGR); float outputs are clipped and rounded to 8 bits
    as the pipelines' image conversion does."""
    from imwatermark import WatermarkEncoder

    enc = WatermarkEncoder()
    if pipeline in ("sd1", "sd2"):
        enc.set_watermark("bytes", {"sd1": b"StableDiffusionV1", "sd2": b"SDV2"}[pipeline])
        return np.ascontiguousarray(enc.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct")[..., ::-1])
    enc.set_watermark("bits", [int(b) for b in wm.SDXL_PATTERN])
    f = rgb.astype(np.float32)
    if pipeline == "sdxl-diffusers":
        out = enc.encode(f, "dwtDct")
    elif pipeline == "sdxl-sgm":
        out = enc.encode(np.ascontiguousarray(f[..., ::-1]), "dwtDct")[..., ::-1]
    else:
        raise ValueError(pipeline)
    return np.clip(out, 0, 255).round().astype(np.uint8)


PIPELINES = {"sd1": ("sd1", 512), "sd2": ("sd2", 768), "sdxl-diffusers": ("sdxl", 1024), "sdxl-sgm": ("sdxl", 1024)}
"""pipeline -> (message key, output side in pixels)."""


def _jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return decode_image(buf.getvalue())[0]


def _centre(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    cw, ch = int(w * share), int(h * share)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


CONDITIONS = {
    "png (as saved)": lambda im: im,
    "jpeg q90": lambda im: _jpeg(im, 90),
    "jpeg q75": lambda im: _jpeg(im, 75),
    "downscale 0.5x": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BICUBIC),
    "crop centre 80%": lambda im: _centre(im, 0.8),
}


# ------------------------------------------------------------------ parts


def manifest_rows(path: Path, label: str) -> list[dict]:
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r["label"] == label]


def read_all(rows: list[dict], tag: str) -> list[dict]:
    out, t0 = [], time.perf_counter()
    for k, r in enumerate(rows):
        rec = {"path": r["path"], "source": r["source"]}
        try:
            image, _ = decode_image(Path(r["path"]).read_bytes(), r["path"])
        except (LoadError, OSError) as exc:
            rec["error"] = str(exc)
            out.append(rec)
            continue
        t = time.perf_counter()
        readings = wm.read_dwt_dct(image)
        rec["read_ms"] = 1000 * (time.perf_counter() - t)
        rec["size"] = image.size
        rec["readings"] = {x.message.key: (x.agree, round(x.block_agree, 4), x.layout.name) for x in readings}
        out.append(rec)
        if (k + 1) % 500 == 0:
            print(f"  {tag}: {k + 1}/{len(rows)} in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def summarise_pass(recs: list[dict], by_source: bool) -> dict:
    read = [r for r in recs if "readings" in r]
    small = [r for r in read if not r["readings"]]
    summary = {"files": len(recs), "decode_errors": len(recs) - len(read), "below_256x256": len(small),
               "read": len(read) - len(small), "messages": {}}
    for m in wm.MESSAGES:
        agrees = [r["readings"][m.key][0] for r in read if r["readings"]]
        found = [r for r in read if r["readings"] and r["readings"][m.key][0] >= m.min_agree]
        top = sorted((r for r in read if r["readings"]), key=lambda r: -r["readings"][m.key][0])[:5]
        entry = {
            "bits": m.length, "threshold": m.min_agree, "found": len(found),
            "rate": len(found) / max(1, len(agrees)),
            "max_agree": max(agrees, default=None),
            "agree_histogram": dict(sorted(Counter(agrees).items())),
            "highest": [{"path": r["path"], "agree": r["readings"][m.key][0], "block_agree": r["readings"][m.key][1]} for r in top],
        }
        if by_source:
            per = defaultdict(lambda: [0, 0])
            for r in read:
                if r["readings"]:
                    per[r["source"]][1] += 1
                    per[r["source"]][0] += r["readings"][m.key][0] >= m.min_agree
            entry["by_source"] = {s: {"found": f, "of": n} for s, (f, n) in sorted(per.items()) if f}
        summary["messages"][m.key] = entry
    ms = [r["read_ms"] for r in read]
    summary["read_ms_median"] = statistics.median(ms) if ms else None
    return summary


def part_fpr(args) -> dict:
    out = {}
    for label in ["real"] + (["fake"] if args.fakes else []):
        rows = manifest_rows(args.manifest, label)
        print(f"fpr: reading {len(rows)} {label} images", flush=True)
        out[label] = summarise_pass(read_all(rows, label), by_source=(label == "fake"))
    return out


def part_detect(args) -> dict:
    rows = manifest_rows(args.manifest, "real")
    by_source = defaultdict(list)
    for r in rows:
        by_source[r["source"]].append(r)
    picked, k = [], 0  # round-robin over sources, so no single collection dominates
    while len(picked) < min(args.detect_images, len(rows)):
        for source in sorted(by_source):
            if k < len(by_source[source]) and len(picked) < args.detect_images:
                picked.append(by_source[source][k])
        k += 1
    messages = {m.key: m for m in wm.MESSAGES}
    table: dict[str, dict[str, list]] = {p: {c: [] for c in CONDITIONS} for p in PIPELINES}
    plain: dict[str, list] = {c: [] for c in CONDITIONS}
    t0 = time.perf_counter()
    for n, r in enumerate(picked):
        try:
            photo, _ = decode_image(Path(r["path"]).read_bytes(), r["path"])
        except (LoadError, OSError):
            continue
        for pipeline, (key, side) in PIPELINES.items():
            base = ImageOps.fit(photo, (side, side), Image.Resampling.LANCZOS)
            marked = Image.fromarray(mark(np.asarray(base), pipeline))
            for cond, fn in CONDITIONS.items():
                reading = {x.message.key: x for x in wm.read_dwt_dct(fn(marked))}.get(key)
                table[pipeline][cond].append((reading.agree if reading else 0, messages[key].length,
                                              bool(reading and reading.found)))
            if pipeline == "sd1":  # the same photos unmarked, through the same conditions
                for cond, fn in CONDITIONS.items():
                    plain[cond].append(sum(x.found for x in wm.read_dwt_dct(fn(base))))
        if (n + 1) % 20 == 0:
            print(f"  detect: {n + 1}/{len(picked)} photos in {time.perf_counter() - t0:.0f} s", flush=True)
    out = {"photos": len(table["sd1"]["png (as saved)"]), "pipelines": {}, "unmarked_findings": {c: sum(v) for c, v in plain.items()}}
    for pipeline, conds in table.items():
        out["pipelines"][pipeline] = {
            cond: {"detected": sum(f for _, _, f in v), "of": len(v),
                   "rate": sum(f for _, _, f in v) / max(1, len(v)),
                   "mean_agree": statistics.mean(a / n for a, n, _ in v) if v else None,
                   "min_agree": min((a for a, _, _ in v), default=None),
                   "agree_histogram": dict(sorted(Counter(a for a, _, _ in v).items()))}
            for cond, v in conds.items()
        }
    return out


def _fastest(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def part_timing(args) -> dict:
    """Per file, alternately: a plain scan of it (readers off) and a scan with the readers on,
    --rounds times each, the fastest of each kept (another job shares these cores; its
    disturbance only ever adds time). Also per file: the decode stage alone (read, hash,
    metadata evidence, decode, views) against the watermark read alone, the ratio that
    matters when the model costs nothing (a GPU)."""
    import torch

    from glass_cli.inference.engines import TorchEngine
    from glass_cli.io.evidence import read_evidence
    from glass_cli.models import new_model
    from glass_cli.preprocess.prepare import prepare_file
    from glass_cli.preprocess.views import collate
    from glass_cli.scan.local import scan
    from glass_cli.scan.step import Watermarks

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scan import make_corpus  # bench/scan.py

    torch.manual_seed(0)
    model, config = new_model("glass", "tf_efficientnet_lite0", num_crops=4, crop_size=224)
    engine = TorchEngine(model.eval(), config, "cpu")
    rows = manifest_rows(args.manifest, "real")
    step = max(1, len(rows) // args.timing_images)
    corpora = {f"{args.timing_images} manifest images": [Path(r["path"]) for r in rows[::step]][: args.timing_images]}
    tmp = Path(tempfile.mkdtemp(prefix="glass-wm-bench-"))
    corpora["8 generated 12 MP JPEGs"] = make_corpus(tmp, 8, 12.0, distinct=8)
    on, off = Watermarks(dwt_dct=True), Watermarks(dwt_dct=False)
    out = {"torch_threads": torch.get_num_threads(), "rounds": args.rounds, "corpora": {}}
    list(scan(corpora[next(iter(corpora))][:2], engine))  # warm-up
    for name, files in corpora.items():
        sums = Counter()
        for p in files:
            image, _ = decode_image(p.read_bytes(), p)
            best = {"off": float("inf"), "on": float("inf")}
            for _ in range(args.rounds):  # alternate, so both modes meet the same disturbance
                for mode, marks in (("off", off), ("on", on)):
                    best[mode] = min(best[mode], _fastest(lambda: list(scan([p], engine, watermarks=marks)), 1))
            sums["scan_off"] += best["off"]
            sums["scan_on"] += best["on"]
            sums["decode_stage"] += _fastest(lambda: (read_evidence(p.read_bytes()), prepare_file(p, config)), args.rounds)
            sums["read"] += _fastest(lambda: wm.read_dwt_dct(image), args.rounds)
        n = len(files)
        views = [prepare_file(p, config).views for p in files[:8]]
        batch = collate(views * (8 // len(views)) if len(views) < 8 else views)
        engine.predict(*batch)
        sums["model"] = n * _fastest(lambda: engine.predict(*batch), args.rounds) / 8  # batch of 8, as scan runs it
        c = {"files": n, **{f"{k}_ms": 1000 * v / n for k, v in sums.items()}}
        c["scan_ratio"] = sums["scan_on"] / sums["scan_off"]
        c["decode_stage_ratio"] = (sums["decode_stage"] + sums["read"]) / sums["decode_stage"]
        plain = sums["decode_stage"] + sums["model"]
        c["component_ratio"] = (plain + sums["read"]) / plain
        out["corpora"][name] = c
        print(f"  timing {name}: read {c['read_ms']:.2f} ms; decode stage {c['decode_stage_ms']:.1f} + model {c['model_ms']:.1f} ms "
              f"(x{c['component_ratio']:.3f}); whole scans {c['scan_off_ms']:.1f} -> {c['scan_on_ms']:.1f} ms (x{c['scan_ratio']:.3f})", flush=True)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return out


# ------------------------------------------------------------------ report


def render(res: dict) -> str:
    lines = [f"glass pixel-watermark readers, {res['date']}; thresholds (bits that must agree): "
             + ", ".join(f"{m.key} {m.min_agree}/{m.length}" for m in wm.MESSAGES), ""]
    if "fpr" in res:
        for label, s in res["fpr"].items():
            lines.append(f"{label} images of the manifest: {s['files']} files, {s['read']} read, "
                         f"{s['below_256x256']} below 256x256 (not read), {s['decode_errors']} not decodable; "
                         f"median read {s['read_ms_median']:.1f} ms" if s["read_ms_median"] is not None else "")
            for key, e in s["messages"].items():
                lines.append(f"  {key:5s} findings {e['found']:5d} / {s['read']} ({100 * e['rate']:.2f}%), "
                             f"highest agreement {e['max_agree']}/{e['bits']} (threshold {e['threshold']})")
                for src, c in e.get("by_source", {}).items():
                    lines.append(f"        {src}: {c['found']} of {c['of']}")
            lines.append("")
    if "detect" in res:
        d = res["detect"]
        lines.append(f"detection: {d['photos']} real photos cut to the pipeline's size, marked with invisible-watermark 0.2.0")
        conds = list(CONDITIONS)
        lines.append(f"  {'pipeline':16s}" + "".join(f"{c:>18s}" for c in conds))
        for pipeline, row in d["pipelines"].items():
            lines.append(f"  {pipeline:16s}" + "".join(
                f"{100 * row[c]['rate']:9.1f}% ({100 * row[c]['mean_agree']:3.0f}%)" for c in conds))
        lines.append("  (detection rate, and in brackets the mean share of message bits that agree)")
        lines.append("  findings on the same photos unmarked: " + ", ".join(f"{c} {v}" for c, v in d["unmarked_findings"].items()))
        lines.append("")
    if "timing" in res:
        t = res["timing"]
        lines.append(f"time per image: torch lite0 GLASS on CPU ({t['torch_threads']} threads), fastest of {t['rounds']} rounds per file")
        for name, c in t["corpora"].items():
            lines.append(f"  {name}: watermark read {c['read_ms']:.2f} ms; a plain scan's work {c['decode_stage_ms'] + c['model_ms']:.1f} ms "
                         f"(decode stage {c['decode_stage_ms']:.1f} + model {c['model_ms']:.1f}): x{c['component_ratio']:.3f}; "
                         f"decode stage alone (model free, a GPU): x{c['decode_stage_ratio']:.3f}")
            lines.append(f"    whole one-file scans, off -> on, alternating: {c['scan_off_ms']:.1f} -> {c['scan_on_ms']:.1f} ms "
                         f"(x{c['scan_ratio']:.3f}; another job shares the 2 cores, so this one swings by tens of percent)")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="fpr,detect,timing")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--fakes", action="store_true", help="also read the manifest's fake images (per source)")
    ap.add_argument("--detect-images", type=int, default=120)
    ap.add_argument("--timing-images", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="result stem (default bench/results/watermarks-DATE)")
    args = ap.parse_args()
    res: dict = {"date": date.today().isoformat(), "thresholds": {m.key: [m.min_agree, m.length] for m in wm.MESSAGES}}
    parts = args.parts.split(",")
    if "fpr" in parts:
        res["fpr"] = part_fpr(args)
    if "detect" in parts:
        res["detect"] = part_detect(args)
    if "timing" in parts:
        res["timing"] = part_timing(args)
    text = render(res)
    print("\n" + text)
    stem = args.out or RESULTS / f"watermarks-{res['date']}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    Path(f"{stem}.txt").write_text(text)
    print(f"written {stem}.json and {stem}.txt")


if __name__ == "__main__":
    main()
