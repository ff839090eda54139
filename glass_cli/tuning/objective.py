"""One trial of a study: sample the parameters, train (or cross-validate) step by step,
report each step to the pruner, and return the trial's value."""

from __future__ import annotations

import math
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import optuna

from glass_cli.config import TrainConfig
from glass_cli.tuning.options import KEEP_IN_TRIAL_RUN, METRIC_NAMES, TuneOptions, describe_params, trial_error
from glass_cli.tuning.space import Space


class Objective:
    """One trial: sample, train epoch by epoch, report to the pruner, return the best score."""

    def __init__(self, opts: TuneOptions, space: Space, base: TrainConfig, console=None):
        self.opts, self.space, self.base, self.console = opts, space, base, console
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.outcome: str | None = None
        self.number: int | None = None

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __call__(self, trial) -> float:
        self.number, self.outcome = trial.number, None
        trial.set_user_attr("worker", self.worker)
        params = self.space.suggest(trial)
        config = TrainConfig.from_dict({**params, "name": f"trial-{trial.number:04d}"}, self.base)
        run = self._cross_validate if self.opts.metric == "cv" else self._train
        try:
            return run(trial, params, config)
        except optuna.TrialPruned:
            raise
        except BaseException as exc:  # interrupted or failed: say so on the trial, then let it end
            self._record_failure(trial, exc)
            raise

    def _train(self, trial, params: dict[str, Any], config: TrainConfig) -> float:
        """One trial as a training run: the pruner sees the best score after every epoch."""
        from glass_cli.training.errors import TrainError
        from glass_cli.training.trainer import Trainer

        run = Path(config.runs_dir) / config.name
        if run.exists():  # left by an earlier study of the same name whose storage was deleted
            shutil.rmtree(run)
        trial.set_user_attr("run", str(run))
        retry = trial.user_attrs.get("retry_of")
        self._say(f"trial {trial.number}" + (f" (retry of {retry})" if retry is not None else "") + f": {describe_params(params)}")
        metric = METRIC_NAMES[self.opts.metric]
        best, best_epoch = -math.inf, 0
        trainer = None
        try:
            trainer = Trainer(config, console=self.console)
            while not trainer.done:
                result = trainer.train_epoch()
                if not math.isfinite(result.score):
                    raise TrainError(f"{metric} is undefined after epoch {result.epoch}")
                if result.score > best:
                    best, best_epoch = result.score, result.epoch
                trial.report(best, result.epoch)
                trial.set_user_attr("epochs_run", result.epoch)
                trial.set_user_attr("best_epoch", best_epoch)
                if not trainer.done and trial.should_prune():  # after the last epoch there is nothing to save
                    self.outcome = "pruned"
                    self._say(f"trial {trial.number}: pruned after epoch {result.epoch} (best {metric} {best:.4f})")
                    raise optuna.TrialPruned(f"pruned after epoch {result.epoch}")
        finally:
            if trainer is not None:
                trainer.close()
            self._tidy(run)
        self.outcome = "complete"
        self._say(f"trial {trial.number}: {metric} {best:.4f} (epoch {best_epoch})")
        return best

    def _record_failure(self, trial, exc: BaseException) -> None:
        """Mark a trial that ended in an exception: interrupted (it will be retried) or failed
        with a one-line reason."""
        if isinstance(exc, KeyboardInterrupt):
            self.outcome = "interrupted"
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("fail_reason", "interrupted")
        elif isinstance(exc, Exception):
            self.outcome = "failed"
            reason = trial_error(exc)
            trial.set_user_attr("fail_reason", reason)
            self._say(f"trial {trial.number}: failed: {reason}")

    def _cross_validate(self, trial, params: dict[str, Any], config: TrainConfig) -> float:
        """One trial as a leave-family-out cross-validation: the pruner sees the running mean
        of the fold objectives after each fold."""
        from glass_cli.evaluation.cv.options import CvOptions
        from glass_cli.evaluation.cv.run import cv_root, run_cv
        from glass_cli.training.errors import TrainError

        root = cv_root(config)
        if root.exists():  # left by an earlier study of the same name whose storage was deleted
            shutil.rmtree(root)
        trial.set_user_attr("run", str(root))
        retry = trial.user_attrs.get("retry_of")
        self._say(f"trial {trial.number}" + (f" (retry of {retry})" if retry is not None else "") + f": {describe_params(params)}")
        options = CvOptions(
            folds=self.opts.cv_folds, real_sizes=tuple(self.opts.cv_real_sizes), batch_size=config.batch_size,
            workers=config.workers, device=config.device, group_by=self.opts.cv_group_by,
        )
        values: list[float] = []

        def on_fold(fold) -> None:
            if fold.objective is None:
                raise TrainError(f"fold {fold.fold.index}: the held-out AUROC is undefined")
            values.append(float(fold.objective))
            mean = sum(values) / len(values)
            trial.report(mean, len(values))
            trial.set_user_attr("folds_run", len(values))
            if len(values) < options.folds and trial.should_prune():
                self.outcome = "pruned"
                self._say(f"trial {trial.number}: pruned after fold {len(values)} (mean {METRIC_NAMES['cv']} {mean:.4f})")
                raise optuna.TrialPruned(f"pruned after fold {len(values)}")

        try:
            result = run_cv(config, options, console=self.console, on_fold=on_fold)
        finally:
            self._tidy_cv(root)
        self.outcome = "complete"
        value = float(result.objective)
        self._say(f"trial {trial.number}: {METRIC_NAMES['cv']} {value:.4f} (mean of {len(values)} folds)")
        return value

    def _tidy_cv(self, root: Path) -> None:
        """Keep every fold's numbers, scores and curves; drop its checkpoints."""
        if not root.is_dir():
            return
        for fold in root.glob("fold-*"):
            if fold.is_dir():
                self._tidy(fold)

    def _tidy(self, run: Path) -> None:
        """Keep a trial's record, drop what only a resumed run or a scan would need."""
        if not run.is_dir():
            return
        keep = set(KEEP_IN_TRIAL_RUN) | {"heldout.json"}
        if self.opts.keep_checkpoints:
            keep |= {"best.safetensors", "best.json"}
        for p in run.iterdir():
            if p.name not in keep and p.is_file():
                p.unlink(missing_ok=True)
