"""Leave-source-out cross-validation: measure a training recipe on sources it never saw.

Folds hold out whole groups of images. By default (``CvOptions.group_by="source"``) a group
is the manifest's ``source``: the gallery, repository or pipeline an image came from, whose
images share an encoder, sizes, post-processing and content. With ``group_by="family"`` it is
the ``family`` column (a generator family for fakes, a camera make or collection for reals),
which is finer but lets one pipeline's images sit on both sides of a fold. Fake groups and
real groups are each spread over N folds; fold i trains on every image outside fold i's
groups (the data's own train/val split is ignored) and is scored on its own groups' images.
A group never straddles two folds, so each score is a score on an unseen source.

    result = run_cv(TrainConfig(data="train-v1/manifest.csv", name="lite0", epochs=8), CvOptions(folds=3))
    result.objective            # mean over folds of the AUROC averaged over the real sizes

Each fold is trained with ``train.Trainer`` and scored with ``evaluate.predict``, so every
held-out image gets the score ``glass scan`` would give it. Reals are scored as stored and
with the long side shrunk to each of ``CvOptions.real_sizes`` (never enlarged), fakes as
stored: small, processed real photos are the ones a detector trained on camera originals
wrongly flags. Both classes are also scored re-encoded as JPEG and downscaled.

The fold is scored with its run's ``last`` checkpoint: the trainer's ``best`` is picked on
the held-out families (they are the run's validation split), which would let the test fold
choose the epoch.

What a cross-validation writes to ``RUNS_DIR/cv/NAME/``:
- ``plan.json``: data, training config, options and the fold assignment, written first;
- ``fold-I.csv``: the fold's manifest (absolute paths; split ``train`` or ``heldout``);
- ``fold-I/``: the fold's training run, and ``fold-I/heldout.json`` with its numbers and
  every held-out file's scores once it has been scored;
- ``cv.json``: every fold's numbers with their mean and spread (rewritten after each fold)
  and ``cv.png``, the per-fold AUROC by condition.

Running the same cross-validation again skips scored folds, scores trained ones and resumes
an interrupted training from its last finished epoch.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glass_cli import __version__
from glass_cli.config import RUNTIME_KEYS, TrainConfig
from glass_cli.io import atomic
from glass_cli.training.data import CLASS_NAMES, Sample, class_counts, read_dataset, select, stratified_slice

FORMAT = "glass-cv/1"
PLAN_FILE = "plan.json"
RESULT_FILE = "cv.json"
FIGURE_FILE = "cv.png"
FOLD_FILE = "heldout.json"
TRAIN_SPLIT = "train"
HELDOUT_SPLIT = "heldout"
SOURCE_MIN_N = 5
GROUP_BY = ("source", "family")
"""Real sources with fewer held-out images than this are left out of ``worst_source_sized``
(one photo from one camera makes a 0% or 100% false-positive rate)."""
OBJECTIVE = "auroc_sizes_mean"
"""The fold number that ``CvResult.objective`` averages: the AUROC of the held-out fakes
against the held-out reals, averaged over the real sizes (as stored and each long side)."""


class CvError(ValueError):
    """A cross-validation that cannot run as asked; one line naming the file and the reason."""


# ---------------------------------------------------------------------------- options


@dataclass(frozen=True)
class CvOptions:
    folds: int = 3
    real_sizes: tuple[int, ...] = (1024, 512)
    """Long sides (pixels) at which the held-out reals are also scored, besides as stored."""
    jpeg: int = 75
    """Quality of the JPEG re-encode robustness condition (both classes)."""
    downscale: float = 0.5
    """Factor of the downscale robustness condition (both classes)."""
    batch_size: int = 16
    """Images per model call when scoring."""
    workers: int = 2
    """Threads preparing images when scoring."""
    device: str = "auto"
    target_fpr: float = 0.05
    """False-positive rate on held-out reals that the leave-source-out threshold aims at
    (``calibration``); it changes only reported numbers, never a fold's training or scores."""
    group_by: str = "source"
    """What a fold holds out whole: ``source`` or ``family`` (manifest columns)."""
    webp: int = 80
    """Quality of the WebP re-encode condition (both classes); 0 leaves it out."""
    heldout_per_source: int = 0
    """Score at most this many held-out images per group and class (a fixed, path-hashed
    choice); 0 scores them all. Keeps huge sources from dominating the numbers and the time."""

    def __post_init__(self) -> None:
        if self.group_by not in GROUP_BY:
            raise CvError(f"--group-by must be one of {', '.join(GROUP_BY)}, got {self.group_by!r}")
        if not 0 <= self.webp <= 100:
            raise CvError(f"--webp must be a quality from 1 to 100 (0: off), got {self.webp}")
        if self.heldout_per_source < 0:
            raise CvError(f"--heldout-per-source must be >= 0, got {self.heldout_per_source}")
        if not 0.0 <= self.target_fpr < 1.0:
            raise CvError(f"--target-fpr must lie in [0, 1), got {self.target_fpr}")
        if self.folds < 2:
            raise CvError(f"--folds must be at least 2, got {self.folds}")
        if any(n < 8 for n in self.real_sizes) or len(set(self.real_sizes)) != len(self.real_sizes):
            raise CvError(f"--real-sizes must be distinct long sides of at least 8 pixels, got {list(self.real_sizes)}")
        if not 1 <= self.jpeg <= 100:
            raise CvError(f"--jpeg must be a quality from 1 to 100, got {self.jpeg}")
        if not 0.0 < self.downscale < 1.0:
            raise CvError(f"--downscale must be a factor in (0, 1), got {self.downscale}")
        if self.batch_size < 1 or self.workers < 0:
            raise CvError("the scoring batch size must be at least 1 and workers at least 0")

    @classmethod
    def from_plan(cls, o: dict[str, Any], target_fpr: float = 0.05) -> CvOptions:
        """The options a plan's ``options`` section records (older plans: leave-family-out, no WebP)."""
        return cls(
            folds=o["folds"], real_sizes=tuple(o["real_sizes"]), jpeg=o["jpeg"], downscale=o["downscale"], target_fpr=target_fpr,
            group_by=o.get("group_by", "family"), webp=o.get("webp", 0), heldout_per_source=o.get("heldout_per_source", 0),
        )

    def plan(self) -> dict[str, Any]:
        """The options that change the results (a resumed cross-validation must keep them)."""
        return {
            "folds": self.folds, "real_sizes": list(self.real_sizes), "jpeg": self.jpeg, "downscale": self.downscale,
            "group_by": self.group_by, "webp": self.webp, "heldout_per_source": self.heldout_per_source,
        }


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


