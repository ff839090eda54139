"""An INT8 copy of an ONNX export, for CPUs: ``glass export --onnx --int8 --calibration DATA``.

Static quantisation with ONNX Runtime (``onnxruntime.quantization.quantize_static``): weights
INT8 per output channel, activations UINT8 per tensor, in QDQ form, so ONNX Runtime's CPU
kernels (VNNI where the CPU has it) run the convolutions and matrix products in integers.
The activation ranges are calibrated on real pictures, not random inputs: ``calibration_images``
picks them from a labelled manifest or folder, both classes and as many sources as there are
(round robin over sources within each class, in a fixed order), and each is prepared exactly
as scan prepares it (``preprocess.prepare.prepare_file``), so the ranges are those of the views
the model will see.

The file keeps the fp32 export's metadata with ``precision`` ``int8`` and an ``int8_calibration``
entry (the data's name and SHA-256, how many pictures of each class, the method); its model id
is the source checkpoint's with ``/int8``, since its scores differ from the fp32 export's. How
much they differ on held-out sources is measured by ``bench/precision_compare.py``, not assumed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glass_cli.config import ModelConfig
from glass_cli.errors import GlassError, one_line
from glass_cli.inference import onnxfile
from glass_cli.io import atomic, digest

META_INT8 = "int8_calibration"
DEFAULT_IMAGES = 256
"""Calibration pictures: enough for stable activation ranges on a few dozen sources; each
costs one fp32 forward pass during calibration."""
BATCH = 8
OPS = ["Conv", "MatMul", "Gemm"]
"""The operators quantised: where the arithmetic is. Normalisation, attention softmax and the
rest stay in float."""


class QuantizeError(GlassError):
    """An INT8 copy that cannot be made; one line naming the file."""


@dataclass
class QuantizeReport:
    path: Path
    images: int
    real: int
    fake: int
    sources: int
    nbytes: int
    skipped: int = 0
    """Calibration pictures that could not be read, left out."""


def calibration_images(data: str | os.PathLike, n: int) -> list:
    """Up to ``n`` labelled samples of ``data`` (a manifest .csv or a real/ fake/ folder): half
    of each class where the data allows, and within a class one source after another (the
    largest first), so that every source is represented before any is taken twice."""
    from glass_cli.data.datasets import read_dataset

    samples = sorted(read_dataset(data), key=lambda s: s.path)
    chosen = []
    for label in (0, 1):
        by_source: dict[str, list] = {}
        for s in samples:
            if s.label == label:
                by_source.setdefault(s.source or "", []).append(s)
        queues = sorted(by_source.values(), key=len, reverse=True)
        want = n // 2 if label == 0 else n - len(chosen)
        taken = 0
        while taken < want and any(queues):
            for queue in queues:
                if queue and taken < want:
                    chosen.append(queue.pop(0))
                    taken += 1
    return chosen


class _Reader:
    """A calibration data reader as ONNX Runtime calls it (``get_next`` until None): batches
    of views of the calibration pictures."""

    def __init__(self, samples: Sequence, config: ModelConfig, on_image: Callable[[], None] | None):
        self._batches = self._feeds(samples, config, on_image)
        self.skipped = 0

    def _feeds(self, samples, config, on_image) -> Iterator[dict[str, np.ndarray]]:
        from glass_cli.io.image import LoadError
        from glass_cli.preprocess.prepare import prepare_file
        from glass_cli.preprocess.views import collate

        views = []
        for sample in samples:
            try:
                views.append(prepare_file(sample.path, config).views)
            except LoadError:
                self.skipped += 1
            if on_image:
                on_image()
            if len(views) == BATCH:
                yield self._feed(collate(views), config)
                views = []
        if views:
            yield self._feed(collate(views), config)

    @staticmethod
    def _feed(batch, config: ModelConfig) -> dict[str, np.ndarray]:
        g, c = batch
        feeds = {onnxfile.INPUT_GLOBAL: g}
        if config.uses_crops:
            feeds[onnxfile.INPUT_CROPS] = c
        return feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


METHODS = ("minmax", "percentile", "entropy")


def _depthwise(path: Path) -> list[str]:
    """Names of the grouped (depthwise) convolutions of a graph."""
    import onnx

    names = []
    for node in onnx.load(path).graph.node:
        if node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute):
            names.append(node.name)
    return names


def quantize(source: str | os.PathLike, out: str | os.PathLike, data: str | os.PathLike, *, images: int = DEFAULT_IMAGES,
             method: str = "minmax", keep_depthwise: bool = False,
             on_image: Callable[[], None] | None = None) -> QuantizeReport:
    """Write an INT8 copy of the fp32 ONNX export ``source`` to ``out``, calibrated on
    ``images`` pictures of ``data`` (see the module docstring)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    if method not in METHODS:
        raise QuantizeError(f"unknown calibration method {method!r}; use {', '.join(METHODS)}")

    source, out = Path(source), Path(out)
    meta = onnxfile.read_metadata(source)
    if meta.get(onnxfile.META_PRECISION, "fp32") != "fp32":
        raise QuantizeError(f"{source}: an INT8 copy is made from an fp32 export, not a {meta.get(onnxfile.META_PRECISION)} one")
    config = onnxfile.config_from_metadata(meta, source)
    samples = calibration_images(data, images)
    real = sum(s.label == 0 for s in samples)
    if not real or real == len(samples):
        raise QuantizeError(f"{data}: calibration needs pictures of both classes; found {real} real, {len(samples) - real} AI")
    reader = _Reader(samples, config, on_image)
    with tempfile.TemporaryDirectory(prefix="glass-int8-") as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                         "entropy": CalibrationMethod.Entropy}[method]
            quantize_static(prepared, quantized, reader, quant_format=QuantFormat.QDQ, per_channel=True, op_types_to_quantize=OPS,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=calibrate,
                            nodes_to_exclude=_depthwise(prepared) if keep_depthwise else None)
        except Exception as exc:
            raise QuantizeError(f"{source}: INT8 quantisation failed ({one_line(exc)})") from None
        import onnx

        proto = onnx.load(quantized)
    record = {"data": digest.named_all(data) if Path(data).is_file() else Path(data).name, "images": len(samples) - reader.skipped,
              "real": real, "fake": len(samples) - real, "sources": len({s.source for s in samples}),
              "method": f"static, QDQ, {method}; weights INT8 per channel, activations UINT8"
                        + ("; depthwise convolutions kept in float" if keep_depthwise else "")}
    del proto.metadata_props[:]
    for key, value in {**meta, onnxfile.META_PRECISION: "int8", META_INT8: json.dumps(record)}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data_bytes = proto.SerializeToString()
    atomic.write_bytes(out, data_bytes)
    return QuantizeReport(out, record["images"], real, len(samples) - real, record["sources"], len(data_bytes), reader.skipped)


def export_int8(weights: str | os.PathLike, out: str | os.PathLike, data: str | os.PathLike, *, images: int = DEFAULT_IMAGES,
                on_step: Callable[[int, str], None] | None = None, on_image: Callable[[], None] | None = None):
    """``glass export --onnx --int8``: the checkpoint exported to fp32 ONNX and checked against
    torch (``inference.export.export``), then quantised to ``out``. Returns (the fp32 export's
    report, the INT8 copy's)."""
    from glass_cli.inference.export import export

    out = Path(out)
    if out.suffix.lower() != onnxfile.SUFFIX:
        raise QuantizeError(f"{out}: the output file name must end in {onnxfile.SUFFIX}")
    if images < 2:
        raise QuantizeError(f"--calibration-images must be at least 2 (one per class), got {images}")
    with tempfile.TemporaryDirectory(prefix="glass-int8-") as tmp:
        fp32 = export(weights, Path(tmp) / "fp32.onnx", on_step=on_step)
        return fp32, quantize(fp32.path, out, data, images=images, on_image=on_image)
