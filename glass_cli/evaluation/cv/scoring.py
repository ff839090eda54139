"""Scoring a fold: the conditions every held-out image is scored under, the per-file scores
and the numbers computed from them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glass_cli.data.datasets import Sample
from glass_cli.evaluation.cv.folds import group_of
from glass_cli.evaluation.cv.options import OBJECTIVE, CvOptions
from glass_cli.outputs.progress import progress


@dataclass(frozen=True)
class Condition:
    """One way of scoring the held-out images."""

    key: str
    label: str
    perturb: dict[str, Any]
    """Keyword arguments of ``evaluate.Perturbation``."""
    reals_only: bool
    """Only the reals are perturbed; the fakes keep their score as stored."""


def conditions(options: CvOptions) -> list[Condition]:
    out = [Condition("native", "as stored", {}, False)]
    out += [Condition(f"long{n}", f"long side {n}", {"long_side": n}, True) for n in options.real_sizes]
    out.append(Condition(f"jpeg{options.jpeg}", f"JPEG q{options.jpeg}", {"jpeg": options.jpeg}, False))
    if options.webp:
        out.append(Condition(f"webp{options.webp}", f"WebP q{options.webp}", {"webp": options.webp}, False))
    out.append(Condition(f"down{options.downscale:g}", f"{options.downscale:g}x downscale", {"downscale": options.downscale}, False))
    return out


def size_keys(options: CvOptions) -> list[str]:
    """The conditions that vary only the size of the reals (the objective's terms)."""
    return ["native"] + [f"long{n}" for n in options.real_sizes]


def spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (n-1) of the defined values."""
    xs = [float(v) for v in values if v is not None and not math.isnan(v)]
    return {
        "mean": statistics.fmean(xs) if xs else None,
        "std": statistics.stdev(xs) if len(xs) > 1 else None,
        "n": len(xs),
    }


def _rate(scores: Sequence[float], threshold: float) -> float | None:
    return sum(p >= threshold for p in scores) / len(scores) if scores else None


def fold_numbers(
    files: Sequence[dict[str, Any]], conds: Sequence[Condition], sizes: Sequence[str], threshold: float
) -> tuple[dict[str, float | None], dict[str, dict], dict[str, dict]]:
    """Fold metrics, per-real-source FPR and per-fake-family detection from per-file scores
    (``files``: dicts with label 0/1, family and ``p_ai`` per condition key)."""
    from glass_cli.metrics import auroc

    metrics: dict[str, float | None] = {}
    for c in conds:
        labels, scores = [], []
        for f in files:
            p = f["p_ai"].get("native" if (c.reals_only and f["label"] == 1) else c.key)
            if p is not None:
                labels.append(f["label"])
                scores.append(p)
        metrics[f"auroc_{c.key}"] = auroc(labels, scores) if labels else None
        metrics[f"fpr_{c.key}"] = _rate([p for y, p in zip(labels, scores) if y == 0], threshold)
        if not c.reals_only:
            metrics[f"tpr_{c.key}"] = _rate([p for y, p in zip(labels, scores) if y == 1], threshold)
    terms = [metrics[f"auroc_{k}"] for k in sizes]
    metrics[OBJECTIVE] = None if any(t is None for t in terms) else statistics.fmean(terms)

    def per_family(label: int, keys: Sequence[str], field: str) -> dict[str, dict]:
        out = {}
        for name in sorted({str(f.get(field) or f["family"]) for f in files if f["label"] == label}):
            mine = [f for f in files if str(f.get(field) or f["family"]) == name and f["label"] == label]
            out[name] = {"n": len(mine)}
            for k in keys:
                out[name][k] = _rate([f["p_ai"][k] for f in mine if f["p_ai"].get(k) is not None], threshold)
        return out

    real_sources = per_family(0, [c.key for c in conds], "group")
    fake_families = per_family(1, [c.key for c in conds if not c.reals_only], "family")
    metrics.update(format_numbers(files, threshold))
    return metrics, real_sources, fake_families


def format_numbers(files: Sequence[dict[str, Any]], threshold: float) -> dict[str, float | None]:
    """As stored, per file format (by suffix): ``fpr_fmt_<ext>`` and ``tpr_fmt_<ext>``, so that
    a format that only one class has (WebP fakes, BMP reals) shows when it drives the score."""
    out: dict[str, float | None] = {}
    for ext in sorted({f.get("format") or "" for f in files} - {""}):
        for label, key in ((0, "fpr"), (1, "tpr")):
            scores = [f["p_ai"]["native"] for f in files if f.get("format") == ext and f["label"] == label and "native" in f["p_ai"]]
            out[f"{key}_fmt_{ext}"] = _rate(scores, threshold)
    return out


def score_fold(
    weights: Path, heldout: Sequence[Sample], options: CvOptions, *, console=None, label: str = "scoring"
) -> tuple[list[dict[str, Any]], list[dict[str, str]], Any]:
    """Score the held-out samples under every condition with the checkpoint ``weights``:
    (per-file records, unreadable files, the model config)."""
    from glass_cli.evaluation.evaluate import Perturbation, predict
    from glass_cli.inference.engines import TorchEngine

    # fp32, the arithmetic of the plain (ONNX) scan, whatever the CPU: thresholds calibrated from
    # these scores must hold for the verdicts scan gives (auto would pick bf16 on some CPUs)
    engine = TorchEngine.from_checkpoint(weights, device=options.device, precision="fp32")
    conds = conditions(options)
    reals = [s for s in heldout if s.label == 0]
    files = {
        s.path: {
            "path": s.path, "label": s.label, "family": s.family, "generator": s.generator, "source": s.source,
            "group": group_of(s, options.group_by), "format": Path(s.path).suffix.lower().lstrip(".").replace("jpeg", "jpg"),
            "p_ai": {},
        }
        for s in heldout
    }
    errors: dict[str, str] = {}
    todo = [(c, reals if c.reals_only else list(heldout)) for c in conds]
    with progress(console) as bar:
        task = bar.add_task(label, total=sum(len(part) for _, part in todo), info="") if bar else None
        for c, part in todo:
            if bar:
                bar.update(task, info=c.label)
            for r in predict(
                part,
                engine,
                perturb=Perturbation(**c.perturb),
                batch_size=options.batch_size,
                workers=options.workers,
                on_progress=(lambda n: bar.advance(task, n)) if bar else None,
            ):
                if r.error:
                    errors.setdefault(r.path, r.error)
                else:
                    files[r.path]["p_ai"][c.key] = r.p_ai
    error_list = [{"path": p, "error": e} for p, e in sorted(errors.items())]
    return [f for f in files.values() if f["p_ai"]], error_list, engine.config