# ---------------------------------------------------------------------------- folds


@dataclass(frozen=True)
class Fold:
    index: int
    """1-based."""
    families: tuple[str, ...]
    """Held-out groups (sources or families), sorted."""
    real: int
    fake: int
    """Held-out images of each class."""

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "families": list(self.families), "real": self.real, "fake": self.fake}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fold:
        return cls(int(d["index"]), tuple(d["families"]), int(d["real"]), int(d["fake"]))


def group_of(sample: Sample, group_by: str) -> str | None:
    """The group a sample's fold is chosen by: its source or its family."""
    return sample.source if group_by == "source" else sample.family


def family_classes(
    samples: Sequence[Sample], source: str | os.PathLike = "data", group_by: str = "family"
) -> dict[str, tuple[int, int]]:
    """(real, fake) image counts of every group; every sample must name one."""
    missing = sum(1 for s in samples if not group_of(s, group_by))
    if missing == len(samples):
        example = "sd-samples, imagenet-sample" if group_by == "source" else "sdxl, camera-canon"
        raise CvError(
            f"{source}: no '{group_by}' column (leave-{group_by}-out cross-validation needs a manifest .csv naming each "
            f"image's {group_by}, e.g. {example})"
        )
    if missing:
        raise CvError(f"{source}: {missing} of {len(samples)} images have an empty '{group_by}'; every image needs one")
    counts: dict[str, list[int]] = {}
    for s in samples:
        counts.setdefault(group_of(s, group_by), [0, 0])[s.label] += 1
    return {name: (c[0], c[1]) for name, c in counts.items()}


