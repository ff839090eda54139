"""ONNX export with a built-in parity check.

``export(source, out)`` turns a checkpoint (or a live model plus its config) into the
self-contained ONNX file described in ``onnxfile``, then proves it before writing it:

1. torch's dynamo exporter (``torch.onnx.export(dynamo=True)``) with B and K symbolic;
2. the glass metadata (full ModelConfig JSON and friends) added to the model;
3. ``onnx.checker`` with full shape inference;
4. ONNX Runtime (CPU) against torch eager fp32 on a few seeded inputs, including a batch size
   and a K the export never saw; the largest absolute difference over P(AI) and the
   attention weights must stay within the tolerance (1e-4 for fp32, 1e-2 for fp16);
5. one atomic write, so a failed export never leaves a file behind.

fp16 exports cast the float32 inputs to half inside the graph and return float32 outputs;
the parity check compares them against the fp32 torch model, so the number it reports is
the real cost of going to half precision.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glass_cli.config import ModelConfig
from glass_cli.errors import EXIT_PARITY, GlassError, one_line
from glass_cli.inference import onnxfile
from glass_cli.io import atomic, digest

DEFAULT_OPSET = 18
MIN_OPSET = 18
"""The dynamo exporter has no translations below opset 18 (a lower request is silently ignored)."""
TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2}
"""Largest accepted |ORT - torch| on P(AI) and attention, per precision."""
MAX_PROTO_BYTES = 2 * 1024**3 - 1
"""Protobuf's hard limit for a single-file ONNX model."""


class ExportError(GlassError):
    """An export that cannot be made or verified; one-line reason naming the file."""


class ParityError(ExportError):
    """The export ran, but ONNX Runtime disagrees with torch beyond the tolerance."""

    exit_code = EXIT_PARITY

    def __init__(self, message: str, report: ExportReport):
        super().__init__(message)
        self.report = report


@dataclass
class ParityCheck:
    batch: int
    crops: int | None
    max_diff: float


