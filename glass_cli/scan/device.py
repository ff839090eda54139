"""The GPU stage of ``glass scan --decode gpu``: JPEGs decoded and cut into views on the device.

On a GPU machine a scan of camera JPEGs is bound by decoding on the CPU cores long before
the model is (bench/results/gpu_check-h100-*). With ``decode="device"``:

1. the CPU workers only read each file, hash it, read its metadata evidence and parse its
   header (format, size, orientation, pixel limit): ``read_for_device``. A JPEG that the
   device decoder takes (baseline or progressive, RGB or grey) travels on as its encoded
   bytes; anything else (PNG, WebP, HEIC, CMYK JPEGs) is prepared on the CPU exactly as
   before, so every format is still scanned;
2. ``DeviceBatches`` gathers a batch, hands the encoded JPEGs to
   ``torchvision.io.decode_jpeg`` in one call (nvJPEG on CUDA, batched; the bytes sit in
   pinned host memory so the copy runs asynchronously), applies EXIF orientation with tensor
   flips, and builds the views with ``preprocess.device`` (Pillow's arithmetic reproduced on
   the device);
3. the engine gets the device tensors directly: no pixels come back to the host, except the
   few 8-pixel rows the watermark reader samples and, when ``--report``/``--save-crops`` ask
   for pictures, a host copy of that file.

A file the device decoder refuses is prepared on the CPU instead (a damaged file gets the
CPU decoder's one-line reason). With the engine on the CPU (the tests, or a machine without
a GPU) the same code runs on the CPU through libjpeg-turbo, and the records equal those of
the default path exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from glass_cli.io.damage import jpeg_end
from glass_cli.io.image import register_formats
from glass_cli.io.watermark import read_watermarks
from glass_cli.preprocess.sampling import seed_from_digest
from glass_cli.preprocess.views import Views

ORIENTATIONS = {2: "flip-x", 3: "rot180", 4: "flip-y", 5: "transpose", 6: "rot270", 7: "transverse", 8: "rot90"}
"""EXIF orientation -> the transpose Pillow's exif_transpose applies (see io.image)."""


@dataclass
class EncodedJpeg:
    """A JPEG left for the device to decode: its bytes, EXIF orientation and crop seed."""

    data: bytes
    orientation: int | None
    seed: int


def _orientation(header: Image.Image) -> int | None:
    try:
        return header.getexif().get(0x0112)
    except Exception:
        return None


def _eligible(data: bytes, max_pixels: int, min_side: int) -> Image.Image | None:
    """The header of a whole RGB or grey JPEG within the limits, else None."""
    try:
        register_formats()
        header = Image.open(io.BytesIO(data))
        width, height = header.size
        if (header.format == "JPEG" and header.mode in ("RGB", "L") and width * height <= max_pixels
                and min(width, height) >= min_side and jpeg_end(data) is not None):
            return header
    except Exception:
        pass
    return None


def read_for_device(path: Path, config, *, max_pixels: int, max_bytes: int, min_side: int, explain: bool,
                    watermarks, result) -> tuple[object, Views | EncodedJpeg | None]:
    """The CPU half of one file for the device path: (result, EncodedJpeg) for a whole JPEG
    the device decodes, else exactly what the CPU path gives, (result, Views or None).

    Left to the CPU path, which words every failure the same way as without the device:
    other formats, CMYK JPEGs, JPEGs without an end marker (truncated: a device decoder may
    pad them silently), pictures above ``max_pixels`` and ones too small to judge."""
    from glass_cli.inference.scan import guarded, prepare_decoded, read_into

    def step():
        data = read_into(result, path, max_bytes)
        header = _eligible(data, max_pixels, min_side)
        if header is None:
            return prepare_decoded(result, data, path, config, max_pixels, min_side, explain, watermarks)
        result.format = "JPEG"
        orientation = _orientation(header)
        width, height = header.size
        result.width, result.height = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        return result, EncodedJpeg(data, orientation, seed_from_digest(bytes.fromhex(result.sha256)))

    return guarded(result, step)


def orient(pixels, orientation: int | None):
    """EXIF ``orientation`` applied to [C, H, W] pixels, as Pillow's exif_transpose does."""
    import torch

    op = ORIENTATIONS.get(orientation)
    if op is None:
        return pixels
    if op == "flip-x":
        return torch.flip(pixels, dims=(2,))
    if op == "flip-y":
        return torch.flip(pixels, dims=(1,))
    if op == "rot180":
        return torch.flip(pixels, dims=(1, 2))
    if op == "transpose":
        return pixels.transpose(1, 2)
    if op == "transverse":
        return torch.flip(pixels.transpose(1, 2), dims=(1, 2))
    if op == "rot90":  # counter-clockwise
        return torch.rot90(pixels, k=1, dims=(1, 2))
    return torch.rot90(pixels, k=-1, dims=(1, 2))  # rot270


class TensorPicture:
    """Just enough of a Pillow image over device pixels for the watermark reader, which
    crops a few 8-pixel rows: only those rows are copied to the host."""

    mode = "RGB"

    def __init__(self, pixels):
        self.pixels = pixels
        self.size = (int(pixels.shape[2]), int(pixels.shape[1]))

    def crop(self, box) -> Image.Image:
        left, top, right, bottom = box
        part = self.pixels[:, top:bottom, left:right].permute(1, 2, 0).contiguous().cpu().numpy()
        return Image.fromarray(part, "RGB")

    def to_pil(self) -> Image.Image:
        return self.crop((0, 0, *self.size))


