"""Which JPEG decode path gives the views soonest? Every candidate timed on the same files.

    .venv/bin/python bench/decode_paths.py                  # 8 generated 12 MP JPEGs
    .venv/bin/python bench/decode_paths.py --folder ~/photos

Per file, median milliseconds over the files (each timed ``--repeat`` times, best kept):
  pillow full            Pillow's decoder, whole picture, RGB
  simplejpeg + RGB copy  the previous glass path: libjpeg-turbo into numpy, copied into a new
                         Pillow RGB image
  simplejpeg shared      the current path: decoded as RGBX into a buffer Pillow wraps
  global view from full  the current path's global view (Pillow reduce + bicubic) on top
  DCT 1/8 (pillow draft) libjpeg's scaled IDCT: only the DC coefficient per block, the
                         cheapest decode that still reads the whole entropy-coded stream
  lossless crops         (needs PyTurboJPEG and a system libturbojpeg) the four windows of the
                         shipped model cut from the coefficients with tjTransform, then decoded:
                         what "decode only the crops" costs with a maintained binding
  partial = DCT 1/8 + lossless crops, the path that decodes no full-resolution picture

The lower bound for any path that reads every coefficient is the DCT 1/8 row.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def best_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, help="time these JPEGs instead of generated ones")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import simplejpeg

    from glass_cli.io.image import decode_image
    from glass_cli.preprocess.views import resize_view

    if args.folder:
        files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))[: args.files]
    else:
        from scan import make_corpus

        files = make_corpus(Path(tempfile.mkdtemp(prefix="glass-decode-")), args.files, args.megapixels)
    try:
        from turbojpeg import TJPF_RGB, TurboJPEG

        turbo = TurboJPEG()
    except Exception as exc:  # optional: a system library and a binding glass does not depend on
        turbo = None
        print(f"lossless crops: not measured ({type(exc).__name__}: {exc})")

    from glass_cli.config import Normalization

    norm = Normalization()
    rows: dict[str, list[float]] = {}
    for path in files:
        data = path.read_bytes()
        width, height, _, _ = simplejpeg.decode_jpeg_header(data)

        def pillow_full():
            Image.open(io.BytesIO(data)).convert("RGB").load()

        def draft():
            im = Image.open(io.BytesIO(data))
            im.draft("RGB", (width // 8, height // 8))
            im.load()

        shared_image = decode_image(data, shared=True)[0]
        timings = {
            "pillow full": best_ms(pillow_full, args.repeat),
            "simplejpeg + RGB copy (previous)": best_ms(lambda: decode_image(data), args.repeat),
            "simplejpeg shared (current)": best_ms(lambda: decode_image(data, shared=True), args.repeat),
            "global view from full (current)": best_ms(lambda: resize_view(shared_image, 224, norm), args.repeat),
            "DCT 1/8 (pillow draft)": best_ms(draft, args.repeat),
        }
        if turbo is not None:
            s = 16  # grow each window by one MCU so chroma upsampling sees the same neighbours
            boxes = [(0, 0, 224 + 2 * s, 224 + 2 * s), (width // 2, height // 3, 224 + 2 * s, 224 + 2 * s),
                     (width // 5, height // 2, 448 + 2 * s, 448 + 2 * s), (width // 2, height // 2, 448 + 2 * s, 448 + 2 * s)]
            boxes = [(x - x % s, y - y % s, min(w, width - x + x % s), min(h, height - y + y % s)) for x, y, w, h in boxes]

            def crops():
                return [turbo.decode(part, pixel_format=TJPF_RGB) for part in turbo.crop_multiple(data, boxes)]

            timings["lossless crops (tjTransform + decode)"] = best_ms(crops, args.repeat)
            timings["partial = DCT 1/8 + lossless crops"] = timings["DCT 1/8 (pillow draft)"] + timings["lossless crops (tjTransform + decode)"]
        for k, v in timings.items():
            rows.setdefault(k, []).append(v)
    print(f"{len(files)} JPEGs, {np.mean([p.stat().st_size for p in files]) / 1e6:.1f} MB average")
    print(f"{'path':44s} {'median ms':>10s}")
    for k, v in rows.items():
        print(f"{k:44s} {statistics.median(v):10.1f}")


if __name__ == "__main__":
    main()
