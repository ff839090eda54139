"""glass train: Trainer.open builds (or resumes) the run and fit() trains it; this prints where it went."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from glass_cli.cli import options as o
from glass_cli.cli.app import app
from glass_cli.cli.errors import err, needs, reported

EPILOG = """[bold]Examples[/bold]

  glass train ../shared/data/train-v1 --name lite0 --epochs 10

  glass train data/ --baseline --backbone resnet50 --backbone-weights resnet50.safetensors

  glass train --config best-trial.json data/manifest.csv --name tuned

  glass train --name lite0 --resume

  torchrun --nproc_per_node 2 $(which glass) train data/ --name ddp

Options come from the defaults, then --config FILE (JSON: option name to value, e.g. a run's config.json), then the flags given.
"""


@app.command(epilog=EPILOG)
@o.with_options(o.TRAIN)
def train(
    data: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders with real/ and fake/ (or train/ and val/ holding them), or manifest .csv files; several are used together.", show_default=False),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name: files go to RUNS_DIR/NAME. Default: arch-backbone-time.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Train the resize-only baseline instead of GLASS.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue run --name from its last completed epoch.")] = False,
    debug: o.Debug = False,
    training: dict[str, Any] | None = None,
) -> None:
    """Train GLASS (or --baseline) on labelled images; writes RUNS_DIR/NAME/.

    Each epoch writes metrics.csv, curves.png, the best and last checkpoints and the resume state. Exit codes: 0 done; 2 usage or fatal error.
    """
    needs("train", debug)
    from glass_cli.training.trainer import Trainer

    with reported(debug, interrupted="interrupted; continue with --resume"):
        trainer = Trainer.open(o.training_options(training, data=data, name=name, baseline=baseline), resume=resume, console=err)
        try:
            if trainer.done:
                err.print(f"run {trainer.dir} already finished all {trainer.config.epochs} epochs", highlight=False)
            trainer.fit()
        finally:
            trainer.close()
    if trainer.is_main:
        best = max(trainer.history, key=lambda r: r.score) if trainer.history else None
        lines = [f"run folder: {trainer.dir}"]
        if best is not None:
            auroc = "n/a" if best.val_auroc is None else f"{best.val_auroc:.4f}"
            lines.append(f"best: epoch {best.epoch}, val accuracy {best.val_acc:.4f}, AUROC {auroc} -> {trainer.dir / 'best.safetensors'}")
        typer.echo("\n".join(lines))
