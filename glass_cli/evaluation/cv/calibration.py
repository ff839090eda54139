"""The leave-source-out decision threshold: chosen on the held-out reals of every fold,
checked fold by fold at the threshold of the other folds, and written into a model."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glass_cli.evaluation.cv.folds import FoldResult
from glass_cli.evaluation.cv.options import SOURCE_MIN_N, CvError, CvOptions
from glass_cli.evaluation.cv.scoring import conditions, fold_numbers, size_keys, spread
from glass_cli.io import digest


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


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """A cross-validation's saved results (its cv.json, or a copy kept elsewhere), checked to
    be one: glass cv's format, and folds to report."""
    from glass_cli.evaluation.cv.options import FORMAT

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CvError(f"{path}: cannot read the cross-validation record ({reason})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("folds"), list) or "conditions" not in doc:
        raise CvError(f"{path}: not a glass cv record (cv.json, format {FORMAT})")
    return doc


def calibrate_from_record(record: str | os.PathLike, weights: str | os.PathLike, out: str | os.PathLike | None = None,
                          doc: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """``CvResult.calibrate`` from a saved cross-validation record (``read_record``) instead
    of its fold runs, which a finished cross-validation no longer needs: the record keeps the
    threshold its folds' held-out reals gave. Stricter than from the runs, since the record
    cannot be re-scored: it must be complete, the folds' models must match ``weights``, and
    when ``weights`` lies in a training run (config.json beside it) that run's recipe must be
    the record's (``config.recipe_of`` without validation). ``doc``: the record already read by
    ``read_record``, to spare reading it again."""
    from glass_cli.config import recipe_of

    doc = doc if doc is not None else read_record(record)
    cal, options = doc.get("calibration"), doc.get("options") or {}
    if not doc.get("complete") or not cal or not cal.get("complete"):
        raise CvError(f"{record}: the cross-validation it records is not complete; --calibrate needs every fold scored")
    run_config = Path(weights).parent / "config.json"
    if run_config.is_file() and isinstance(doc.get("config"), dict):
        try:
            trained = recipe_of(json.loads(run_config.read_text(encoding="utf-8")), validation=False)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CvError(f"{run_config}: cannot read the training run's config ({exc})") from None
        recorded = recipe_of(doc["config"], validation=False)
        differ = [k for k in sorted(set(trained) | set(recorded)) if trained.get(k) != recorded.get(k)]
        if differ:
            k = differ[0]
            raise CvError(f"{weights}: trained with {k}={trained.get(k)!r}, the cross-validation with {k}={recorded.get(k)!r}; "
                          "calibrate a model of the same recipe")
    models = sorted({str(f.get("model")) for f in doc["folds"]})
    return save_threshold(cal, models, options.get("group_by", "source"), options.get("folds"), doc.get("data"), str(record),
                          weights, out)


def save_threshold(cal: dict[str, Any], fold_models: list[str], group_by: str, folds: int | None, data: Any, cv: str,
                   weights: str | os.PathLike, out: str | os.PathLike | None) -> tuple[Path, dict[str, Any]]:
    """A copy of ``weights`` with the threshold of calibration ``cal`` and a record of how it
    was chosen; refused when ``weights`` is not the model the folds trained."""
    from glass_cli.evaluation.evaluate import save_calibrated
    from glass_cli.models import checkpoint

    model, config = checkpoint.load(weights)
    if fold_models != [config.describe()]:
        raise CvError(f"{weights}: model is {config.describe()}, the cross-validation trained {', '.join(fold_models)}; calibrate a model of the same recipe")
    worst = cal["worst_source_sized"].get("native") or {}
    record = {
        "method": f"leave-{group_by}-out cross-validation",
        "cv": digest.named(cv) if os.path.isfile(cv) else os.path.basename(cv),  # a record file, or a run folder's name
        "data": digest.named_all(data),
        "folds": folds,
        "target_fpr": cal["target_fpr"],
        "threshold": cal["threshold"],
        "reals": cal["reals"],
        "nested_fpr_native": cal["nested_summary"].get("fpr_native"),
        "nested_tpr_native": cal["nested_summary"].get("tpr_native"),
        "nested_worst_source_native": worst,
        "source": digest.named(weights),
    }
    return save_calibrated(model, config, record, weights, out), record
