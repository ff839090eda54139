"""glass cv: evaluation.cv.run.run_cv runs the folds (CvResult.calibrate saves the threshold); this prints the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from glass_cli.cli import options as o
from glass_cli.cli.app import app
from glass_cli.cli.errors import err, fail, needs, reported
from glass_cli.errors import EXIT_CLEAN, EXIT_UNREADABLE

EPILOG = """[bold]Examples[/bold]

  glass cv ../shared/data/train-v1/manifest.csv --folds 3 --epochs 8

  glass cv ../shared/data/train-v1/manifest.csv --folds 3 --epochs 8 --baseline

  glass cv data/manifest.csv --config recipe.json --name recipe-a --real-sizes 1024,512,256

  glass cv data/manifest.csv --config recipe.json --name recipe-a --only-fold 2

  glass cv --record docs/experiments/cv-abl-b-epochs16.json --calibrate runs/baseline-e16/last.safetensors -o weights/baseline-lite0

Each fold holds out whole sources (the manifest's source column: the gallery, repository or pipeline images came from; --group-by family holds out generator families and camera makes instead), trains on every other image and scores the held-out ones as glass scan would, with the fold run's last checkpoint: reals as stored and shrunk to each --real-sizes long side, both classes re-encoded (--jpeg) and downscaled (--downscale). Writes RUNS_DIR/cv/NAME/ (cv.json, cv.png, one run per fold); running the same command again resumes it. --only-fold runs some folds now and the rest later; a fold scored on another machine joins by copying its fold-I/heldout.json and plan.json into RUNS_DIR/cv/NAME/. --record prints a saved cv.json instead, and with --calibrate writes its threshold into a model trained by the same recipe on all the data (the fold runs are not needed).

[bold]Exit codes[/bold]: 0 every fold asked for done (all of them, or those of --only-fold); 2 usage or fatal error; 3 done, but some held-out files could not be read (listed, left out of the numbers).
"""


@app.command(name="cv", epilog=EPILOG)
@o.panels({
    "Folds": ["folds", "group_by", "only_fold", "name", "baseline"],
    "Scoring": ["heldout_per_source", "real_sizes", "jpeg", "webp", "downscale"],
    "Threshold": ["target_fpr", "calibrate", "calibrated_out", "record"],
})
@o.with_options(o.CV)
def cv_command(
    data: Annotated[
        list[Path] | None,
        typer.Argument(help="Manifest .csv files (or folders holding manifest.csv) with a source (or family) column; several are used together. Not with --record.", show_default=False),
    ] = None,
    folds: Annotated[int, typer.Option(help="Number of folds; each holds out about 1/N of the fake families and of the real sources.", min=2)] = 3,
    name: Annotated[str | None, typer.Option(help="Cross-validation name: files go to RUNS_DIR/cv/NAME. Default: arch-backbone[-kK]-Nfold.", show_default=False)] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Cross-validate the resize-only baseline instead of GLASS.")] = False,
    group_by: Annotated[o.GroupBy, typer.Option(help="What each fold holds out whole: the manifest's source (gallery, repository, pipeline) or family column.")] = o.GroupBy.source,
    webp: Annotated[int, typer.Option(help="WebP quality of the WebP re-encode condition (0: leave it out).", min=0, max=100)] = 80,
    heldout_per_source: Annotated[int, typer.Option(help="Score at most N held-out images per source and class (0: all).", min=0)] = 0,
    real_sizes: Annotated[str, typer.Option(metavar="N,N,...", help="Long sides at which held-out reals are also scored (never enlarged).")] = "1024,512",
    jpeg: Annotated[int, typer.Option(help="JPEG quality of the re-encode robustness condition.", min=1, max=100)] = 75,
    downscale: Annotated[float, typer.Option(help="Factor of the downscale robustness condition.")] = 0.5,
    target_fpr: Annotated[float, typer.Option(help="False-positive rate on held-out reals that the leave-source-out threshold aims at.")] = 0.05,
    calibrate: Annotated[
        Path | None,
        typer.Option(metavar="WEIGHTS", help="Save a copy of this checkpoint (a model of the same recipe trained on all the data) with the leave-source-out threshold."),
    ] = None,
    calibrated_out: o.CalibratedOut = None,
    only_fold: Annotated[
        list[int] | None,
        typer.Option(metavar="I", help="Train and score only fold I now (repeatable); folds scored earlier are reported, the others left for a later run of the same command.", show_default=False),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(metavar="CV_JSON", help="Run no folds: print the tables of this saved cross-validation (a cv.json, or a copy such as docs/experiments/cv-*.json) and, with --calibrate, write its leave-source-out threshold into WEIGHTS."),
    ] = None,
    debug: o.Debug = False,
    training: dict[str, Any] | None = None,
) -> None:
    """Leave-source-out cross-validation: train on some sources (galleries, repositories, cameras; or --group-by family), score on the others.

    Prints each number per fold with its mean ± standard deviation, the false-positive rate of every held-out real source and the detection rate of every held-out fake family.
    """
    needs("cv", debug)
    from glass_cli.config import TrainConfig
    from glass_cli.evaluation.cv.options import FIGURE_FILE, RESULT_FILE, CvError, CvOptions
    from glass_cli.evaluation.cv.run import run_cv
    from glass_cli.evaluation.cv.scoring import size_keys
    from glass_cli.outputs import tables

    if record is not None:
        _from_record(record, data, calibrate, calibrated_out, debug)
        return
    if not data:
        raise fail("cv: give the manifests to cross-validate (DATA), or --record CV_JSON")
    with reported(debug, interrupted="interrupted; run the same command again to resume"):
        config = TrainConfig.from_dict(o.training_options(training, data=data, name=name, baseline=baseline))
        options = CvOptions(
            folds=folds, real_sizes=o.sizes(real_sizes), jpeg=jpeg, downscale=downscale, batch_size=config.batch_size,
            workers=config.workers, device=config.device, target_fpr=target_fpr, group_by=group_by.value, webp=webp,
            heldout_per_source=heldout_per_source, only_folds=tuple(only_fold or ()),
        )
        if calibrate is not None and not calibrate.is_file():
            raise CvError(f"{calibrate}: no such checkpoint (--calibrate)")
        result = run_cv(config, options, console=err)
        calibrated = result.calibrate(calibrate, calibrated_out) if calibrate is not None else None

    out = Console(highlight=False)
    for table in tables.cv_tables(result.to_dict()):
        out.print(table)
    objective = "n/a" if result.objective is None else f"{result.objective:.4f}"
    out.print(f"objective (mean over folds of the AUROC averaged over {', '.join(size_keys(options))}): {objective}", markup=False, soft_wrap=True)
    out.print(f"wrote {result.root / RESULT_FILE} and {result.root / FIGURE_FILE} ({result.seconds:.0f} s)", markup=False, style="dim", soft_wrap=True)
    if not result.complete:
        left = sorted(set(range(1, options.folds + 1)) - {f.fold.index for f in result.folds})
        out.print(f"{len(result.folds)} of {options.folds} folds scored; {'fold' if len(left) == 1 else 'folds'} {', '.join(map(str, left))} left: "
                  "run the same command again (without --only-fold, or naming them) to finish", markup=False, soft_wrap=True)
    if calibrated is not None:
        _print_calibrated(out, *calibrated)
    raise typer.Exit(EXIT_UNREADABLE if result.errors else EXIT_CLEAN)


def _print_calibrated(out: Console, path: Path, record: dict[str, Any]) -> None:
    method = record["method"].removesuffix(" cross-validation")
    out.print(f"threshold {record['threshold']:.6g} ({method}, target FPR {record['target_fpr']:g}) written to {path}", markup=False, soft_wrap=True)


def _from_record(record: Path, data: list[Path] | None, calibrate: Path | None, calibrated_out: Path | None, debug: bool) -> None:
    """glass cv --record: the tables of a saved cross-validation, and its threshold into a model."""
    from glass_cli.evaluation.cv.calibration import calibrate_from_record, read_record
    from glass_cli.evaluation.cv.options import CvError
    from glass_cli.outputs import tables

    if data:
        raise fail("cv: --record reads a finished cross-validation; give no DATA with it")
    with reported(debug):
        doc = read_record(record)
        if calibrate is not None and not calibrate.is_file():
            raise CvError(f"{calibrate}: no such checkpoint (--calibrate)")
        calibrated = calibrate_from_record(record, calibrate, calibrated_out, doc) if calibrate is not None else None
    out = Console(highlight=False)
    for table in tables.cv_tables(doc):
        out.print(table)
    objective = (doc.get("objective") or {}).get("value")
    out.print(f"objective (mean over folds of the AUROC averaged over {', '.join(doc.get('size_keys') or [])}): "
              f"{'n/a' if objective is None else f'{objective:.4f}'}", markup=False, soft_wrap=True)
    if calibrated is not None:
        _print_calibrated(out, *calibrated)
