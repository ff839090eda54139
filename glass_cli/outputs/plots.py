"""Figures, rendered off-screen (matplotlib's Agg backend) to PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence


def training_curves(history: Sequence, title: str = "") -> bytes:
    """Loss, accuracy, AUROC and calibration error per epoch, as a 2x2 PNG.

    ``history`` holds objects with the fields of ``train.EpochResult``.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r.epoch for r in history]

    def series(name):
        return [float("nan") if getattr(r, name) is None else getattr(r, name) for r in history]

    fig = Figure(figsize=(10, 7), dpi=100)
    axes = fig.subplots(2, 2)
    panels = [
        (axes[0, 0], "loss", [("train_loss", "train"), ("val_loss", "val")]),
        (axes[0, 1], "accuracy", [("train_acc", "train"), ("val_acc", "val"), ("val_balanced_acc", "val balanced")]),
        (axes[1, 0], "val AUROC", [("val_auroc", "val")]),
        (axes[1, 1], "val ECE (15 bins)", [("val_ece", "val")]),
    ]
    for ax, label, lines in panels:
        for key, name in lines:
            ax.plot(epochs, series(key), marker="o", label=name)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if len(lines) > 1:
            ax.legend()
    for r in history:
        if r.best:
            axes[0, 1].axvline(r.epoch, color="grey", alpha=0.25, linewidth=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _axes_png(ax) -> bytes:
    fig = ax.figure
    fig.set_size_inches(9, 5.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def study_history(study, target_name: str) -> bytes:
    """Optuna's optimisation-history plot (every completed trial's value and the best so far)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from optuna.visualization.matplotlib import plot_optimization_history

    return _axes_png(plot_optimization_history(study, target_name=target_name))


def study_importance(study, target_name: str) -> bytes:
    """Optuna's hyperparameter-importance plot; needs at least two completed trials."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from optuna.visualization.matplotlib import plot_param_importances

    return _axes_png(plot_param_importances(study, target_name=target_name))

def cv_figure(document: dict) -> bytes:
    """Per-fold AUROC under each scoring condition of a cross-validation (``cv.CvResult.to_dict()``):
    one bar per fold, the mean over folds as a black tick."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import numpy as np
    from matplotlib.figure import Figure

    conds = document["conditions"]
    folds = document["folds"]
    fig = Figure(figsize=(max(6.0, 1.6 * len(conds) + 2), 4.5), dpi=100)
    ax = fig.subplots()
    x = np.arange(len(conds))
    width = 0.8 / max(len(folds), 1)
    for i, fold in enumerate(folds):
        values = [fold["metrics"].get(f"auroc_{c['key']}") for c in conds]
        heights = [np.nan if v is None else v for v in values]
        ax.bar(x - 0.4 + width * (i + 0.5), heights, width, label=f"fold {fold['fold']['index']}", alpha=0.8)
    means = [document["summary"].get(f"auroc_{c['key']}", {}).get("mean") for c in conds]
    ax.scatter(x, [np.nan if m is None else m for m in means], marker="_", s=900, color="black", label="mean", zorder=3)
    ax.set_xticks(x, [("reals " if c["reals_only"] else "") + c["label"] for c in conds], rotation=15)
    ax.set_ylabel("AUROC (held-out fakes vs held-out reals)")
    ax.set_ylim(0.0, 1.02)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    ax.set_title(f"{document['name']}: leave-{document['options'].get('group_by', 'family')}-out AUROC per fold")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