def assign_folds(
    samples: Sequence[Sample], n_folds: int, source: str | os.PathLike = "data", group_by: str = "family"
) -> list[Fold]:
    """Spread the families over ``n_folds`` folds, fakes and reals separately.

    Within each group (fake-only, real-only, and families holding both classes), families
    are taken largest first (ties by name) and each goes to the fold holding the fewest of
    that group's images so far (ties to the lower fold). The result depends only on the
    families and their sizes, not on the order of the rows, and no fold exceeds another by
    more than the group's largest family.

    Sources (``group_by="source"``) differ in size by orders of magnitude, so there a fold's
    load is the sum of the square roots of its sources' sizes: the fold that takes the one
    huge source still takes some small ones, and every fold holds out several pipelines.
    """
    if n_folds < 2:
        raise CvError(f"--folds must be at least 2, got {n_folds}")
    counts = family_classes(samples, source, group_by)
    real_families = sum(1 for r, _ in counts.values() if r)
    fake_families = sum(1 for _, f in counts.values() if f)
    if n_folds > min(real_families, fake_families):
        raise CvError(
            f"{source}: {n_folds} folds need at least {n_folds} real and {n_folds} fake groups ({group_by}); "
            f"found {real_families} real and {fake_families} fake"
        )
    members: list[list[str]] = [[] for _ in range(n_folds)]
    groups = {"fake": [], "real": [], "mixed": []}
    for name, (r, f) in counts.items():
        groups["mixed" if r and f else ("real" if r else "fake")].append(name)
    for names in groups.values():
        load = [0] * n_folds
        for name in sorted(names, key=lambda n: (-sum(counts[n]), n)):
            target = min(range(n_folds), key=lambda i: (load[i], i))
            members[target].append(name)
            load[target] += math.sqrt(sum(counts[name])) if group_by == "source" else sum(counts[name])
    folds = []
    for i, names in enumerate(members, start=1):
        real = sum(counts[n][0] for n in names)
        fake = sum(counts[n][1] for n in names)
        if not real or not fake:  # only possible with mixed families skewing the spread
            raise CvError(f"{source}: fold {i} of {n_folds} would hold out no {'real' if not real else 'fake'} images; use fewer folds")
        folds.append(Fold(i, tuple(sorted(names)), real, fake))
    return folds


def fold_samples(samples: Sequence[Sample], fold: Fold, group_by: str = "family") -> list[Sample]:
    """Every sample, split ``heldout`` when its group is in the fold, else ``train``."""
    held = set(fold.families)
    return [
        Sample(
            os.path.abspath(s.path), s.label, HELDOUT_SPLIT if group_of(s, group_by) in held else TRAIN_SPLIT,
            s.generator, s.family, s.source,
        )
        for s in samples
    ]


def cap_per_group(samples: Sequence[Sample], limit: int, group_by: str) -> list[Sample]:
    """At most ``limit`` samples of each (group, class), chosen by a hash of the path (so the
    same files whatever the order); ``limit`` 0 keeps everything."""
    if not limit:
        return list(samples)
    import hashlib

    def rank(s: Sample) -> bytes:
        return hashlib.sha256(os.path.basename(s.path).encode()).digest()

    kept: set[int] = set()
    groups: dict[tuple[str | None, int], list[Sample]] = {}
    for s in samples:
        groups.setdefault((group_of(s, group_by), s.label), []).append(s)
    for members in groups.values():
        kept.update(id(s) for s in sorted(members, key=rank)[:limit])
    return [s for s in samples if id(s) in kept]


def write_manifest(path: Path, samples: Sequence[Sample]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "split", "generator", "family", "source"])
    for s in samples:
        writer.writerow([s.path, CLASS_NAMES[s.label], s.split, s.generator or "", s.family or "", s.source or ""])
    return atomic.write_text(path, buf.getvalue())


# ---------------------------------------------------------------------------- results


