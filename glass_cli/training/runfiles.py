"""A run's folder and the per-epoch record it keeps: ``metrics.csv``, ``curves.png`` and the
line printed after each epoch."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from glass_cli.config import TrainConfig
from glass_cli.io import atomic

METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"


@dataclass
class EpochResult:
    epoch: int
    """1-based number of the epoch just finished."""
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    val_balanced_acc: float | None
    val_auroc: float | None
    val_ece: float | None
    lr: dict[str, float]
    seconds: float
    score: float
    """The validation metric that selects the best checkpoint (higher is better)."""
    best: bool = False

    def to_row(self) -> dict:
        row = {k: v for k, v in asdict(self).items() if k not in ("lr", "score")}
        row.update({f"lr_{k}": v for k, v in self.lr.items()})
        return row


def run_dir(config: TrainConfig) -> Path:
    return Path(config.runs_dir) / config.name


def default_name(config: TrainConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.arch}-{config.global_backbone}-{stamp}"


def write_metrics(folder: Path, history: list[EpochResult], title: str) -> None:
    """``metrics.csv`` (one row per finished epoch) and ``curves.png``, atomically."""
    rows = [r.to_row() for r in history]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic.write_text(folder / METRICS_FILE, buf.getvalue())
    from glass_cli.outputs.plots import training_curves

    atomic.write_bytes(folder / CURVES_FILE, training_curves(history, title=title))


def epoch_line(r: EpochResult) -> str:
    def f(x, spec=".4f"):
        return "n/a" if x is None else format(x, spec)

    return (
        f"epoch {r.epoch}: train loss {r.train_loss:.4f} acc {r.train_acc:.3f} | val loss {r.val_loss:.4f} "
        f"acc {r.val_acc:.3f} auroc {f(r.val_auroc)} ece {f(r.val_ece)} | {r.seconds:.1f}s" + ("  (best)" if r.best else "")
    )
