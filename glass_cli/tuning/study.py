"""Hyperparameter search: an Optuna study over a search space, one ``Trainer`` run per trial.

    result = run_study(TuneOptions(data="train-v1", backbone="tf_efficientnet_lite0", n_trials=20))

How it follows the GLASS paper's search: TPE sampler (seed 606), Hyperband pruner (by default
min 5, max 25 epochs, reduction factor 3), each trial's value is its best per-epoch
validation score, and after every epoch the best score so far is reported to the pruner.

Study and storage. Trials live in an Optuna RDB storage: SQLite at
``RUNS_DIR/tune/STUDY.db`` unless ``storage`` names another URL (PostgreSQL, MySQL), so any
number of processes on any number of machines can work on one study, and the study opens in
optuna-dashboard. ``n_trials`` is the study's target: a process starts a new trial only while
the study holds fewer than ``n_trials`` finished plus running trials, so running the same
command again after an interrupt finishes the remaining ones, and N workers started with
``--n-trials 100`` stop together at 100.

Interrupted trials are retried, not lost:
- Ctrl-C or SIGTERM inside a trial: the trial is recorded as failed with user attribute
  ``interrupted`` and its parameters are queued again at once (user attribute ``retry_of``);
- a process killed outright (SIGKILL, power loss) leaves its trial RUNNING. Every running
  trial sends a heartbeat every ``stale_after / 4`` seconds; any worker that finds a RUNNING
  trial without a heartbeat for ``stale_after`` seconds marks it failed and queues its
  parameters again (Optuna's heartbeat / ``fail_stale_trials`` machinery).
A queued retry runs before any new trial. Interrupted trials do not count towards
``n_trials``; a trial interrupted ``MAX_ATTEMPTS`` times counts as failed. Trials that raise
are recorded as failed with a one-line ``fail_reason`` user attribute and the study goes on;
``MAX_CONSECUTIVE_FAILURES`` failures in a row stop this process (a broken setup, not a bad
trial).

Files, under ``RUNS_DIR/tune/STUDY/``: ``trial-NNNN/`` (each trial's config.json,
metrics.csv and curves.png; checkpoints only with ``keep_checkpoints``), ``trials.csv``,
``best-config.json`` (a ``glass train --config`` file), ``history.png`` and
``importance.png``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from glass_cli.config import RUNTIME_KEYS, SELECT_METRICS, TrainConfig
from glass_cli.io import atomic
from glass_cli.tuning.objective import Objective
from glass_cli.tuning.options import (
    METRIC_NAMES,
    TUNE_METRICS,
    TrialRow,
    TuneError,
    TuneOptions,
    TuneResult,
    format_value,
    trial_error,
)
from glass_cli.tuning.space import Space

__all__ = [
    "open_study", "run_study", "preflight", "report", "best_table", "summary_line", "queue_retry", "trial_rows",
    "trials_csv", "best_config", "base_config", "study_identity",
]

REDUCTION_FACTOR = 3
MAX_ATTEMPTS = 3
MAX_CONSECUTIVE_FAILURES = 3
OPEN_ATTEMPTS = 4
STUDY_ATTR = "glass"
_NOT_IDENTITY = frozenset({"data", "name", "runs_dir", "global_weights", "local_weights", *RUNTIME_KEYS})
"""TrainConfig fields that may differ between the processes of one study (paths per machine,
runtime choices); every other field must agree."""


# ---------------------------------------------------------------------------- helpers


def base_config(opts: TuneOptions, space: Space) -> TrainConfig:
    """The TrainConfig every trial starts from, before the sampled parameters."""
    options = {
        **space.fixed,
        **opts.train,
        "data": str(opts.data),
        "arch": opts.arch,
        "global_backbone": opts.backbone,
        "epochs": opts.epochs,
        "select_metric": opts.metric if opts.metric in SELECT_METRICS else "auroc",
        "runs_dir": str(opts.study_dir),
        "name": "",
    }
    try:
        return TrainConfig.from_dict(options)
    except ValueError as exc:
        raise TuneError(str(exc)) from None


def study_identity(opts: TuneOptions, space: Space, base: TrainConfig) -> dict[str, Any]:
    """What every process of one study must agree on (stored as a study user attribute)."""
    identity = {k: v for k, v in base.to_dict().items() if k not in _NOT_IDENTITY}
    if opts.metric == "cv":
        identity["cv"] = {"folds": opts.cv_folds, "real_sizes": list(opts.cv_real_sizes), "group_by": opts.cv_group_by}
    identity.update(
        space=space.to_dict(),
        pruner={"min_epochs": opts.pruner_min, "max_epochs": opts.epochs, "reduction_factor": REDUCTION_FACTOR},
        metric=opts.metric,
        sampler_seed=opts.sampler_seed,
    )
    return json.loads(json.dumps(identity))


def _first_difference(old: Any, new: Any, path: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else (path, old, new)


class TrialSeededTPE(optuna.samplers.BaseSampler):
    """Optuna's TPE sampler with its random state derived from (seed, trial number).

    A plain seeded sampler restarts its random stream in every process, so a resumed study
    (or a second worker) would draw the same start-up parameters again. Seeding per trial
    keeps the search reproducible trial by trial without repeating anyone's draws.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._tpe = optuna.samplers.TPESampler(seed=seed)

    def before_trial(self, study, trial) -> None:
        trial_seed = int(np.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0])
        self._tpe = optuna.samplers.TPESampler(seed=trial_seed)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def __str__(self) -> str:
        return f"TrialSeededTPE(seed={self._seed})"