@dataclass
class FoldResult:
    fold: Fold
    metrics: dict[str, float | None]
    """Flat numbers: ``auroc_<condition>``, ``fpr_<condition>`` (reals flagged at the
    threshold), ``tpr_<condition>`` (fakes flagged) and ``auroc_sizes_mean``."""
    real_sources: dict[str, dict[str, Any]]
    """Per held-out real source (or family, with ``group_by="family"``): n and the
    false-positive rate under every condition."""
    fake_families: dict[str, dict[str, Any]]
    """Per held-out fake family: n and the detection rate under every condition."""
    threshold: float
    model: str
    checkpoint: str
    train: tuple[int, int]
    """(real, fake) training images."""
    train_seconds: float
    score_seconds: float
    errors: list[dict[str, str]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    """Every held-out file's P(AI) under each condition (for later fusion or analysis)."""

    @property
    def objective(self) -> float | None:
        return self.metrics.get(OBJECTIVE)

    def to_dict(self, files: bool = True) -> dict[str, Any]:
        d = {
            "fold": self.fold.to_dict(),
            "metrics": self.metrics,
            "real_sources": self.real_sources,
            "fake_families": self.fake_families,
            "threshold": self.threshold,
            "model": self.model,
            "checkpoint": self.checkpoint,
            "train": {"real": self.train[0], "fake": self.train[1]},
            "train_seconds": self.train_seconds,
            "score_seconds": self.score_seconds,
            "errors": self.errors,
        }
        if files:
            d["files"] = self.files
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FoldResult:
        return cls(
            fold=Fold.from_dict(d["fold"]),
            metrics=d["metrics"],
            real_sources=d["real_sources"],
            fake_families=d["fake_families"],
            threshold=float(d["threshold"]),
            model=d["model"],
            checkpoint=d["checkpoint"],
            train=(int(d["train"]["real"]), int(d["train"]["fake"])),
            train_seconds=float(d["train_seconds"]),
            score_seconds=float(d["score_seconds"]),
            errors=d.get("errors", []),
            files=d.get("files", []),
        )


def spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (n-1) of the defined values."""
    xs = [float(v) for v in values if v is not None and not math.isnan(v)]
    return {
        "mean": statistics.fmean(xs) if xs else None,
        "std": statistics.stdev(xs) if len(xs) > 1 else None,
        "n": len(xs),
    }


@dataclass
class CvResult:
    root: Path
    config: TrainConfig
    options: CvOptions
    folds: list[FoldResult]
    seconds: float = 0.0
    """Wall time of this invocation (folds resumed from disk cost nothing)."""

    @property
    def complete(self) -> bool:
        return len(self.folds) == self.options.folds

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        keys = list(dict.fromkeys(k for f in self.folds for k in f.metrics))
        return {k: spread([f.metrics.get(k) for f in self.folds]) for k in keys}

    @property
    def objective(self) -> float | None:
        """Mean over folds of the AUROC averaged over the real sizes (higher is better)."""
        return spread([f.objective for f in self.folds])["mean"]

    @property
    def errors(self) -> list[dict[str, str]]:
        return [e for f in self.folds for e in f.errors]

    def calibration(self) -> dict[str, Any] | None:
        return calibration(self.folds, self.options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "glass_version": __version__,
            "name": self.root.name,
            "data": self.config.data,
            "complete": self.complete,
            "objective": {"name": OBJECTIVE, "value": self.objective},
            "options": self.options.plan(),
            "conditions": [{"key": c.key, "label": c.label, "reals_only": c.reals_only} for c in conditions(self.options)],
            "size_keys": size_keys(self.options),
            "config": self.config.to_dict(),
            "summary": self.summary(),
            "folds": [f.to_dict(files=False) for f in self.folds],
            "calibration": self.calibration(),
            "seconds": self.seconds,
        }


# ---------------------------------------------------------------------------- scoring


def _rate(scores: Sequence[float], threshold: float) -> float | None:
    return sum(p >= threshold for p in scores) / len(scores) if scores else None


def fold_numbers(
    files: Sequence[dict[str, Any]], conds: Sequence[Condition], sizes: Sequence[str], threshold: float
) -> tuple[dict[str, float | None], dict[str, dict], dict[str, dict]]:
    """Fold metrics, per-real-source FPR and per-fake-family detection from per-file scores
    (``files``: dicts with label 0/1, family and ``p_ai`` per condition key)."""
    from glass_cli.evaluation.metrics import auroc

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


def _size_scores(files: Sequence[dict[str, Any]], sizes: Sequence[str], label: int) -> list[float]:
    return [f["p_ai"][k] for f in files if f["label"] == label for k in sizes if f["p_ai"].get(k) is not None]


def calibration(folds: Sequence[FoldResult], options: CvOptions) -> dict[str, Any] | None:
    """A decision threshold chosen on unseen sources, and what it does on them.

    ``threshold``: the lowest threshold that flags at most ``options.target_fpr`` of every
    held-out real of every fold, each counted at every real size (as stored and shrunk);
    the threshold to ship with a model trained by the same recipe on all the data.

    ``nested``: the honest check of that procedure. Fold i gets the threshold computed from
    the other folds' reals only, and its held-out numbers are computed again at it (share of
    reals flagged per condition and per source, share of fakes detected): the threshold never
    saw the sources it is judged on. None when fewer than two folds have scores.
    """
    from glass_cli.evaluation.evaluate import threshold_at_fpr

    scored = [f for f in folds if f.files]
    if len(scored) < 2:
        return None
    conds, sizes = conditions(options), size_keys(options)
    pooled = threshold_at_fpr([p for f in scored for p in _size_scores(f.files, sizes, 0)], options.target_fpr)
    nested = []
    for fold in scored:
        others = [p for g in scored if g is not fold for p in _size_scores(g.files, sizes, 0)]
        thr = threshold_at_fpr(others, options.target_fpr)
        metrics, real_sources, fake_families = fold_numbers(fold.files, conds, sizes, thr)
        nested.append({
            "fold": fold.fold.index, "threshold": thr,
            "metrics": {k: v for k, v in metrics.items() if k.startswith(("fpr_", "tpr_"))},
            "real_sources": real_sources, "fake_families": fake_families,
        })
    keys = list(dict.fromkeys(k for n in nested for k in n["metrics"]))
    def worst(min_n: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in conds:
            rows = [
                (src[c.key], name, src["n"], n["fold"]) for n in nested for name, src in n["real_sources"].items()
                if src.get(c.key) is not None and src["n"] >= min_n
            ]
            if rows:
                rate, name, count, fold_index = max(rows, key=lambda r: (r[0], r[2]))
                out[c.key] = {"source": name, "n": count, "fold": fold_index, "fpr": rate}
        return out
    return {
        "target_fpr": options.target_fpr,
        "threshold": pooled,
        "reals": sum(len(_size_scores(f.files, sizes, 0)) for f in scored),
        "complete": len(scored) == options.folds,
        "nested": nested,
        "nested_summary": {k: spread([n["metrics"].get(k) for n in nested]) for k in keys},
        "worst_source": worst(1),
        "worst_source_min_n": SOURCE_MIN_N,
        "worst_source_sized": worst(SOURCE_MIN_N),
    }


def score_fold(
    weights: Path, heldout: Sequence[Sample], options: CvOptions, *, console=None, label: str = "scoring", crops: int | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, str]], Any]:
    """Score the held-out samples under every condition with the checkpoint ``weights``:
    (per-file records, unreadable files, the model config). ``crops`` runs a GLASS model
    with that K at inference instead of the K it was trained with."""
    from glass_cli.evaluation.evaluate import Perturbation, predict
    from glass_cli.inference.engines import TorchEngine

    engine = TorchEngine.from_checkpoint(weights, device=options.device)
    if crops is not None:
        engine.config = engine.config.replace(num_crops=crops)
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
    with _progress(console) as progress:
        task = progress.add_task(label, total=sum(len(part) for _, part in todo), info="") if progress else None
        for c, part in todo:
            if progress:
                progress.update(task, info=c.label)
            for r in predict(
                part,
                engine,
                perturb=Perturbation(**c.perturb),
                batch_size=options.batch_size,
                workers=options.workers,
                on_progress=(lambda n: progress.advance(task, n)) if progress else None,
            ):
                if r.error:
                    errors.setdefault(r.path, r.error)
                else:
                    files[r.path]["p_ai"][c.key] = r.p_ai
    error_list = [{"path": p, "error": e} for p, e in sorted(errors.items())]
    return [f for f in files.values() if f["p_ai"]], error_list, engine.config


def _progress(console):
    if console is None or not console.is_terminal:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
    )


# ---------------------------------------------------------------------------- the run


def cv_root(config: TrainConfig) -> Path:
    return Path(config.runs_dir) / "cv" / config.name


def default_name(config: TrainConfig, options: CvOptions) -> str:
    """Stable, so that repeating a command resumes it."""
    crops = f"-k{config.num_crops}" if config.arch == "glass" else ""
    return f"{config.arch}-{config.global_backbone}{crops}-{options.folds}fold"


def _plan(config: TrainConfig, options: CvOptions, folds: Sequence[Fold]) -> dict[str, Any]:
    recipe = {k: v for k, v in config.to_dict().items() if k not in RUNTIME_KEYS and k not in ("name", "runs_dir", "data")}
    return {
        "format": FORMAT,
        "data": os.path.abspath(config.data),
        "options": options.plan(),
        "config": recipe,
        "folds": [f.to_dict() for f in folds],
    }


def _comparable_recipe(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A saved recipe as this version of glass would write it: an option that glass has
    since added is taken at its default (the run could not have used it), and an option
    glass has since removed is dropped when it was off (0, empty or false), since leaving it
    out changes nothing. A removed option that was on stays, so the plans differ."""
    defaults = TrainConfig().to_dict()
    out = {k: v for k, v in saved.items() if k in current or v not in (0, 0.0, "", False, None)}
    for key in current:
        if key not in saved and key in defaults:
            out[key] = defaults[key]
    return out


