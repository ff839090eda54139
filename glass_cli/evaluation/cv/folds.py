"""Folds that hold out whole groups: which group goes where, each fold's manifest, the
held-out subset that gets scored."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glass_cli.data.datasets import CLASS_NAMES, Sample
from glass_cli.evaluation.cv.options import HELDOUT_SPLIT, OBJECTIVE, TRAIN_SPLIT, CvError
from glass_cli.io import atomic


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
    """Every held-out file's P(AI) under each condition (for analysis)."""

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
