"""glass tune: tuning.study.run_study runs the Optuna study; this prints the best trials and files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from glass_cli.cli import options as o
from glass_cli.cli.app import app
from glass_cli.cli.errors import err, needs, reported
from glass_cli.errors import EXIT_CLEAN, EXIT_NO_RESULT

EPILOG = """[bold]Examples[/bold]

  glass tune ../shared/data/train-v1 --backbone tf_efficientnet_lite0 --n-trials 100

  glass tune data/ --baseline --backbone resnet50 --n-trials 50 --space my-space.json

  glass tune data/ --backbone vit_base_patch16_224 --n-trials 100 --storage postgresql://user:pw@db/optuna   (one line per worker, any machine)

  glass train --config runs/tune/glass-tf_efficientnet_lite0/best-config.json --epochs 50

--n-trials is the study's target: run the same command again after an interrupt and it finishes the remaining trials; interrupted trials are retried with the same parameters. Training options such as --batch-size fix an option for every trial and remove it from the space.

[bold]Exit codes[/bold]: 0 the study has a best trial; 5 no trial completed, or this process stopped after repeated failures; 2 usage or fatal error; 130 interrupted (run the same command to continue).
"""


@app.command(epilog=EPILOG)
@o.panels({
    "Study": ["n_trials", "backbone", "baseline", "study", "storage", "space", "sampler_seed", "timeout"],
    "Objective": ["metric", "cv_folds", "cv_real_sizes", "cv_group_by", "epochs", "min_epochs"],
    "Workers": ["runs_dir", "stale_after", "keep_checkpoints"],
})
@o.with_options(o.TUNE)
def tune(
    data: Annotated[Path, typer.Argument(help="Training data, as for glass train: a folder with real/ and fake/, or a manifest .csv.", show_default=False)],
    n_trials: Annotated[int, typer.Option("--n-trials", help="Trials the study should hold when done (all workers together; the paper: 100 GLASS, 50 baseline).", min=1, show_default=False)],
    backbone: Annotated[str, typer.Option(help="timm model name (global backbone, and local unless --local-backbone).")] = "tf_efficientnet_lite0",
    baseline: Annotated[bool, typer.Option("--baseline", help="Tune the resize-only baseline (the paper's baseline space).")] = False,
    timeout: Annotated[float | None, typer.Option(help="Start no new trial after this many seconds (the running one finishes).", min=0)] = None,
    study: Annotated[str | None, typer.Option(help="Study name. Default: ARCH-BACKBONE, e.g. glass-tf_efficientnet_lite0.", show_default=False)] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna RDB URL shared by all workers (postgresql://..., mysql://..., sqlite:///...). Default: sqlite:///RUNS_DIR/tune/STUDY.db.", show_default=False)] = None,
    space: Annotated[Path | None, typer.Option(help="Search space file (JSON, or YAML with PyYAML) replacing the paper's space.")] = None,
    metric: Annotated[
        o.Metric,
        typer.Option(help="What to maximise: val accuracy or AUROC (best epoch of each trial), or cv: a leave-source-out cross-validation per trial (as glass cv; --cv-group-by family holds out families instead; needs a manifest with that column).")
    ] = o.Metric.accuracy,
    cv_folds: Annotated[int, typer.Option(help="With --metric cv: folds per trial.", min=2)] = 3,
    cv_real_sizes: Annotated[str, typer.Option(metavar="N,N,...", help="With --metric cv: long sides at which held-out reals are also scored.")] = "1024,512",
    cv_group_by: Annotated[o.GroupBy, typer.Option(help="With --metric cv: what each fold holds out whole (manifest column).")] = o.GroupBy.source,
    epochs: Annotated[int, typer.Option(help="Epochs per trial: Hyperband's maximum (the paper: 25).", min=1)] = 25,
    min_epochs: Annotated[int | None, typer.Option(help="Hyperband's minimum epochs before pruning. Default: epochs // 5.", min=1, show_default=False)] = None,
    runs_dir: Annotated[str, typer.Option(help="Folder for the study database, trial runs and reports (RUNS_DIR/tune/).")] = "runs",
    sampler_seed: Annotated[int, typer.Option(help="TPE sampler seed (the paper: 606).")] = 606,
    stale_after: Annotated[int, typer.Option(help="Seconds without a heartbeat after which a running trial counts as lost (process killed) and is retried.", min=2)] = 120,
    keep_checkpoints: Annotated[bool, typer.Option("--keep-checkpoints", help="Keep each trial's best checkpoint (default: only config, metrics and curves).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and Optuna's own log.")] = False,
    training: dict[str, Any] | None = None,
) -> None:
    """Search hyperparameters with Optuna (TPE + Hyperband, as in the paper); resumable, any number of workers.

    Each trial is a glass train run of up to --epochs epochs, pruned early when it falls behind. At the end: a table of the best trials, RUNS_DIR/tune/STUDY/best-config.json (a glass train --config file), trials.csv, history.png and importance.png.
    """
    needs("tune", debug)
    from glass_cli.tuning.options import METRIC_NAMES, TuneOptions
    from glass_cli.tuning.space import Space
    from glass_cli.tuning.study import best_table, run_study, summary_line

    with reported(debug, interrupted="interrupted; run the same command to continue the study (the interrupted trial is retried)"):
        options = TuneOptions(
            data=str(data), backbone=backbone, arch="baseline" if baseline else "glass", n_trials=n_trials, timeout=timeout,
            study=study or "", storage=storage or "", space=Space.load(space) if space is not None else None,
            metric=metric.value, epochs=epochs, min_epochs=min_epochs or 0, runs_dir=runs_dir, sampler_seed=sampler_seed,
            stale_after=stale_after, keep_checkpoints=keep_checkpoints, train=o.training_options(training),
            cv_folds=cv_folds, cv_real_sizes=o.sizes(cv_real_sizes), cv_group_by=cv_group_by.value,
        )
        result = run_study(options, console=err, debug=debug)

    if result.best is not None:
        Console(highlight=False).print(best_table(result, options.metric))
    lines = [summary_line(result)]
    if result.stop_reason:
        lines.append(f"stopped: {result.stop_reason}")
    lines += [note for note in result.notes if note.startswith(("no completed", "importance"))]
    if result.best is not None:
        best = result.best
        where = f"mean of {options.cv_folds} folds" if options.metric == "cv" else f"epoch {best.best_epoch}"
        lines.append(f"best: trial {best.number}, {METRIC_NAMES[options.metric]} {best.value:.4f} ({where})")
        lines.append(f"best config: {result.best_config}  (glass train --config {result.best_config})")
    lines += [f"wrote {path}" for path in result.files]
    typer.echo("\n".join(lines))
    raise typer.Exit(EXIT_NO_RESULT if result.best is None or result.gave_up else EXIT_CLEAN)
