"""What a study is asked to do (``TuneOptions``), what it found (``TuneResult``), and the
small helpers both the study and its trials use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glass_cli.errors import GlassError, one_line
from glass_cli.tuning.space import Space

SAMPLER_SEED = 606
TUNE_METRICS = ("accuracy", "auroc", "cv")
METRIC_NAMES = {"accuracy": "val accuracy", "auroc": "val AUROC", "cv": "cross-validated AUROC"}
"""``cv``: each trial is a leave-source-out cross-validation (``glass cv``) and its value the
mean over folds of the held-out AUROC averaged over the real sizes; the pruner's steps are
folds, not epochs."""
KEEP_IN_TRIAL_RUN = ("config.json", "metrics.csv", "curves.png")
"""What a finished trial's run folder keeps (plus best.* with keep_checkpoints)."""


class TuneError(GlassError):
    """A study that cannot start or continue; one line naming the file and the reason."""


@dataclass
class TuneOptions:
    data: str
    backbone: str = "tf_efficientnet_lite0"
    arch: str = "glass"
    n_trials: int = 100
    timeout: float | None = None
    """Seconds after which this process starts no new trial (the running one finishes)."""
    study: str = ""
    """Default: ARCH-BACKBONE."""
    storage: str = ""
    """Optuna RDB URL. Default: sqlite:///RUNS_DIR/tune/STUDY.db."""
    space: Space | None = None
    """Default: the paper's space for ``arch``."""
    metric: str = "accuracy"
    epochs: int = 25
    """Epochs per trial: the pruner's maximum resource."""
    min_epochs: int = 0
    """Hyperband's minimum resource. 0: epochs // 5 (5 of 25, as in the paper), at least 1."""
    runs_dir: str = "runs"
    sampler_seed: int = SAMPLER_SEED
    stale_after: int = 120
    keep_checkpoints: bool = False
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig options fixed for every trial (removed from the space when it has them)."""
    cv_folds: int = 3
    """Folds of each trial's cross-validation (metric ``cv``)."""
    cv_real_sizes: tuple[int, ...] = (1024, 512)
    """Long sides at which each fold's held-out reals are also scored (metric ``cv``)."""
    cv_group_by: str = "source"
    """What each cross-validation fold holds out whole (``glass cv --group-by``)."""

    @property
    def study_name(self) -> str:
        return self.study or f"{self.arch}-{self.backbone}"

    @property
    def pruner_min(self) -> int:
        if self.metric == "cv":
            return 1
        return self.min_epochs or max(1, self.epochs // 5)

    @property
    def pruner_max(self) -> int:
        """The pruner's maximum resource: epochs, or folds for metric ``cv``."""
        return self.cv_folds if self.metric == "cv" else self.epochs

    @property
    def study_dir(self) -> Path:
        return Path(self.runs_dir) / "tune" / self.study_name

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.runs_dir) / 'tune' / (self.study_name + '.db')}"


@dataclass
class TrialRow:
    number: int
    state: str
    """complete, pruned, failed, interrupted, running or waiting."""
    value: float | None
    best_epoch: int | None
    epochs_run: int
    seconds: float | None
    params: dict[str, Any]
    retry_of: int | None
    worker: str
    reason: str


@dataclass
class TuneResult:
    study: str
    storage: str
    rows: list[TrialRow]
    stop_reason: str
    ran_here: int
    best: TrialRow | None = None
    best_config: Path | None = None
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gave_up: bool = False

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.rows)


def trial_error(exc: BaseException) -> str:
    """Why a trial failed, on one line: glass's own message, or the exception's type and text."""
    return one_line(exc, name=not isinstance(exc, GlassError))


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def describe_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items())