class DeviceDecoder:
    """Decodes batches of EncodedJpeg on ``device`` and builds their views there."""

    def __init__(self, config, device: str):
        import warnings

        import torch

        with warnings.catch_warnings():
            # torchvision 0.29 announces that its image codecs will move to TorchCodec; the
            # batched nvJPEG decoder is still here and is what this path uses.
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_jpeg

        self.torch, self.config, self.device = torch, config, torch.device(device)
        self._decode, self._rgb = decode_jpeg, ImageReadMode.RGB

    def _tensor(self, data: bytes):
        t = self.torch.frombuffer(bytearray(data), dtype=self.torch.uint8)
        return t.pin_memory() if self.device.type == "cuda" else t

    def decode(self, jpegs: list[EncodedJpeg]) -> list[object]:
        """Device pixels [3, H, W] (orientation applied) for each JPEG, or the exception
        that file raised."""
        inputs = [self._tensor(j.data) for j in jpegs]
        try:
            decoded = self._decode(inputs, mode=self._rgb, device=self.device)
        except Exception:  # one bad file fails the batch call: decode one by one to find it
            decoded = []
            for t in inputs:
                try:
                    decoded.append(self._decode(t, mode=self._rgb, device=self.device))
                except Exception as exc:
                    decoded.append(exc)
        return [d if isinstance(d, Exception) else orient(d, j.orientation) for d, j in zip(decoded, jpegs)]


def finish_on_device(result, pixels, jpeg: EncodedJpeg, config, *, explain: bool, watermarks):
    """Views of decoded device ``pixels``, and the evidence and pictures the CPU path adds:
    returns (result, (global, crops) tensors, Views with the plan)."""
    from glass_cli.inference.scan import _explanation
    from glass_cli.preprocess.device import device_views

    g, c, views = device_views(pixels, config, jpeg.seed)
    picture = TensorPicture(pixels)
    if watermarks.any:
        result.evidence += read_watermarks(picture, dwt_dct=watermarks.dwt_dct)
        if watermarks.trustmark is not None:
            result.evidence += watermarks.trustmark.read(picture.to_pil())
    result.sampling = views.plan.path if views.plan else None
    if explain:
        result.explanation = _explanation(picture.to_pil(), views.plan.boxes if views.plan else ())
    return result, (g, c), views


def host_fallback(result, jpeg: EncodedJpeg, path: str, config, *, max_pixels: int, min_side: int, explain: bool, watermarks):
    """A JPEG the device decoder refused, prepared on the CPU: (result, None, views or None)."""
    from glass_cli.inference.scan import guarded, prepare_decoded

    result, views = guarded(result, lambda: prepare_decoded(result, jpeg.data, Path(path), config, max_pixels, min_side,
                                                            explain, watermarks))
    return result, None, views


def device_batched(items, engine, batch_size: int, decoder: DeviceDecoder, *, finish, fallback):
    """``pipeline.batched`` for the device path: (result, payload) in, where payload is an
    EncodedJpeg, host Views or None; yields (result, views, P(AI), attention row).

    ``finish(result, pixels, jpeg)`` builds a decoded file's views on the device and
    ``fallback(result, jpeg)`` prepares a refused one on the CPU; both return (result,
    tensors or None, views or None)."""
    torch = decoder.torch
    pending: list[tuple[object, object]] = []

    def flush():
        jpegs = [(i, p) for i, (_, p) in enumerate(pending) if isinstance(p, EncodedJpeg)]
        pixels = dict(zip((i for i, _ in jpegs), decoder.decode([p for _, p in jpegs])))
        ready = []
        for i, (result, payload) in enumerate(pending):
            if not isinstance(payload, EncodedJpeg):
                ready.append((result, None, payload))
                continue
            decoded = pixels[i]
            if isinstance(decoded, Exception):
                result, tensors, views = fallback(result, payload)
            else:
                try:
                    result, tensors, views = finish(result, decoded, payload)
                except Exception:  # e.g. out of device memory for one huge picture: the CPU path takes it
                    result, tensors, views = fallback(result, payload)
            if views is None:
                yield result, None, None, None
            else:
                ready.append((result, tensors, views))
        pending.clear()
        if not ready:
            return
        gs, cs = [], []
        for _, tensors, views in ready:
            if tensors is None:  # prepared on the CPU
                gs.append(torch.from_numpy(views.global_view).to(decoder.device))
                cs.append(None if views.crops is None else torch.from_numpy(views.crops).to(decoder.device))
            else:
                gs.append(tensors[0])
                cs.append(tensors[1])
        pred = engine.predict(torch.stack(gs), None if cs[0] is None else torch.stack(cs))
        for j, (result, _, views) in enumerate(ready):
            yield result, views, float(pred.p_ai[j]), None if pred.attention is None else pred.attention[j]

    for result, payload in items:
        if payload is None:
            yield result, None, None, None
            continue
        pending.append((result, payload))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()
