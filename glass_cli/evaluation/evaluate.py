"""Score a labelled data set with a checkpoint and summarise how well it separates the classes.

Each file is prepared exactly as ``glass scan`` prepares it: ``preprocess.prepare.prepare_file``
reads and decodes it, then ``views.build_views`` cuts its views with the crop seed taken
from the SHA-256 of the file's bytes. So an
image's score here is the score scan gives the same file.

Robustness options perturb each picture the way the world does, and then treat the result
as a new file: ``downscale`` resizes by a factor, ``long_side`` shrinks a picture whose long
side exceeds that many pixels (never enlarging one), ``jpeg`` re-encodes at a quality. The
perturbed picture is encoded to bytes (JPEG at that quality, or lossless PNG when only
resized), decoded again and seeded from those bytes' SHA-256, which is what scan would do
with the perturbed file saved to disk. A picture that ``long_side`` alone leaves as it is
stays the file as stored, with scan's score for that file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from glass_cli.data.augment import encoded_bytes
from glass_cli.data.datasets import Sample, assign_split, read_dataset, select
from glass_cli.errors import GlassError
from glass_cli.inference.pipeline import batched, ordered_map
from glass_cli.io import digest
from glass_cli.io.image import LoadError, decode_image
from glass_cli.metrics import binary_metrics, group_metrics
from glass_cli.preprocess.prepare import prepare_file
from glass_cli.preprocess.views import Views, scale_image


class EvalError(GlassError, ValueError):
    """Evaluation that cannot run as asked; one-line reason."""


@dataclass
class Perturbation:
    jpeg: int | None = None
    """Re-encode as JPEG at this quality (1-100)."""
    downscale: float | None = None
    """Resize both sides by this factor (0 < f <= 1) before any re-encode."""
    long_side: int | None = None
    """Then shrink (never enlarge) so that the long side is at most this many pixels."""
    webp: int | None = None
    """Re-encode as WebP at this quality (1-100) instead of JPEG or PNG."""

    def __post_init__(self) -> None:
        if self.jpeg is not None and not 1 <= self.jpeg <= 100:
            raise EvalError(f"--jpeg must be a quality from 1 to 100, got {self.jpeg}")
        if self.webp is not None and not 1 <= self.webp <= 100:
            raise EvalError(f"--webp must be a quality from 1 to 100, got {self.webp}")
        if self.jpeg is not None and self.webp is not None:
            raise EvalError("--jpeg and --webp are two re-encodes; choose one")
        if self.downscale is not None and not 0.0 < self.downscale <= 1.0:
            raise EvalError(f"--downscale must be a factor in (0, 1], got {self.downscale}")
        if self.long_side is not None and self.long_side < 8:
            raise EvalError(f"--long-side must be at least 8 pixels, got {self.long_side}")

    def changes(self, image: Image.Image) -> bool:
        """Whether this picture becomes another file (a long-side cap it already meets does not)."""
        if self.jpeg is not None or self.webp is not None or self.downscale is not None:
            return True
        return self.long_side is not None and max(image.size) > self.long_side

    def describe(self) -> str:
        parts = []
        if self.downscale is not None:
            parts.append(f"downscaled x{self.downscale:g}")
        if self.long_side is not None:
            parts.append(f"long side <= {self.long_side}")
        if self.jpeg is not None:
            parts.append(f"JPEG q{self.jpeg}")
        if self.webp is not None:
            parts.append(f"WebP q{self.webp}")
        return ", ".join(parts) or "as stored"

    def to_dict(self) -> dict:
        return {"jpeg": self.jpeg, "webp": self.webp, "downscale": self.downscale, "long_side": self.long_side}

    def __call__(self, image: Image.Image, path: str) -> tuple[Image.Image, bytes] | None:
        """As ``apply`` when the perturbation changes this picture, else None (the file as
        stored): the ``perturb`` of ``preprocess.prepare_file``."""
        return self.apply(image, path) if self.changes(image) else None

    def apply(self, image: Image.Image, path: str) -> tuple[Image.Image, bytes]:
        """(perturbed RGB image, the bytes of the file it stands for)."""
        if self.downscale is not None and self.downscale < 1.0:
            image = scale_image(image, self.downscale)
        if self.long_side is not None and max(image.size) > self.long_side:
            image = scale_image(image, self.long_side / max(image.size), cap=self.long_side)
        if self.jpeg is not None:
            data = encoded_bytes(image, "JPEG", self.jpeg)
        elif self.webp is not None:
            data = encoded_bytes(image, "WEBP", self.webp)
        else:
            buf = io.BytesIO()
            image.save(buf, format="PNG", compress_level=1)
            data = buf.getvalue()
        decoded, _ = decode_image(data, path)
        return decoded, data


@dataclass
class Record:
    path: str
    label: int
    generator: str | None = None
    family: str | None = None
    p_ai: float | None = None
    error: str | None = None
    sha256: str | None = None
    """Of the file as stored (before any perturbation)."""


def prepare(sample: Sample, config, perturb: Perturbation) -> tuple[Record, Views | None]:
    record = Record(sample.path, sample.label, sample.generator, sample.family)
    try:
        prepared = prepare_file(sample.path, config, perturb=perturb)
        record.sha256 = prepared.sha256
        return record, prepared.views
    except LoadError as exc:
        record.error = exc.reason
    except Exception as exc:  # an exotic file must not end the evaluation
        record.error = f"internal error while preparing views ({type(exc).__name__}: {exc})"
    return record, None


def predict(
    samples: Sequence[Sample],
    engine,
    *,
    perturb: Perturbation | None = None,
    batch_size: int = 8,
    workers: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> list[Record]:
    """P(AI) for every sample (``engine``: anything with ``config`` and ``predict`` as in
    engines.py). Unreadable files come back with ``error`` set and no score."""
    perturb = perturb or Perturbation()
    config = engine.config
    ready = ordered_map(lambda s: prepare(s, config, perturb), samples, workers=workers, window=4 * batch_size)
    records: list[Record] = []
    for record, _, p, _ in batched(ready, engine, batch_size):
        record.p_ai = p
        records.append(record)
        if on_progress:
            on_progress(1)
    return records


def summarize(records: Sequence[Record], threshold: float) -> dict:
    """Overall metrics, per-generator and per-family breakdowns (when the data names them),
    and the unreadable files."""
    scored = [r for r in records if r.p_ai is not None]
    labels = [r.label for r in scored]
    scores = [r.p_ai for r in scored]
    out: dict = {"threshold": threshold, "overall": binary_metrics(labels, scores, threshold)}
    for key in ("generator", "family"):
        groups = [getattr(r, key) for r in scored]
        if any(groups):
            out[f"by_{key}"] = group_metrics(labels, scores, groups, threshold)
    out["errors"] = [{"path": r.path, "error": r.error} for r in records if r.error]
    return out


def threshold_at_fpr(real_scores: Sequence[float], target_fpr: float) -> float:
    """The lowest threshold that flags at most ``target_fpr`` of ``real_scores`` (P(AI) of
    real images; a file is flagged when P(AI) >= threshold): it sits just above the score of
    the highest-scoring real image that must not be flagged."""
    if not 0.0 <= target_fpr < 1.0:
        raise EvalError(f"--target-fpr must lie in [0, 1), got {target_fpr}")
    real = sorted(real_scores, reverse=True)
    if not real:
        raise EvalError("calibration needs real images with scores; none were scored")
    allowed = int(target_fpr * len(real) + 1e-9)  # real images that may score at or above the threshold
    return 0.0 if allowed >= len(real) else min(1.0, float(np.nextafter(real[allowed], 2.0)))


def threshold_for(records: Sequence[Record], target_fpr: float) -> dict:
    """The lowest threshold whose false-positive rate on the real images in ``records`` is at
    most ``target_fpr``, with what it achieves there (FPR and TPR on the same images).

    A file is flagged when P(AI) >= threshold, so the threshold sits just above the score of
    the highest-scoring real image that must not be flagged.
    """
    real = [r.p_ai for r in records if r.p_ai is not None and r.label == 0]
    fake = [r.p_ai for r in records if r.p_ai is not None and r.label == 1]
    threshold = threshold_at_fpr(real, target_fpr)
    fpr = sum(p >= threshold for p in real) / len(real)
    tpr = sum(p >= threshold for p in fake) / len(fake) if fake else None
    return {"threshold": threshold, "target_fpr": target_fpr, "fpr": fpr, "tpr": tpr,
            "real": len(real), "fake": len(fake)}



def calibrated_path(weights: str | os.PathLike) -> Path:
    """Where a calibrated copy of ``weights`` goes by default: WEIGHTS-calibrated beside it."""
    from glass_cli.models import checkpoint

    return Path(str(checkpoint.paths_for(weights)[0]).removesuffix(".safetensors") + "-calibrated")


def save_calibrated(model, config, calibration: dict[str, Any], weights: str | os.PathLike,
                    out: str | os.PathLike | None = None) -> Path:
    """Save a copy of ``model`` (loaded from ``weights`` with ``config``) whose threshold is
    ``calibration["threshold"]``, with ``calibration`` (how it was chosen) in its config, to
    ``out`` or ``calibrated_path(weights)``. Returns the .safetensors path. glass eval
    --calibrate and glass cv --calibrate both save through here."""
    from glass_cli.models import checkpoint

    target = Path(out) if out is not None else calibrated_path(weights)
    return Path(checkpoint.save(model, config.replace(threshold=calibration["threshold"], calibration=calibration), target))


@dataclass
class Evaluation:
    """What ``run`` measured: the scores, their summary and, when asked, the calibration."""

    data: str
    split: str | None
    weights: Path
    perturbation: Perturbation
    threshold: float
    engine: Any
    records: list[Record] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    calibrated: Path | None = None
    """Where the calibrated copy was written."""


@dataclass(frozen=True)
class EvalSettings:
    """What ``run`` is told, checked on construction."""

    weights: str | os.PathLike | None = None
    """A checkpoint; None: the shipped model."""
    split: str | None = None
    """Keep only this split; None: every image."""
    perturbation: Perturbation = field(default_factory=Perturbation)
    threshold: float | None = None
    """Summarise at this threshold; None: the model's own."""
    val_fraction: float = 0.2
    """The hold-out of data without a split column (scan's deterministic one, as in training)."""
    device: str = "auto"
    batch_size: int = 8
    workers: int = 2
    calibrate_fpr: float | None = None
    """Save a copy of the model whose threshold flags this share of these reals; None: no copy."""
    calibrated_out: str | os.PathLike | None = None
    """Where that copy goes; None: beside the weights (``calibrated_path``)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise EvalError(f"--val-fraction must lie in (0, 1), got {self.val_fraction}")


def run(
    data: str | os.PathLike,
    settings: EvalSettings | None = None,
    *,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """glass eval from Python: read the labelled ``data``, keep the settings' split, score
    every image as scan would, summarise at the threshold and, with ``calibrate_fpr``, save
    a copy whose threshold keeps the false-positive rate on these reals there.
    ``on_start(total)`` and ``on_progress(n)`` report progress. Errors: EvalError,
    DataError, CheckpointError, EngineError, BackboneError, one line each."""
    from glass_cli.inference.engines import TorchEngine
    from glass_cli.models import checkpoint

    s = settings or EvalSettings()
    split, threshold, perturb = s.split, s.threshold, s.perturbation
    samples = assign_split(read_dataset(data), s.val_fraction)
    chosen = select(samples, split)
    if not chosen:
        found = sorted({s.split for s in samples if s.split})
        raise EvalError(f"{data}: no images in split {split!r} (splits: {', '.join(found) or 'none'})")
    weights = checkpoint.resolve_weights(s.weights, "torch")
    engine = TorchEngine.from_checkpoint(weights, device=s.device, precision="fp32")  # as the plain scan: see cv.scoring
    result = Evaluation(str(data), split, weights, perturb, engine.config.threshold if threshold is None else threshold, engine)
    if on_start is not None:
        on_start(len(chosen))
    result.records = predict(chosen, engine, perturb=perturb, batch_size=s.batch_size, workers=s.workers,
                             on_progress=on_progress)
    result.summary = summarize(result.records, result.threshold)
    if s.calibrate_fpr is not None:
        result.calibration = threshold_for(result.records, s.calibrate_fpr)
        result.calibration.update(data=digest.named_all(str(data)) if Path(data).is_file() else Path(data).name, split=split,
                                  perturbation=perturb.describe(), source=digest.named(weights))
        result.calibrated = save_calibrated(engine.model, engine.config, result.calibration, weights, s.calibrated_out)
    return result
