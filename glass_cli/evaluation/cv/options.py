"""What a cross-validation is asked to do (``CvOptions``), its error type and its file names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glass_cli.errors import GlassError

FORMAT = "glass-cv/1"
PLAN_FILE = "plan.json"
RESULT_FILE = "cv.json"
FIGURE_FILE = "cv.png"
FOLD_FILE = "heldout.json"
TRAIN_SPLIT = "train"
HELDOUT_SPLIT = "heldout"
GROUP_BY = ("source", "family")
"""Manifest columns a fold can hold out whole."""
SOURCE_MIN_N = 5
"""Real sources with fewer held-out images than this are left out of ``worst_source_sized``
(one photo from one camera makes a 0% or 100% false-positive rate)."""
OBJECTIVE = "auroc_sizes_mean"
"""The fold number that ``CvResult.objective`` averages: the AUROC of the held-out fakes
against the held-out reals, averaged over the real sizes (as stored and each long side)."""


class CvError(GlassError, ValueError):
    """A cross-validation that cannot run as asked; one line naming the file and the reason."""


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
    only_folds: tuple[int, ...] = ()
    """Train and score only these folds (1-based) in this call; the others are reported if an
    earlier call, here or on another machine, scored them, and left for later otherwise. Empty:
    every fold. Not part of the plan: it changes which folds run now, never their results."""

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
        bad = [i for i in self.only_folds if not 1 <= i <= self.folds]
        if bad:
            raise CvError(f"--only-fold {bad[0]}: the folds are numbered 1 to {self.folds}")
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
        """The options a cross-validation's ``plan.json`` records in its ``options`` section."""
        return cls(
            folds=o["folds"], real_sizes=tuple(o["real_sizes"]), jpeg=o["jpeg"], downscale=o["downscale"], target_fpr=target_fpr,
            group_by=o["group_by"], webp=o["webp"], heldout_per_source=o["heldout_per_source"],
        )

    def plan(self) -> dict[str, Any]:
        """The options that change the results (a resumed cross-validation must keep them)."""
        return {
            "folds": self.folds, "real_sizes": list(self.real_sizes), "jpeg": self.jpeg, "downscale": self.downscale,
            "group_by": self.group_by, "webp": self.webp, "heldout_per_source": self.heldout_per_source,
        }
