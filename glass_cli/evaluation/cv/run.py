"""Running a cross-validation: the plan, each fold's training and scoring, the results and
the files they are written to (``RUNS_DIR/cv/NAME/``)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glass_cli import __version__
from glass_cli.config import TrainConfig, recipe_of
from glass_cli.data.datasets import Sample, class_counts, read_dataset, select, stratified_slice
from glass_cli.evaluation.cv.calibration import calibration, save_threshold
from glass_cli.evaluation.cv.folds import Fold, FoldResult, assign_folds, cap_per_group, fold_samples, write_manifest
from glass_cli.evaluation.cv.options import (
    FIGURE_FILE,
    FOLD_FILE,
    FORMAT,
    HELDOUT_SPLIT,
    OBJECTIVE,
    PLAN_FILE,
    RESULT_FILE,
    TRAIN_SPLIT,
    CvError,
    CvOptions,
)
from glass_cli.evaluation.cv.scoring import conditions, fold_numbers, score_fold, size_keys, spread
from glass_cli.io import atomic


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

    def calibrate(self, weights: str | os.PathLike, out: str | os.PathLike | None = None) -> tuple[Path, dict[str, Any]]:
        """Save a copy of ``weights`` whose threshold is this cross-validation's leave-source-out
        threshold (``calibration()["threshold"]``), with how it was chosen in the model's
        ``calibration`` field. ``weights`` should be a model trained by the same recipe on all
        the data: its architecture must match the folds' models. Returns (path, calibration)."""
        cal = self.calibration()
        if not self.complete or cal is None:
            raise CvError(f"{self.root}: --calibrate needs every fold scored ({len(self.folds)} of {self.options.folds} are)")
        return save_threshold(cal, sorted({f.model for f in self.folds}), self.options.group_by, self.options.folds,
                              self.config.data, str(self.root), weights, out)

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


def cv_root(config: TrainConfig) -> Path:
    return Path(config.runs_dir) / "cv" / config.name


def default_name(config: TrainConfig, options: CvOptions) -> str:
    """Stable, so that repeating a command resumes it."""
    crops = f"-k{config.num_crops}" if config.arch == "glass" else ""
    return f"{config.arch}-{config.global_backbone}{crops}-{options.folds}fold"


def _plan(config: TrainConfig, options: CvOptions, folds: Sequence[Fold]) -> dict[str, Any]:
    recipe = recipe_of(config.to_dict())
    return {
        "format": FORMAT,
        "data": os.path.abspath(config.data),
        "options": options.plan(),
        "config": recipe,
        "folds": [f.to_dict() for f in folds],
    }


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
        elif options.only_folds and fold.index not in options.only_folds:
            say(f"fold {fold.index}/{len(folds)}: not scored yet, left for later (--only-fold)")
            continue
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
    from glass_cli.training.state import run_state
    from glass_cli.training.trainer import Trainer

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