def _is_interrupted(trial) -> bool:
    """A failed trial that was cut short rather than broken: Ctrl-C/SIGTERM (marked by the
    objective) or a killed process (failed by the heartbeat check, so no reason recorded)."""
    return trial.state == TrialState.FAIL and (trial.user_attrs.get("interrupted") or "fail_reason" not in trial.user_attrs)


def _counts_as_finished(trial) -> bool:
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if trial.state == TrialState.FAIL:
        return not _is_interrupted(trial) or int(trial.user_attrs.get("attempt", 1)) >= MAX_ATTEMPTS
    return False


def queue_retry(study, trial) -> bool:
    """Queue an interrupted trial's parameters again; False when it used up its attempts."""
    attempt = int(trial.user_attrs.get("attempt", 1))
    if attempt >= MAX_ATTEMPTS:
        return False
    origin = trial.user_attrs.get("retry_of", trial.number)
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": origin, "attempt": attempt + 1})
    return True


@contextmanager
def _quiet_optuna(debug: bool):
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING if debug else optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
        try:
            yield
        finally:
            optuna.logging.set_verbosity(level)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler's pre-emption, a plain `kill`) ends the trial like Ctrl-C does."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------- the study


def open_study(opts: TuneOptions, identity: dict[str, Any], on_retry: Callable[[int, bool], None] | None = None):
    """Create or load the study; refuse one created with different settings."""
    from optuna.pruners import HyperbandPruner
    from optuna.storages import RDBStorage

    url = opts.storage_url
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TuneError(f"{db.parent}: cannot create the study folder ({exc.strerror or exc})") from None
        engine_kwargs = {"connect_args": {"timeout": 60}}

    def stale(study, trial) -> None:
        queued = queue_retry(study, trial)
        if on_retry is not None:
            on_retry(trial.number, queued)

    interval = max(1, opts.stale_after // 4)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            storage = RDBStorage(
                _with_driver(url),
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=opts.stale_after,
                heartbeat_stale_trial_callback=stale,
            )
            study = optuna.create_study(
                storage=storage,
                study_name=opts.study_name,
                sampler=TrialSeededTPE(opts.sampler_seed),
                pruner=HyperbandPruner(min_resource=opts.pruner_min, max_resource=opts.pruner_max, reduction_factor=REDUCTION_FACTOR),
                direction="maximize",
                load_if_exists=True,
            )
            break
        except sqlalchemy.exc.DBAPIError as exc:
            # Workers started together race to create the tables ("table ... already
            # exists"); a database server may be briefly unreachable. Try again shortly.
            if attempt + 1 == OPEN_ATTEMPTS:
                raise TuneError(f"{_redact(url)}: cannot open the study storage ({trial_error(exc)})") from None
            time.sleep(0.5 + attempt)
        except ImportError as exc:  # optuna re-raises the driver's ModuleNotFoundError as an ImportError
            if url.startswith("postgresql"):
                from glass_cli import extras

                module = getattr(exc.__cause__, "name", None) or exc.name or "psycopg"
                raise TuneError(f"{_redact(url)}: {extras.missing_message('postgres', [module])}") from None
            raise TuneError(f"{_redact(url)}: cannot open the study storage ({trial_error(exc)})") from None
        except Exception as exc:  # a bad URL, a missing database driver
            raise TuneError(f"{_redact(url)}: cannot open the study storage ({trial_error(exc)})") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise TuneError(f"study {opts.study_name} in {_redact(url)} minimises; glass tune maximises (use another --study)")
    saved = study.user_attrs.get(STUDY_ATTR)
    if saved is None:
        if study.get_trials(deepcopy=False):
            raise TuneError(f"study {opts.study_name} in {_redact(url)} was not created by glass tune (use another --study)")
        study.set_user_attr(STUDY_ATTR, identity)
        study.set_user_attr("data", str(opts.data))
    else:
        diff = _first_difference(saved, identity)
        if diff:
            key, old, new = diff
            raise TuneError(
                f"study {opts.study_name} in {_redact(url)} was created with {key}={json.dumps(old)}; "
                f"this command has {json.dumps(new)} (use the same settings, or another --study)"
            )
    return study


