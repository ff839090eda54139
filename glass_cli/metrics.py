"""Detection metrics over P(AI) scores: thin wrappers over scikit-learn, plus calibration
error and per-group breakdowns.

Labels are 0 (real) and 1 (AI-generated); scores are P(AI). Metrics that a set cannot
define (AUROC of a one-class set) come back as ``None``, never as a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ECE_BINS = 15


def _arrays(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be equal-length vectors, got {y.shape} and {p.shape}")
    return y, p


def expected_calibration_error(labels: Sequence[int], scores: Sequence[float], bins: int = ECE_BINS) -> float | None:
    """Top-label ECE: predictions binned by confidence max(p, 1-p) into ``bins`` equal-width
    bins over [0, 1]; the size-weighted mean of |accuracy - confidence| per bin."""
    y, p = _arrays(labels, scores)
    if y.size == 0:
        return None
    pred = (p >= 0.5).astype(np.int64)
    conf = np.where(pred == 1, p, 1.0 - p)
    correct = (pred == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def tpr_at_fpr(labels: Sequence[int], scores: Sequence[float], max_fpr: float) -> float | None:
    """The highest true-positive rate any threshold reaches while the false-positive rate
    stays at or below ``max_fpr``."""
    from sklearn.metrics import roc_curve

    y, p = _arrays(labels, scores)
    if y.min(initial=1) == y.max(initial=0) or y.size == 0:
        return None
    fpr, tpr, _ = roc_curve(y, p)
    ok = fpr <= max_fpr + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    y, p = _arrays(labels, scores)
    if y.size == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, p))


def binary_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict[str, float | int | None]:
    """accuracy, balanced accuracy, AUROC, average precision, ECE, TPR at 1% / 5% FPR, and
    the confusion counts at ``threshold``."""
    from sklearn.metrics import accuracy_score, average_precision_score, balanced_accuracy_score

    y, p = _arrays(labels, scores)
    out: dict[str, float | int | None] = {"n": int(y.size), "n_real": int((y == 0).sum()), "n_ai": int((y == 1).sum())}
    if y.size == 0:
        return out | dict.fromkeys(
            ("accuracy", "balanced_accuracy", "auroc", "average_precision", "ece", "tpr_at_fpr_1", "tpr_at_fpr_5", "tpr", "fpr")
        )
    pred = (p >= threshold).astype(np.int64)
    both = y.min() != y.max()
    out["accuracy"] = float(accuracy_score(y, pred))
    out["balanced_accuracy"] = float(balanced_accuracy_score(y, pred)) if both else None
    out["auroc"] = auroc(y, p)
    out["average_precision"] = float(average_precision_score(y, p)) if both else None
    out["ece"] = expected_calibration_error(y, p)
    out["tpr_at_fpr_1"] = tpr_at_fpr(y, p, 0.01)
    out["tpr_at_fpr_5"] = tpr_at_fpr(y, p, 0.05)
    out["tpr"] = float(pred[y == 1].mean()) if (y == 1).any() else None
    out["fpr"] = float(pred[y == 0].mean()) if (y == 0).any() else None
    return out


def group_metrics(
    labels: Sequence[int],
    scores: Sequence[float],
    groups: Sequence[str | None],
    threshold: float = 0.5,
) -> dict[str, dict[str, float | int | None]]:
    """Per-group results. A group of one class (a generator's fakes, a camera make's reals)
    gets its accuracy at ``threshold``, its mean score, and the AUROC of its images against
    every image of the other class; a mixed group gets its own AUROC."""
    y, p = _arrays(labels, scores)
    names = np.asarray([g if g else "(none)" for g in groups], dtype=object)
    out = {}
    for name in sorted(set(names.tolist())):
        mask = names == name
        gy, gp = y[mask], p[mask]
        if gy.min() == gy.max():
            other = y != gy[0]
            vs_y = np.concatenate([gy, y[other]])
            vs_p = np.concatenate([gp, p[other]])
        else:
            vs_y, vs_p = gy, gp
        out[name] = {
            "n": int(mask.sum()),
            "label": "ai" if gy.min() == 1 else ("real" if gy.max() == 0 else "mixed"),
            "accuracy": float(((gp >= threshold).astype(np.int64) == gy).mean()),
            "mean_p_ai": float(gp.mean()),
            "auroc": auroc(vs_y, vs_p),
        }
    return out
