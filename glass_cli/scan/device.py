"""The GPU stage of ``glass scan --decode gpu``: JPEGs decoded and cut into views on the device.

On a GPU machine a scan of camera JPEGs is bound by decoding on the CPU cores long before
the model is (bench/results/gpu_check-h100-*). With ``decode="gpu"``:

1. the CPU workers run the per-file step with ``on_device`` (``scan.step.FileStep``): they
   only read each file, hash it, read its metadata evidence and parse its header (format,
   size, orientation, pixel limit). A JPEG that the device decoder takes (baseline or
   progressive, RGB or grey) travels on as its encoded bytes (``EncodedJpeg``); anything
   else (PNG, WebP, HEIC, CMYK JPEGs) is prepared on the CPU exactly as before, so every
   format is still scanned;
2. ``device_batched`` gathers a batch, hands the encoded JPEGs to
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

from pathlib import Path

from PIL import Image

from glass_cli.io.watermark import read_watermarks
from glass_cli.scan.step import EncodedJpeg, FileStep, explanation

ORIENTATIONS = {2: "flip-x", 3: "rot180", 4: "flip-y", 5: "transpose", 6: "rot270", 7: "transverse", 8: "rot90"}
"""EXIF orientation -> the transpose Pillow's exif_transpose applies (see io.image)."""


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


def finish_on_device(result, pixels, jpeg: EncodedJpeg, step: FileStep):
    """Views of decoded device ``pixels``, and the evidence and pictures the CPU path adds:
    returns (result, (global, crops) tensors, Views with the plan)."""
    from glass_cli.preprocess.device import device_views

    g, c, views = device_views(pixels, step.config, jpeg.seed)
    picture = TensorPicture(pixels)
    watermarks = step.watermarks
    if watermarks.any:
        result.evidence += read_watermarks(picture, dwt_dct=watermarks.dwt_dct)
        if watermarks.trustmark is not None:
            result.evidence += watermarks.trustmark.read(picture.to_pil())
    result.sampling = views.plan.path if views.plan else None
    if step.explain:
        result.explanation = explanation(picture.to_pil(), views.plan.boxes if views.plan else (), step.config)
    return result, (g, c), views


def host_fallback(result, jpeg: EncodedJpeg, step: FileStep):
    """A JPEG the device decoder refused, prepared on the CPU: (result, None, views or None)."""
    return result, None, step.decode_guarded(result, jpeg.data, Path(result.path))


def device_batched(items, engine, batch_size: int, decoder: DeviceDecoder, step: FileStep):
    """``pipeline.batched`` for the device path: (result, payload) in, where payload is an
    EncodedJpeg, host Views or None; yields (result, views, P(AI), attention row).

    A decoded JPEG gets its views on the device (``finish_on_device``); one the decoder
    refused is prepared on the CPU by ``step`` (``host_fallback``)."""
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
                result, tensors, views = host_fallback(result, payload, step)
            else:
                try:
                    result, tensors, views = finish_on_device(result, decoded, payload, step)
                except Exception:  # e.g. out of device memory for one huge picture: the CPU path takes it
                    result, tensors, views = host_fallback(result, payload, step)
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
