"""glass eval: evaluation.evaluate.run scores the labelled data; this prints the tables and the calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from glass_cli.cli import options as o
from glass_cli.cli.app import app
from glass_cli.cli.errors import err, needs, reported
from glass_cli.errors import EXIT_CLEAN, EXIT_UNREADABLE
from glass_cli.outputs.tables import MIN_GROUP

EPILOG = """[bold]Examples[/bold]

  glass eval ../shared/data/train-v1 --weights runs/lite0/best.safetensors --split val

  glass eval photos/ --weights model.safetensors --jpeg 75 --json -

  glass eval data/manifest.csv --weights model.safetensors --downscale 0.5 --json eval.json

  glass eval data/ --weights model.safetensors --long-side 512    (real photos as the web shows them)

[bold]Exit codes[/bold]: 0 every file scored; 2 usage or fatal error; 3 some files could not be read (they are listed and left out of the metrics).
"""


@app.command(name="eval", epilog=EPILOG)
def eval_command(
    data: Annotated[Path, typer.Argument(help="Folder with real/ and fake/, or a manifest .csv.", show_default=False)],
    weights: Annotated[Path | None, typer.Option(help="Model checkpoint, or a shipped model's name: default (the resize-only baseline), baseline, glass. Default: the shipped model, or $GLASS_WEIGHTS.")] = None,
    split: Annotated[str | None, typer.Option(help="Only this split (e.g. val). Default: every image.")] = None,
    jpeg: Annotated[int | None, typer.Option(help="Re-encode every image as JPEG at this quality first.", min=1, max=100)] = None,
    downscale: Annotated[float | None, typer.Option(help="Resize every image by this factor (0-1] first.")] = None,
    long_side: Annotated[
        int | None, typer.Option(help="Shrink images whose long side exceeds N pixels to N (smaller ones are scored as stored).", min=8)
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="Decision threshold on P(AI). Default: the model's.", min=0.0, max=1.0)] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Write metrics and per-file scores as JSON ('-' = stdout).")] = None,
    calibrate: Annotated[
        bool, typer.Option("--calibrate", help="Pick the threshold that keeps the false-positive rate on these reals at --target-fpr; save a calibrated copy of the checkpoint.")
    ] = False,
    target_fpr: Annotated[float, typer.Option(help="False-positive rate on real images that --calibrate aims at.")] = 0.05,
    calibrated_out: o.CalibratedOut = None,
    val_fraction: Annotated[float, typer.Option(help="Held-out share that defines 'val' for data without a split (as in glass train).")] = 0.2,
    device: o.DeviceOption = o.Device.auto,
    batch_size: Annotated[int, typer.Option(help="Images per model call.", min=1)] = 8,
    workers: Annotated[int, typer.Option(help="Image preparation threads.", min=0)] = 2,
    min_group: Annotated[int, typer.Option(help="List generators and families with at least this many images (1: all).", min=1)] = MIN_GROUP,
    debug: o.Debug = False,
) -> None:
    """Measure a checkpoint on labelled images: accuracy, balanced accuracy, AUROC, AP, ECE, TPR at 1% and 5% FPR, per generator and family.

    Images are prepared exactly as glass scan prepares them, so each file gets scan's score.
    """
    needs("eval", debug)
    from glass_cli.evaluation import evaluate
    from glass_cli.models import checkpoint
    from glass_cli.outputs import records, tables
    from glass_cli.outputs.progress import progress

    out = err if json_out == "-" else Console(highlight=False)
    with reported(debug), progress(err, info=False, elapsed=False) as bar:
        settings = evaluate.EvalSettings(
            weights=weights, split=split, perturbation=evaluate.Perturbation(jpeg=jpeg, downscale=downscale, long_side=long_side),
            threshold=threshold, val_fraction=val_fraction, device=device.value, batch_size=batch_size, workers=workers,
            calibrate_fpr=target_fpr if calibrate else None, calibrated_out=calibrated_out)
        run = evaluate.run(data, settings,
                           on_start=(lambda n: bar.add_task("evaluating", total=n)) if bar else None,
                           on_progress=(lambda n: bar.advance(bar.task_ids[-1], n)) if bar else None)

    title = f"{data}" + (f", split {split}" if split else "") + f": {run.perturbation.describe()}, threshold {run.threshold:g}"
    for table in tables.eval_tables(run.summary, title, min_group=min_group):
        out.print(table)
    out.print(f"model: {run.engine.config.describe()} ({run.weights}), device: {run.engine.device}", markup=False, style="dim")
    if json_out:
        document = records.eval_document(run.summary, run.records, model=checkpoint.describe_file(run.weights), data=str(data), split=split,
                                        perturbation=run.perturbation.to_dict(), device=run.engine.device)
        records.write_json(document, json_out)
    if run.calibration is not None:
        cal = run.calibration
        tpr = "n/a" if cal["tpr"] is None else f"{cal['tpr']:.3f}"
        out.print(f"calibrated threshold {cal['threshold']:.6g}: FPR {cal['fpr']:.3f} on {cal['real']} real images (target {target_fpr:g}), "
                  f"TPR {tpr} on {cal['fake']} AI images; written to {run.calibrated}", markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_UNREADABLE if run.summary["errors"] else EXIT_CLEAN)
