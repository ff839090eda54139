"""Everything a scan is told, in one frozen object built once and passed down whole.

``ScanSettings`` is what ``glass scan``'s options become, and what a library caller builds:

    settings = ScanSettings(weights="baseline", outputs=OutputOptions(jsonl="scan.jsonl"),
                            limits=Limits(min_side=128))

Its constructor checks every value and every combination that can be checked without
touching a file (one-line ScanError each), so a bad option fails before any work. The
per-file limits travel on their own (``Limits``): they are all a worker needs besides the
model's config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from glass_cli.errors import ScanError
from glass_cli.inference.processes import POOLS
from glass_cli.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from glass_cli.outputs.sinks import OutputOptions
from glass_cli.results import Decision, band_around

DEFAULT_FILE_TIMEOUT = 120.0
"""Seconds one file may take to be read, hashed, decoded and cut into views before scan
gives up on it (a 250 MP PNG takes about 20 s on a slow 2-core machine)."""

DEFAULT_MIN_SIDE = 128
"""Images with a shorter side below this many pixels are not scored ("too small to judge"):
the global view is mostly interpolation and every crop the whole picture, and under
leave-source-out validation the GLASS default of 2026-12-03 flagged 25% of held-out real
pictures with a shorter side of 64-127 px at its threshold, against 2-9% in every larger
size bucket (``bench/fpr_by_size.py``, bench/results/fpr-by-size-glass-e16-2026-12-06.txt)."""

DECODES = ("cpu", "gpu")
"""Where JPEGs are decoded: in the CPU workers, or on the torch engine's device (nvJPEG on
CUDA; on a CPU engine the same code runs through libjpeg-turbo, which the tests use)."""

RAY_ADDRESS_HELP = ("local (start Ray on this machine), auto (the cluster this node belongs to), HOST:PORT of a head "
                    "node, or ray://HOST:10001")


@dataclass(frozen=True)
class Limits:
    """What one file may cost before scan refuses it or gives up on it."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    """Refuse pictures with more pixels than this, from the header (decompression bombs)."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Refuse files larger than this without reading them."""
    file_timeout: float | None = DEFAULT_FILE_TIMEOUT
    """Give up on a file still being read or decoded after this many seconds; None: no limit."""
    min_side: int = DEFAULT_MIN_SIDE
    """Report pictures with a side shorter than this as too small to judge."""

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ScanError("--max-pixels must be at least 1")
        if self.max_bytes < 1:
            raise ScanError("--max-bytes must be at least 1")
        if self.min_side < 1:
            raise ScanError("--min-side must be at least 1")
        if self.file_timeout is not None and self.file_timeout <= 0:
            raise ScanError("--file-timeout must be above 0 seconds")


def ray_target(address: str) -> tuple[str, int] | None:
    """(host, port) of a --ray address that names one; None for local and auto. ScanError
    for anything else."""
    if address in ("local", "auto"):
        return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ScanError(f"--ray {address}: expected {RAY_ADDRESS_HELP}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class ScanSettings:
    """One scan's settings; see the fields. Checked on construction."""

    weights: str | os.PathLike | None = None
    """A checkpoint, an ONNX export or a shipped model's name; None: the shipped default (or
    $GLASS_WEIGHTS)."""
    engine: str = "auto"
    """auto (by the file's suffix), torch or onnx."""
    device: str = "auto"
    precision: str = "auto"
    threshold: float | None = None
    """Flag at P(AI) >= this; None: the model's own threshold."""
    uncertain: tuple[float, float] | float | None = None
    """Call P(AI) in [low, high) 'uncertain'; a single number: the threshold plus or minus it.
    The band must hold the threshold (``results.Decision``)."""
    batch_size: int = 8
    workers: int | None = None
    """Files read and decoded ahead of the model at once; None: one per usable core."""
    pool: str = "auto"
    """Workers as threads or processes; auto: processes above 4 workers."""
    decode: str = "cpu"
    """Where JPEGs are decoded (``DECODES``)."""
    shard: str | None = None
    """'I/N': scan only shard I of N (``io.walk.parse_shard``)."""
    recursive: bool = True
    limits: Limits = field(default_factory=Limits)
    watermarks: bool = True
    """Read the SD/SDXL invisible watermarks from the pixels."""
    trustmark: bool = False
    """Also decode TrustMark (the ``trustmark`` extra)."""
    outputs: OutputOptions = field(default_factory=OutputOptions)
    ray: str | None = None
    """Score the files on Ray at this address (``RAY_ADDRESS_HELP``); None: on this machine."""
    ray_actors: int | None = None
    """With ``ray``: engine actors; None: one per GPU, else one per two CPUs."""
    resume: bool = False
    """Carry on from the records already in ``outputs.jsonl`` (``scan.resume``)."""
    cache: str | os.PathLike | None = None
    """A result cache file (``scan.cache``): files answered before are not scored again."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ScanError("--batch-size must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise ScanError("--workers must be at least 1")
        if self.pool not in POOLS:
            raise ScanError(f"--pool: pool must be auto, thread or process, not {self.pool!r}")
        if self.decode not in DECODES:
            raise ScanError(f"--decode must be cpu or gpu, not {self.decode!r}")
        if isinstance(self.uncertain, float) and not 0.0 < self.uncertain < 1.0:
            raise ScanError(f"--uncertain WIDTH must lie between 0 and 1, got {self.uncertain:g}")
        if isinstance(self.uncertain, tuple):
            Decision(self.uncertain[0], self.uncertain)  # the band's own shape; whether it holds the threshold: decision()
        if self.threshold is not None:
            self.decision(self.threshold)
        if self.resume and self.outputs.jsonl in (None, "-"):
            raise ScanError("--resume needs --jsonl FILE: the records to resume from")
        if self.ray is None and self.ray_actors is not None:
            raise ScanError("--ray-actors needs --ray")
        if self.ray is not None:
            ray_target(self.ray)
            if self.ray_actors is not None and self.ray_actors < 1:
                raise ScanError("--ray-actors must be at least 1")
            if self.trustmark:
                raise ScanError("--trustmark does not run on Ray yet: scan without --ray to decode TrustMark")
            if self.decode != "cpu":
                raise ScanError("--decode gpu does not run on Ray: the Ray scan decodes in its CPU tasks")
            if self.pool == "process":
                raise ScanError("--pool applies to a local scan; on Ray each file is prepared in a Ray task")
        if self.decode == "gpu":
            if self.engine == "onnx" or (self.weights is not None and str(self.weights).lower().endswith(".onnx")):
                raise ScanError("--decode gpu runs the torch engine: give it a checkpoint (.safetensors), not an ONNX model")
            if self.pool == "process":
                raise ScanError("--decode gpu reads files in threads (they only read and hash); use --pool thread or auto")
        if self.trustmark and self.pool == "process":
            raise ScanError("--trustmark reads in the main process only; use --pool thread with it")

    def decision(self, model_threshold: float) -> Decision:
        """How this scan turns P(AI) into verdicts, given the model's own threshold."""
        threshold = model_threshold if self.threshold is None else self.threshold
        band = band_around(threshold, self.uncertain) if isinstance(self.uncertain, float) else self.uncertain
        return Decision(threshold, band)

    @property
    def engine_kind(self) -> str:
        """The --engine asked for, with --decode gpu's choice of torch applied."""
        return "torch" if self.decode == "gpu" else self.engine

    @property
    def explain(self) -> bool:
        """Whether results keep previews and crops (some output draws them)."""
        return self.outputs.explain