def _with_driver(url: str) -> str:
    """A plain postgresql:// URL with its driver named: psycopg (3), which the ``postgres``
    extra installs. SQLAlchemy's own default for the scheme is psycopg2 before 2.1."""
    return "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url


def _redact(url: str) -> str:
    """A storage URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def preflight(opts: TuneOptions) -> tuple[Space, TrainConfig, list[str]]:
    """Resolve the space and the base config; check data and backbone once, before the study."""
    from glass_cli.training.inputs import build_model, read_splits

    notes: list[str] = []
    if opts.arch not in ("glass", "baseline"):
        raise TuneError(f"unknown architecture {opts.arch!r}")
    if opts.metric not in TUNE_METRICS:
        raise TuneError(f"--metric must be one of {', '.join(TUNE_METRICS)}, got {opts.metric!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", opts.study_name):
        raise TuneError(f"study name {opts.study_name!r}: use letters, digits, '.', '_' and '-' only")
    if opts.epochs < 1 or opts.pruner_min > opts.epochs:
        raise TuneError(f"need 1 <= --min-epochs <= --epochs, got {opts.pruner_min} and {opts.epochs}")
    if opts.stale_after < 2:
        raise TuneError(f"--stale-after must be at least 2 seconds, got {opts.stale_after}")
    space = opts.space or Space.paper(opts.arch)
    fixed_by_flags = sorted(set(opts.train) & (set(space.params) | set(space.fixed)))
    if fixed_by_flags:
        space = space.without(fixed_by_flags)
        notes.append("fixed by flags, not searched: " + ", ".join(f"{k}={format_value(opts.train[k])}" for k in fixed_by_flags))
        if not space.params:
            raise TuneError(f"{space.source}: nothing left to search once the flags fix {', '.join(fixed_by_flags)}")
    base = base_config(opts, space)
    space.check(base)
    if opts.metric == "cv":
        from glass_cli.data.datasets import read_dataset
        from glass_cli.evaluation.cv.folds import assign_folds
        from glass_cli.evaluation.cv.options import CvError

        if opts.cv_folds < 2:
            raise TuneError(f"--cv-folds must be at least 2, got {opts.cv_folds}")
        try:
            folds = assign_folds(read_dataset(base.data), opts.cv_folds, base.data, opts.cv_group_by)
        except CvError as exc:
            raise TuneError(str(exc)) from None
        notes.append(
            f"data: {sum(f.real + f.fake for f in folds)} images from {opts.data}, {opts.cv_folds} leave-{opts.cv_group_by}-out folds per trial"
        )
    else:
        train, val = read_splits(base)
        notes.append(f"data: {len(train)} training and {len(val)} validation images from {opts.data}")
    model, _ = build_model(base)  # a missing backbone or weights file fails here, not in every trial
    del model
    return space, base, notes


def run_study(opts: TuneOptions, console=None, debug: bool = False) -> TuneResult:
    """Run trials until the study holds ``n_trials`` finished ones (or the timeout), then
    write the study's report files. KeyboardInterrupt propagates after the interrupted trial
    has been queued for a retry."""
    def say(text: str) -> None:
        if console is not None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)

    started = time.monotonic()
    space, base, notes = preflight(opts)
    identity = study_identity(opts, space, base)

    def on_retry(number: int, queued: bool) -> None:
        say(f"trial {number} lost its process (no heartbeat for {opts.stale_after}s): "
            + ("queued again" if queued else f"interrupted {MAX_ATTEMPTS} times, counted as failed"))

    with _quiet_optuna(debug), _sigterm_as_interrupt():
        study = open_study(opts, identity, on_retry)
        say(f"study {opts.study_name} in {_redact(opts.storage_url)}: target {opts.n_trials} trials, "
            + (f"{opts.cv_folds}-fold cross-validation of {opts.epochs} epochs per fold each (Hyperband over folds)"
               if opts.metric == "cv" else f"{opts.epochs} epochs each (Hyperband from {opts.pruner_min})")
            + f", maximising {METRIC_NAMES[opts.metric]}")
        for note in notes:
            say(note)
        for name, p in space.params.items():
            say(f"  {name}: {p.describe()}")
        objective = Objective(opts, space, base, console)
        ran, consecutive, last_reason = 0, 0, ""
        stop_reason, wait_until = "", None
        interval = max(1, opts.stale_after // 4)
        while True:
            if opts.timeout is not None and time.monotonic() - started >= opts.timeout:
                stop_reason = f"timeout ({opts.timeout:g}s) reached"
                break
            optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            finished = sum(_counts_as_finished(t) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if finished >= opts.n_trials:
                stop_reason = f"the study has {finished} finished trials (target {opts.n_trials})"
                break
            if finished + running >= opts.n_trials:
                # The rest are running elsewhere, or in a killed process: wait until they
                # finish, or until their heartbeat is old enough to fail and retry them here.
                now = time.monotonic()
                if wait_until is None:
                    wait_until = now + opts.stale_after + 2 * interval
                    say(f"waiting up to {opts.stale_after + 2 * interval}s for {running} running trial(s) "
                        "(another worker's, or a killed process's, which would be retried here)")
                if now >= wait_until:
                    stop_reason = f"the remaining {running} trial(s) are running in live workers"
                    break
                time.sleep(min(2.0, interval, max(0.0, wait_until - now)))
                continue
            wait_until = None
            try:
                study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
            except KeyboardInterrupt:
                _requeue_interrupted(study, objective.number)
                raise
            ran += 1
            if objective.outcome == "failed":
                consecutive += 1
                last_reason = study.get_trials(deepcopy=False)[objective.number].user_attrs.get("fail_reason", "")
                if consecutive >= MAX_CONSECUTIVE_FAILURES:
                    stop_reason = f"{consecutive} trials in a row failed (last: {last_reason})"
                    break
            elif objective.outcome is not None:
                consecutive = 0
        result = report(study, opts, base)
    result.ran_here = ran
    result.stop_reason = stop_reason
    result.gave_up = consecutive >= MAX_CONSECUTIVE_FAILURES
    result.notes = notes + result.notes
    return result


def _requeue_interrupted(study, number: int | None) -> None:
    if number is None:
        return
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted"):
        queue_retry(study, trial)


# ---------------------------------------------------------------------------- the report


def trial_rows(study) -> list[TrialRow]:
    names = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = names.get(t.state) or ("interrupted" if _is_interrupted(t) else "failed")
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        reason = t.user_attrs.get("fail_reason", "")
        if state == "interrupted" and not reason:
            reason = "process lost (no heartbeat)"
        rows.append(
            TrialRow(
                number=t.number,
                state=state,
                value=t.value if t.state == TrialState.COMPLETE else None,
                best_epoch=t.user_attrs.get("best_epoch"),
                epochs_run=int(t.user_attrs.get("epochs_run", 0)),
                seconds=seconds,
                params=dict(t.params),
                retry_of=t.user_attrs.get("retry_of"),
                worker=t.user_attrs.get("worker", ""),
                reason=reason,
            )
        )
    return rows


def trials_csv(rows: list[TrialRow]) -> str:
    params = sorted({k for r in rows for k in r.params})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["number", "state", "value", "best_epoch", "epochs_run", "seconds", "retry_of", "worker", "reason", *params])
    for r in rows:
        writer.writerow([
            r.number, r.state, "" if r.value is None else repr(r.value), r.best_epoch or "", r.epochs_run,
            "" if r.seconds is None else f"{r.seconds:.1f}", "" if r.retry_of is None else r.retry_of, r.worker, r.reason,
            *[r.params.get(k, "") for k in params],
        ])
    return buf.getvalue()


def best_config(best: TrialRow, base: TrainConfig, runs_dir: str) -> TrainConfig:
    """The best trial as a ``glass train --config`` file: the trial's options with the
    default run name and the user's runs folder."""
    return TrainConfig.from_dict(best.params, base).replace(name="", runs_dir=runs_dir)


