"""The leave-source-out decision threshold: chosen on the held-out reals of every fold,
checked fold by fold at the threshold of the other folds, and written into a model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glass_cli.evaluation.cv.options import SOURCE_MIN_N, CvError, CvOptions
from glass_cli.evaluation.cv.scoring import conditions, fold_numbers, size_keys, spread

if TYPE_CHECKING:
    from glass_cli.evaluation.cv.run import CvResult, FoldResult


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