@dataclass
class ExportReport:
    path: Path
    config: ModelConfig
    precision: str
    opset: int
    nbytes: int
    tolerance: float
    checks: list[ParityCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def max_diff(self) -> float:
        return max((c.max_diff for c in self.checks), default=float("nan"))

    @property
    def passed(self) -> bool:
        return bool(self.checks) and self.max_diff <= self.tolerance

    def describe_checks(self) -> str:
        shapes = " ".join(f"{c.batch}x{c.crops}" if c.crops is not None else f"{c.batch}" for c in self.checks)
        what = "B x K" if self.config.uses_crops else "B"
        return (
            f"ORT vs torch on {len(self.checks)} inputs ({what}: {shapes}): "
            f"max |diff| {self.max_diff:.2e} (limit {self.tolerance:.0e})"
        )


def default_output(source: str | os.PathLike, fp16: bool = False) -> Path:
    """``NAME.onnx`` (or ``NAME.fp16.onnx``) in the current folder, NAME from the checkpoint."""
    stem = Path(source).name
    for suffix in (".safetensors", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return Path(stem + (".fp16" if fp16 else "") + onnxfile.SUFFIX)


STEPS: tuple[str, ...] = (
    "loading the checkpoint",
    "exporting the graph (torch dynamo; the slow step)",
    "checking the graph (onnx.checker)",
    "comparing ONNX Runtime with torch",
    "writing the file",
)
"""The export's steps, in order, as ``on_step`` reports them."""


def export(
    source,
    out: str | os.PathLike,
    *,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    tolerance: float | None = None,
    seed: int = 0,
    on_step: Callable[[int, str], None] | None = None,
) -> ExportReport:
    """Export ``source`` (a checkpoint path, or a ``(model, config)`` pair) to ``out``.

    ``on_step(i, name)`` is called as each of the ``STEPS`` begins (i from 1), for progress.

    Returns the report of a verified, written file. Raises ``ExportError`` (one line) when the
    export cannot be made, and ``ParityError`` (nothing written) when ORT and torch disagree
    by more than ``tolerance`` (default ``TOLERANCES[precision]``).
    """
    start = time.perf_counter()
    out = Path(out)
    if out.suffix.lower() != onnxfile.SUFFIX:
        raise ExportError(f"{out}: the output file name must end in {onnxfile.SUFFIX}")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; give a file name ending in {onnxfile.SUFFIX}")
    existing = next(p for p in out.absolute().parents if p.exists())
    if not existing.is_dir():
        raise ExportError(f"{out}: cannot write there: {existing} is not a folder")
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is not supported: the exporter needs opset {MIN_OPSET} or newer")
    step = on_step or (lambda i, name: None)
    step(1, STEPS[0])
    model, config, source_sha = _load_source(source)
    precision = "fp16" if fp16 else "fp32"
    tolerance = TOLERANCES[precision] if tolerance is None else tolerance

    step(2, STEPS[1])
    proto = _to_onnx(model, config, fp16=fp16, opset=opset, out=out)
    written_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written_opset != opset:
        raise ExportError(f"{out}: asked for opset {opset} but the exporter wrote opset {written_opset}")

    import torch

    meta = onnxfile.metadata_for(
        config, precision=precision, source_sha256=source_sha, exporter=f"torch {torch.__version__} (dynamo)"
    )
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"glass {config.describe()}: P(AI-generated) for an image's global view and local crops."

    if proto.ByteSize() > MAX_PROTO_BYTES:
        raise ExportError(f"{out}: the model is over 2 GB, too large for a single-file ONNX export")
    data = proto.SerializeToString()
    step(3, STEPS[2])
    _check_graph(proto, out)

    report = ExportReport(out, config, precision, opset, len(data), tolerance)
    step(4, STEPS[3])
    report.checks = _parity(model, config, data, seed=seed, out=out)
    report.seconds = time.perf_counter() - start
    if not report.passed:
        raise ParityError(
            f"{out}: ONNX Runtime disagrees with torch: max |diff| {report.max_diff:.2e} exceeds "
            f"{tolerance:.0e} ({precision}); nothing written",
            report,
        )
    step(5, STEPS[4])
    try:
        atomic.write_bytes(out, data)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write the export ({exc.strerror or exc})") from None
    return report


# ---------------------------------------------------------------------------- steps


def _load_source(source):
    """(model in fp32 eval mode on CPU, config, sha256 of the checkpoint or None)."""
    if isinstance(source, tuple):
        model, config = source
        if not isinstance(config, ModelConfig):
            raise ExportError("export needs a checkpoint path or a (model, ModelConfig) pair")
        return copy.deepcopy(model).float().cpu().eval(), config, None
    from glass_cli.models import checkpoint

    model, config = checkpoint.load(source)  # CheckpointError carries its own one-line reason
    weights, _ = checkpoint.paths_for(source)
    return model, config, digest.file_sha256(weights)


def _wrapped(model, config: ModelConfig, fp16: bool):
    """The module the exporter sees: named inputs, P(AI) instead of logits, optional fp16."""
    import torch

    dtype = torch.float16 if fp16 else torch.float32
    net = copy.deepcopy(model).to(dtype) if fp16 else model

    class GlassExport(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, global_view, crops):
            logits, attention = self.net(global_view.to(dtype), crops.to(dtype))
            return torch.softmax(logits.float(), dim=1)[:, 1], attention.float()

    class BaselineExport(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, global_view):
            logits, _ = self.net(global_view.to(dtype))
            return torch.softmax(logits.float(), dim=1)[:, 1]

    return (GlassExport() if config.uses_crops else BaselineExport()).eval()


def _to_onnx(model, config: ModelConfig, *, fp16: bool, opset: int, out: Path):
    import torch
    from torch.export import Dim

    wrapper = _wrapped(model, config, fp16)
    s = config.crop_size
    # Example sizes of 2 or more: torch.export would specialise a dimension it sees as 1.
    batch, k = 2, max(2, config.crops_per_image)
    example = [torch.zeros(batch, 3, s, s)]
    batch_dim = Dim("batch")
    dims = {"global_view": {0: batch_dim}}
    if config.uses_crops:
        example.append(torch.zeros(batch, k, 3, s, s))
        dims["crops"] = {0: batch_dim, 1: Dim("num_crops")}
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                tuple(example),
                dynamo=True,
                opset_version=opset,
                external_data=False,
                input_names=onnxfile.input_names(config),
                output_names=onnxfile.output_names(config),
                dynamic_shapes=dims,
                verbose=False,
                optimize=True,
            )
            return program.model_proto
    except Exception as exc:
        raise ExportError(f"{out}: ONNX export of {config.describe()} failed ({one_line(exc)})") from None


def _check_graph(proto, out: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"{out}: the exported graph fails onnx.checker ({one_line(exc)})") from None


def parity_shapes(config: ModelConfig) -> list[tuple[int, int | None]]:
    """(B, K) pairs the parity check runs: the trained K at two batch sizes, then another K."""
    if not config.uses_crops:
        return [(1, None), (3, None)]
    k = config.crops_per_image
    return [(1, k), (3, k), (2, k + 2)]


def _parity(model, config: ModelConfig, data: bytes, *, seed: int, out: Path) -> list[ParityCheck]:
    import onnxruntime as ort
    import torch

    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"{out}: ONNX Runtime cannot load the export ({one_line(exc)})") from None
    rng = np.random.default_rng(seed)
    s = config.crop_size
    checks = []
    for b, k in parity_shapes(config):
        g = rng.standard_normal((b, 3, s, s), dtype=np.float32)
        c = rng.standard_normal((b, k, 3, s, s), dtype=np.float32) if k is not None else None
        with torch.inference_mode():
            logits, attention = model(torch.from_numpy(g), None if c is None else torch.from_numpy(c))
            want_p = torch.softmax(logits.float(), dim=1)[:, 1].numpy()
            want_a = None if attention is None else attention.float().numpy()
        feeds = {onnxfile.INPUT_GLOBAL: g}
        if c is not None:
            feeds[onnxfile.INPUT_CROPS] = c
        try:
            got = session.run(None, feeds)
        except Exception as exc:
            raise ExportError(f"{out}: ONNX Runtime failed on a {b}x{k} batch ({one_line(exc)})") from None
        errors = [np.abs(got[0] - want_p).ravel()]
        if want_a is not None:
            errors.append(np.abs(got[1] - want_a).ravel())
        diff = float(np.max(np.concatenate(errors)))
        checks.append(ParityCheck(b, k, diff if np.isfinite(diff) else float("inf")))
    return checks