def report(study, opts: TuneOptions, base: TrainConfig) -> TuneResult:
    rows = trial_rows(study)
    result = TuneResult(study=opts.study_name, storage=_redact(opts.storage_url), rows=rows, stop_reason="", ran_here=0)
    out = opts.study_dir
    result.files.append(atomic.write_text(out / "trials.csv", trials_csv(rows)))
    complete = [r for r in rows if r.state == "complete"]
    if not complete:
        result.notes.append("no completed trial yet: no best config or plots")
        return result
    result.best = max(complete, key=lambda r: (r.value, -r.number))
    config = best_config(result.best, base, opts.runs_dir)
    result.best_config = atomic.write_text(out / "best-config.json", config.to_json() + "\n")
    from glass_cli.outputs import plots

    metric = METRIC_NAMES[opts.metric]
    result.files.append(atomic.write_bytes(out / "history.png", plots.study_history(study, metric)))
    if len(complete) < 2:
        result.notes.append(f"importance plot skipped: it needs at least 2 completed trials (the study has {len(complete)})")
    else:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                png = plots.study_importance(study, metric)
            result.files.append(atomic.write_bytes(out / "importance.png", png))
            for w in caught:  # e.g. too few trials for the evaluator to tell parameters apart
                if issubclass(w.category, UserWarning):
                    result.notes.append(f"importance plot: {' '.join(str(w.message).split())}")
        except (RuntimeError, ValueError) as exc:
            result.notes.append(f"importance plot skipped: {trial_error(exc)}")
    return result


def best_table(result: TuneResult, metric: str, top: int = 5):
    """The study's best completed trials as a rich Table (``outputs.tables.tune_table``)."""
    from glass_cli.outputs.tables import tune_table

    return tune_table(result, METRIC_NAMES[metric], top)


def summary_line(result: TuneResult) -> str:
    parts = [f"{result.count(s)} {s}" for s in ("complete", "pruned", "failed", "interrupted", "running", "waiting") if result.count(s)]
    return f"study {result.study}: {len(result.rows)} trials ({', '.join(parts) or 'none'}); {result.ran_here} run by this process"
