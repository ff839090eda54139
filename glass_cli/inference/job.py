"""A whole scan from Python, as ``glass scan`` runs it: paths and options in, results out.

``scan_paths`` checks everything that can be checked cheaply first, in this order: the
paths exist, the weights resolve, the model file suits the engine, the shard parses, the
output destinations can be written (``outputs.sinks.check_destinations``), an optional
watermark reader asked for is installed. Only then does it walk the folders, and
``ScanJob.open()`` loads the model (and TrustMark's, when asked). So a bad option fails before
any work. Iterating the opened job scans file by file, feeds every requested output as
results arrive, and writes the end-of-scan outputs (JSON document, HTML report) when the
last file is done::

    job = scan_paths(["photos/"], json="scan.json")
    with job.open():
        for result in job:
            print(result.path, result.verdict, result.p_ai)
    print(job.exit_code)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from glass_cli.inference.engines import describe_model, engine_kind, open_engine
from glass_cli.inference.scan import (
    DEFAULT_FILE_TIMEOUT,
    DEFAULT_MIN_SIDE,
    Decision,
    ScanError,
    ScanResult,
    Watermarks,
    default_workers,
    scan,
)
from glass_cli.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from glass_cli.io.walk import iter_files, parse_shard, shard_files
from glass_cli.io.watermark import TRUSTMARK_MISSING, TrustMarkReader, WatermarkSetupError, trustmark_installed
from glass_cli.models import checkpoint
from glass_cli.outputs import records
from glass_cli.outputs.sinks import OutputOptions, ScanOutputs, check_destinations


class ScanJob:
    """A checked scan: ``files`` walked, model not loaded until ``open()``."""

    def __init__(self, paths: Sequence[Path], files: list, weights: Path, *, engine: str, device: str, precision: str,
                 threshold: float | None, uncertain: tuple[float, float] | None, batch_size: int, workers: int,
                 pool: str = "auto", max_pixels: int, max_bytes: int, file_timeout: float | None, min_side: int, outputs: OutputOptions,
                 watermarks: bool = True, trustmark: bool = False, decode: str = "cpu"):
        self.paths, self.files, self.weights = paths, files, weights
        self._engine_args = (engine, device, precision)
        self._threshold, self._uncertain = threshold, uncertain
        self.batch_size, self.workers, self.max_pixels, self.outputs = batch_size, workers, max_pixels, outputs
        self.pool = pool
        self.max_bytes, self.file_timeout, self.min_side = max_bytes, file_timeout, min_side
        self._trustmark = trustmark
        self.decode = decode
        self.watermarks = Watermarks(dwt_dct=watermarks)
        self.engine = None
        self.model: dict[str, Any] = {}
        self.decision: Decision | None = None
        self.results: list[ScanResult] = []
        self._sinks: ScanOutputs | None = None

    def open(self) -> ScanJob:
        """Load the model and open the outputs (files that stream are created here)."""
        self.engine = open_engine(self.weights, *self._engine_args)
        if self.decode == "gpu" and not getattr(self.engine, "device_name", "").startswith("cuda"):
            raise ScanError("--decode gpu needs a CUDA GPU for the torch engine; torch sees none here "
                            "(or --device cpu was given); the default --decode cpu works everywhere")
        self.model = describe_model(self.weights, self.engine)
        threshold = self.engine.config.threshold if self._threshold is None else self._threshold
        self.decision = Decision(threshold, self._uncertain)
        if self._trustmark:
            try:
                reader = TrustMarkReader(device="cuda" if self.engine.device.startswith("cuda") else "cpu")
            except WatermarkSetupError as exc:
                raise ScanError(str(exc)) from None
            self.watermarks = dataclasses.replace(self.watermarks, trustmark=reader)
        self._sinks = ScanOutputs(self.outputs, self.paths, model=self.model, decision=self.decision, device=self.engine.device)
        return self

    def __iter__(self) -> Iterator[ScanResult]:
        if self._sinks is None:
            self.open()
        for result in self._scan():
            self._sinks.add(result)
            self.results.append(result)
            yield result
        self._sinks.device = self.device
        self._sinks.finish(self.results)

    def _scan(self) -> Iterator[ScanResult]:
        """The results, in the order they stream: here ``scan`` on this machine's pools;
        ``glass_cli.cluster.ray_scan.RayScanJob`` runs the same steps on a Ray cluster."""
        return scan(self.files, self.engine, decision=self.decision, batch_size=self.batch_size,
                    max_pixels=self.max_pixels, max_bytes=self.max_bytes, file_timeout=self.file_timeout, min_side=self.min_side,
                    explain=self.outputs.explain, workers=self.workers, pool=self.pool, watermarks=self.watermarks,
                    decode="device" if self.decode == "gpu" else "cpu")

    def run(self) -> list[ScanResult]:
        """Scan every file; the results in walk order."""
        with self:
            for _ in self:
                pass
        return self.results

    @property
    def device(self) -> str:
        return self.engine.device if self.engine is not None else ""

    @property
    def exit_code(self) -> int:
        """glass scan's exit code for the results so far (outputs.records.exit_code)."""
        return records.exit_code(self.results)

    def close(self) -> None:
        if self._sinks is not None:
            self._sinks.close()

    def __enter__(self) -> ScanJob:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scan_paths(
    paths: Sequence[str | os.PathLike],
    *,
    weights: str | os.PathLike | None = None,
    engine: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    threshold: float | None = None,
    uncertain: tuple[float, float] | None = None,
    batch_size: int = 8,
    workers: int | None = None,
    pool: str = "auto",
    shard: str | None = None,
    recursive: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    file_timeout: float | None = DEFAULT_FILE_TIMEOUT,
    min_side: int = DEFAULT_MIN_SIDE,
    json: str | None = None,
    jsonl: str | None = None,
    csv: str | None = None,
    save_crops: str | None = None,
    report_html: str | None = None,
    watermarks: bool = True,
    trustmark: bool = False,
    decode: str = "cpu",
) -> ScanJob:
    """Check a scan's options and walk its files (see the module docstring); the model is
    loaded by ``open()`` or on the first iteration. Errors: ScanError, CheckpointError,
    EngineError, one line each. Output destinations: files, or '-' for stdout (one at most).
    ``pool``: thread or process workers ('auto' by count, see inference.processes);
    ``watermarks``: read the SD/SDXL pixel watermarks; ``trustmark``: also decode TrustMark
    (the ``trustmark`` extra; its models are fetched from Adobe on first use).
    ``decode``: 'cpu', or 'gpu' to decode JPEGs with nvJPEG and cut their views on the GPU
    (torch engine on CUDA; picks the torch engine when ``engine`` is 'auto')."""
    if decode not in ("cpu", "gpu"):
        raise ScanError(f"--decode must be cpu or gpu, not {decode!r}")
    if decode == "gpu":
        if engine == "onnx" or (weights is not None and str(weights).lower().endswith(".onnx")):
            raise ScanError("--decode gpu runs the torch engine: give it a checkpoint (.safetensors), not an ONNX model")
        engine = "torch"
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists() and not p.is_symlink():
            raise ScanError(f"{p}: no such file or folder")
    weights = checkpoint.resolve_weights(weights, engine)
    engine_kind(weights, engine)
    try:
        part = parse_shard(shard) if shard else None
    except ValueError as exc:
        raise ScanError(str(exc)) from None
    outputs = OutputOptions(json, jsonl, csv, save_crops, report_html)
    check_destinations(outputs, paths)
    if trustmark and not trustmark_installed():
        raise ScanError(TRUSTMARK_MISSING)
    files = list(shard_files(iter_files(paths, recursive), part))
    if not files:
        where = ", ".join(str(p) for p in paths)
        raise ScanError(f"no image files found in {where}" + (f" for shard {shard}" if shard else ""))
    return ScanJob(paths, files, weights, engine=engine, device=device, precision=precision, threshold=threshold,
                   uncertain=uncertain, batch_size=batch_size, workers=workers or default_workers(), pool=pool,
                   max_pixels=max_pixels, max_bytes=max_bytes, file_timeout=file_timeout, min_side=min_side, outputs=outputs,
                   watermarks=watermarks, trustmark=trustmark, decode=decode)