def _check_plan(root: Path, plan: dict[str, Any]) -> None:
    path = root / PLAN_FILE
    if not path.is_file():
        if root.exists() and any(root.iterdir()):
            raise CvError(f"{root}: folder exists without {PLAN_FILE}; choose another --name")
        atomic.write_text(path, json.dumps(plan, indent=2) + "\n")
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CvError(f"{path}: cannot read the cross-validation plan ({exc})") from None
    for section in ("data", "options", "config", "folds"):
        old, new = saved.get(section), plan[section]
        if section == "config" and isinstance(old, dict):
            old = _comparable_recipe(old, new)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            key = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
            what = f"{key}={old.get(key)!r}; this run asks for {new.get(key)!r}"
        elif section == "folds":
            what = "another fold assignment (the data's families changed)"
        else:
            what = f"{old!r}; this run asks for {new!r}"
        raise CvError(f"{root}: this cross-validation was started with {section} {what}; choose another --name to start a new one")


def run_cv(
    config: TrainConfig,
    options: CvOptions | None = None,
    *,
    console=None,
    on_fold: Callable[[FoldResult], None] | None = None,
) -> CvResult:
    """Train and score every fold (resuming what an earlier call finished); returns the
    folds' numbers. ``config`` is the training recipe (``data`` must name a manifest with a
    family column; ``name`` the cross-validation, default from the recipe); ``on_fold`` is
    called with each fold's result in order, resumed ones included, and may raise to stop
    (e.g. an Optuna pruner)."""
    start = time.perf_counter()
    options = options or CvOptions()
    if not config.data:
        raise CvError("no data given (a manifest .csv with a family column)")
    samples = read_dataset(config.data)
    folds = assign_folds(samples, options.folds, config.data, options.group_by)
    if not config.name:
        config = config.replace(name=default_name(config, options))
    root = cv_root(config)
    _check_plan(root, _plan(config, options, folds))
    say = (lambda text: console.print(text, highlight=False, soft_wrap=True, markup=False)) if console is not None and not config.quiet else (lambda text: None)
    result = CvResult(root, config, options, [])
    for fold in folds:
        run = root / f"fold-{fold.index}"
        done_file = run / FOLD_FILE
        if done_file.is_file():
            try:
                fr = FoldResult.from_dict(json.loads(done_file.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CvError(f"{done_file}: unreadable fold result ({exc}); delete it to score the fold again") from None
            say(f"fold {fold.index}/{len(folds)}: already scored ({done_file})")
        else:
            fr = _run_fold(config, options, fold, samples, root, console, say)
            atomic.write_text(done_file, json.dumps(fr.to_dict(), indent=2) + "\n")
        result.folds.append(fr)
        result.seconds = time.perf_counter() - start
        write_outputs(result)
        if on_fold is not None:
            on_fold(fr)
    result.seconds = time.perf_counter() - start
    write_outputs(result)
    return result


def _run_fold(
    config: TrainConfig, options: CvOptions, fold: Fold, samples: Sequence[Sample], root: Path, console, say
) -> FoldResult:
    """Train (or resume) the fold's run, then score its held-out groups."""
    from glass_cli.training.trainer import Trainer, run_state

    n = options.folds
    labelled = fold_samples(samples, fold, options.group_by)
    manifest = write_manifest(root / f"fold-{fold.index}.csv", labelled)
    fold_config = config.replace(
        data=str(manifest), name=f"fold-{fold.index}", runs_dir=str(root), train_split=TRAIN_SPLIT, val_split=HELDOUT_SPLIT
    )
    run = root / fold_config.name
    train = stratified_slice(select(labelled, TRAIN_SPLIT), config.limit_train or None, config.seed)
    real, fake = class_counts(train)
    say(
        f"fold {fold.index}/{n}: holding out {len(fold.families)} {options.group_by} groups ({fold.real} real, {fold.fake} fake images): "
        f"{', '.join(fold.families)}; training on {real} real and {fake} fake"
    )
    state = run_state(run)
    if state is None and run.exists():  # killed before its first epoch ended: nothing to keep
        say(f"fold {fold.index}/{n}: restarting {run} (it never finished an epoch)")
        shutil.rmtree(run)
    if state is None or state["epoch"] < config.epochs:
        trainer = Trainer(fold_config, resume=state is not None, console=console)
        try:
            trainer.fit()
        finally:
            trainer.close()
        del trainer
        state = run_state(run)
    train_seconds = sum(float(h["seconds"]) for h in state["history"])
    t0 = time.perf_counter()
    weights = run / "last.safetensors"
    heldout = cap_per_group(select(labelled, HELDOUT_SPLIT), options.heldout_per_source, options.group_by)
    files, errors, model = score_fold(weights, heldout, options, console=console, label=f"fold {fold.index}/{n} scoring")
    metrics, real_sources, fake_families = fold_numbers(files, conditions(options), size_keys(options), model.threshold)
    fr = FoldResult(
        fold=fold, metrics=metrics, real_sources=real_sources, fake_families=fake_families, threshold=model.threshold,
        model=model.describe(), checkpoint=str(weights), train=(real, fake), train_seconds=train_seconds,
        score_seconds=time.perf_counter() - t0, errors=errors, files=files,
    )
    auc = ", ".join(f"{k} {_fmt(metrics[f'auroc_{k}'])}" for k in size_keys(options))
    say(f"fold {fold.index}/{n}: AUROC {auc}; {len(errors)} unreadable" if errors else f"fold {fold.index}/{n}: AUROC {auc}")
    return fr


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def write_outputs(result: CvResult) -> None:
    """cv.json and cv.png, atomically."""
    from glass_cli.outputs.plots import cv_figure

    document = result.to_dict()
    atomic.write_text(result.root / RESULT_FILE, json.dumps(document, indent=2) + "\n")
    atomic.write_bytes(result.root / FIGURE_FILE, cv_figure(document))


# ---------------------------------------------------------------------------- fusion


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def load_result(root: str | os.PathLike, target_fpr: float = 0.05) -> CvResult:
    """A cross-validation as written to disk (``plan.json`` and each scored fold's
    ``heldout.json``), per-file scores included."""
    root = Path(root)
    try:
        plan = json.loads((root / PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CvError(f"{root / PLAN_FILE}: cannot read ({exc})") from None
    o = plan["options"]
    options = CvOptions.from_plan(o, target_fpr)
    current = TrainConfig().to_dict()
    recipe = _comparable_recipe(plan["config"], {k: v for k, v in current.items() if k not in RUNTIME_KEYS})
    try:
        config = TrainConfig.from_dict({**recipe, "data": plan["data"], "name": root.name, "runs_dir": str(root.parent.parent)})
    except ValueError as exc:
        raise CvError(f"{root / PLAN_FILE}: {exc} (made by another version of glass)") from None
    folds = []
    for f in plan["folds"]:
        held = root / f"fold-{f['index']}" / FOLD_FILE
        if held.is_file():
            try:
                folds.append(FoldResult.from_dict(json.loads(held.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CvError(f"{held}: unreadable fold result ({exc})") from None
    return CvResult(root, config, options, folds)


def fuse(
    roots: Sequence[str | os.PathLike], weights: Sequence[float] | None = None, threshold: float = 0.5, target_fpr: float = 0.05
) -> dict[str, Any]:
    """Score fusion of finished cross-validations of the same data and folds: each held-out
    file's P(AI) becomes the sigmoid of the weighted mean of the models' logits (equal
    weights by default), and every fold's numbers are computed again from the fused scores.

    Returns ``{"names", "weights", "threshold", "folds": [fold metrics...], "summary",
    "objective"}`` in the layout of ``cv.json``'s summary."""
    if len(roots) < 2:
        raise CvError("fusion needs at least two cross-validations")
    weights = list(weights) if weights is not None else [1.0] * len(roots)
    if len(weights) != len(roots) or any(w < 0 for w in weights) or not sum(weights):
        raise CvError(f"need one non-negative weight per cross-validation, not all zero; got {weights}")
    docs = []
    for root in roots:
        path = Path(root) / RESULT_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CvError(f"{path}: cannot read ({exc})") from None
        if not doc.get("complete"):
            raise CvError(f"{path}: the cross-validation is not finished")
        docs.append(doc)
    first = docs[0]
    for root, doc in zip(roots[1:], docs[1:]):
        if doc["options"] != first["options"] or [f["fold"] for f in doc["folds"]] != [f["fold"] for f in first["folds"]]:
            raise CvError(f"{root}: other folds or scoring options than {roots[0]}; fusion needs the same")
    options = CvOptions.from_plan(first["options"], target_fpr)
    conds, sizes = conditions(options), size_keys(options)
    total = float(sum(weights))
    fold_metrics = []
    fused: list[FoldResult] = []
    for index in range(len(first["folds"])):
        per_model = []
        for root in roots:
            held = Path(root) / f"fold-{index + 1}" / FOLD_FILE
            try:
                per_model.append({f["path"]: f for f in json.loads(held.read_text(encoding="utf-8"))["files"]})
            except (OSError, ValueError, KeyError) as exc:
                raise CvError(f"{held}: cannot read the fold's scores ({exc})") from None
        files = []
        for path, f in per_model[0].items():
            if not all(path in m for m in per_model):
                continue  # unreadable for one of the models: left out, as in the folds themselves
            p_ai = {}
            for key in f["p_ai"]:
                if all(key in m[path]["p_ai"] for m in per_model):
                    z = sum(w * _logit(m[path]["p_ai"][key]) for w, m in zip(weights, per_model)) / total
                    p_ai[key] = 1.0 / (1.0 + math.exp(-z))
            files.append({**f, "p_ai": p_ai})
        metrics, real_sources, fake_families = fold_numbers(files, conds, sizes, threshold)
        fold_metrics.append({"metrics": metrics, "real_sources": real_sources})
        fused.append(FoldResult(
            fold=Fold.from_dict(first["folds"][index]["fold"]), metrics=metrics, real_sources=real_sources,
            fake_families=fake_families, threshold=threshold, model="fusion", checkpoint="", train=(0, 0),
            train_seconds=0.0, score_seconds=0.0, files=files,
        ))
    keys = list(dict.fromkeys(k for f in fold_metrics for k in f["metrics"]))
    summary = {k: spread([f["metrics"].get(k) for f in fold_metrics]) for k in keys}
    return {
        "names": [Path(r).name for r in roots],
        "weights": weights,
        "threshold": threshold,
        "folds": fold_metrics,
        "summary": summary,
        "objective": summary[OBJECTIVE]["mean"],
        "calibration": calibration(fused, options),
    }


# ---------------------------------------------------------------------------- calibrated copy


def calibrate_checkpoint(result: CvResult, weights: str | os.PathLike, out: str | os.PathLike | None = None) -> tuple[Path, dict[str, Any]]:
    """Save a copy of ``weights`` whose threshold is the cross-validation's leave-source-out
    threshold (``calibration(...)["threshold"]``), with how it was chosen in the model's
    ``calibration`` field. ``weights`` should be a model trained by the same recipe on all
    the data: its architecture must match the folds' models. Returns (path, calibration)."""
    from glass_cli.evaluation.evaluate import save_calibrated
    from glass_cli.models import checkpoint

    cal = result.calibration()
    if not result.complete or cal is None:
        raise CvError(f"{result.root}: --calibrate needs every fold scored ({len(result.folds)} of {result.options.folds} are)")
    model, config = checkpoint.load(weights)
    fold_models = sorted({f.model for f in result.folds})
    if fold_models != [config.describe()]:
        raise CvError(f"{weights}: model is {config.describe()}, the cross-validation trained {', '.join(fold_models)}; calibrate a model of the same recipe")
    worst = cal["worst_source_sized"].get("native") or {}
    record = {
        "method": f"leave-{result.options.group_by}-out cross-validation",
        "cv": str(result.root),
        "data": result.config.data,
        "folds": result.options.folds,
        "target_fpr": cal["target_fpr"],
        "threshold": cal["threshold"],
        "reals": cal["reals"],
        "nested_fpr_native": cal["nested_summary"].get("fpr_native"),
        "nested_tpr_native": cal["nested_summary"].get("tpr_native"),
        "nested_worst_source_native": worst,
        "source": str(weights),
    }
    return save_calibrated(model, config, record, weights, out), record
