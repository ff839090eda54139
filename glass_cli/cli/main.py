"""The `glass` command line: parse options, call the library, render. No model logic here.

Library modules are imported inside each command so that `glass --help` does not pay for
torch and timm.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from glass_cli import __version__

app = typer.Typer(
    name="glass",
    help="Tell which images were made by generative AI (GLASS: global view + native-resolution crops).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

err = Console(stderr=True, highlight=False)


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Engine(str, Enum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"glass {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """glass: a forensic scanner for AI-generated images.

    [bold]Examples[/bold]

      glass scan ./photos --threshold 0.7

      glass scan a.jpg b.heic --weights model.safetensors --json results.json

      glass export --onnx --weights model.safetensors -o model.onnx
    """


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    err.print(f"[bold red]glass: error:[/bold red] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


SCAN_EPILOG = """[bold]Examples[/bold]

  glass scan ./photos --threshold 0.7

  glass scan ./inbox --json report.json --report report.html --save-crops crops/

  glass scan ./inbox --uncertain 0.4:0.6 --jsonl - | jq 'select(.verdict != "real")'

  glass scan ./photos --model model.onnx    (ONNX Runtime; no torch at scan time)

[bold]Exit codes[/bold]: 0 nothing flagged; 1 at least one file flagged as AI or uncertain; 2 usage or fatal error; 3 nothing flagged but some files could not be scanned.
"""


def _band(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(x) for x in text.split(":"))
    except ValueError:
        raise typer.BadParameter(f"expected LOW:HIGH such as 0.4:0.6, got {text!r}") from None
    return low, high


@app.command(epilog=SCAN_EPILOG)
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Image files and/or folders to scan.", show_default=False)],
    threshold: Annotated[
        float | None,
        typer.Option(help="Flag a file when P(AI) >= this. Default: the model's own threshold.", min=0.0, max=1.0),
    ] = None,
    uncertain: Annotated[
        str | None, typer.Option(metavar="LOW:HIGH", help="Report P(AI) in [LOW, HIGH) as 'uncertain', e.g. 0.4:0.6.")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            "--model",
            help="Model: a checkpoint (.safetensors + .json) or an export from glass export --onnx (.onnx). "
            "Default: the shipped model, or $GLASS_WEIGHTS.",
        ),
    ] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="One JSON document with every file's record ('-' = stdout).")] = None,
    jsonl_out: Annotated[str | None, typer.Option("--jsonl", help="One JSON record per line, written as files finish ('-' = stdout).")] = None,
    csv_out: Annotated[str | None, typer.Option("--csv", help="One CSV row per file, written as files finish ('-' = stdout).")] = None,
    save_crops: Annotated[str | None, typer.Option(metavar="DIR", help="Save flagged files' crops and attention overlay as PNG.")] = None,
    report_html: Annotated[str | None, typer.Option("--report", metavar="FILE.html", help="Write a self-contained HTML report.")] = None,
    device: Annotated[Device, typer.Option(help="Where the model runs.")] = Device.auto,
    precision: Annotated[
        Precision, typer.Option(help="Torch engine arithmetic: auto = fp32; bf16/fp16 autocast on CUDA only.")
    ] = Precision.auto,
    engine_name: Annotated[
        Engine,
        typer.Option("--engine", help="torch for checkpoints, onnx (ONNX Runtime) for .onnx files; auto picks by suffix."),
    ] = Engine.auto,
    batch_size: Annotated[int, typer.Option(help="Images per model call, across files.", min=1)] = 8,
    workers: Annotated[
        int | None, typer.Option(help="Threads reading and decoding files ahead of the model. Default: one per CPU core.", min=1)
    ] = None,
    shard: Annotated[
        str | None, typer.Option(metavar="I/N", help="Scan only shard I of N (stable split by path) to spread a corpus over N machines.")
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")] = True,
    show_all: Annotated[bool, typer.Option("--all", help="List every scanned file, not only the flagged ones.")] = False,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse images with more pixels than this (decompression bombs).", min=1)
    ] = 250_000_000,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for fatal errors.")] = False,
) -> None:
    """Scan images and flag the ones made by generative AI.

    Prints a table of the flagged files with P(AI), the crops the model attended to most and the provenance evidence found in the file, then a summary line. Never writes inside the scanned folders.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from glass_cli.inference.engines import EngineError, describe_model, engine_kind, open_engine
    from glass_cli.inference.scan import Decision, ScanError, default_workers
    from glass_cli.inference.scan import scan as run_scan
    from glass_cli.io.walk import iter_files, parse_shard, shard_files
    from glass_cli.models import checkpoint
    from glass_cli.outputs import report
    from glass_cli.outputs.sinks import OutputOptions, ScanOutputs

    options = OutputOptions(json_out, jsonl_out, csv_out, save_crops, report_html)
    out = err if options.uses_stdout else Console(highlight=False)
    results = []
    try:
        for p in paths:
            if not p.exists() and not p.is_symlink():
                raise ScanError(f"{p}: no such file or folder")
        weights = checkpoint.resolve_weights(weights)
        engine_kind(weights, engine_name.value)  # a model/engine mismatch fails before the walk
        try:
            part = parse_shard(shard) if shard else None
        except ValueError as exc:
            raise ScanError(str(exc)) from None
        files = list(shard_files(iter_files(paths, recursive), part))
        if not files:
            where = ", ".join(str(p) for p in paths)
            raise ScanError(f"no image files found in {where}" + (f" for shard {shard}" if shard else ""))
        engine = open_engine(weights, engine_name.value, device.value, precision.value)
        model_info = describe_model(weights, engine)
        config = engine.config
        decision = Decision(config.threshold if threshold is None else threshold, _band(uncertain))
        with ScanOutputs(options, paths, model=model_info, decision=decision, device=engine.device) as outputs, Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=err, transient=True,
        ) as progress:
            task = progress.add_task("scanning", total=len(files))
            for result in run_scan(files, engine, decision=decision, batch_size=batch_size, max_pixels=max_pixels,
                                   explain=options.explain, workers=workers or default_workers()):
                outputs.add(result)
                results.append(result)
                progress.advance(task)
            outputs.finish(results)
    except (checkpoint.CheckpointError, EngineError, ScanError, OSError) as exc:
        if debug:
            raise
        if isinstance(exc, OSError) and exc.filename:
            raise fail(f"{exc.filename}: {exc.strerror or exc}") from None
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail(f"interrupted after {len(results)} files", 130) from None
    except Exception as exc:  # a bug: say what, keep the traceback for --debug
        if debug:
            raise
        raise fail(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)") from None

    for table in (report.results_table(results, show_all=show_all), report.errors_table(results)):
        if table is not None:
            out.print(table)
    out.print(report.summary_line(results, decision.threshold), markup=False)
    out.print(f"model: {config.describe()} ({model_info['id']}), device: {engine.device}", markup=False, style="dim", soft_wrap=True)
    raise typer.Exit(report.exit_code(results))


EXPORT_EPILOG = """[bold]Examples[/bold]

  glass export --onnx --weights model.safetensors -o model.onnx

  glass export --onnx --weights model.safetensors --fp16 -o model.fp16.onnx

  glass scan ./photos --model model.onnx

[bold]Exit codes[/bold]: 0 exported and verified; 1 ONNX Runtime disagrees with torch beyond the tolerance (nothing written); 2 usage or fatal error.
"""


@app.command(epilog=EXPORT_EPILOG)
def export(
    onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX (the only format so far; required).")] = False,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", "--model", help="Checkpoint to export. Default: the shipped model, or $GLASS_WEIGHTS."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Where to write the .onnx file. Default: NAME.onnx in the current folder."),
    ] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision weights and compute (inputs/outputs stay float32).")] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset version (18 or newer).")] = 18,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for fatal errors.")] = False,
) -> None:
    """Export a checkpoint to one self-contained ONNX file for [bold]glass scan --model FILE.onnx[/bold].

    Batch size and number of crops stay dynamic; the model config travels in the file's metadata. The export is checked with onnx.checker and compared with torch in ONNX Runtime before it is written.
    """
    from glass_cli.inference.export import ExportError, ParityError, default_output
    from glass_cli.inference.export import export as run_export
    from glass_cli.models import checkpoint

    try:
        if not onnx:
            raise ExportError("name the export format: --onnx (the only one so far)")
        weights = checkpoint.resolve_weights(weights)
        out = output or default_output(weights, fp16)
        result = run_export(weights, out, fp16=fp16, opset=opset)
    except ParityError as exc:
        if debug:
            raise
        raise fail(str(exc), 1) from None
    except (checkpoint.CheckpointError, ExportError) as exc:
        if debug:
            raise
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    size_mb = result.nbytes / 1e6
    typer.echo(
        f"wrote {result.path}: {result.config.describe()}, {result.precision}, opset {result.opset}, {size_mb:.1f} MB"
    )
    typer.echo(f"onnx.checker passed; {result.describe_checks()}")


class Balance(str, Enum):
    sampler = "sampler"
    source = "source"
    loss = "loss"
    none = "none"


class Reencode(str, Enum):
    jpeg = "jpeg"
    mixed = "mixed"


class GroupBy(str, Enum):
    source = "source"
    family = "family"


TRAIN_EPILOG = """[bold]Examples[/bold]

  glass train ../shared/data/train-v1 --name lite0 --epochs 10

  glass train data/ --baseline --backbone resnet50 --backbone-weights resnet50.safetensors

  glass train --config best-trial.json data/manifest.csv --name tuned

  glass train --name lite0 --resume

  torchrun --nproc_per_node 2 $(which glass) train data/ --name ddp

Options come from the defaults, then --config FILE (JSON: option name to value, e.g. a run's config.json), then the flags given.
"""

# CLI flag -> TrainConfig field
_TRAIN_FIELDS = {
    "backbone": "global_backbone",
    "local_backbone": "local_backbone",
    "num_crops": "num_crops",
    "crop_size": "crop_size",
    "crop_scales": "crop_scales",
    "dropout": "dropout",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr_global": "lr_global",
    "lr_local": "lr_local",
    "lr_head": "lr_atten_class",
    "wd_global": "wd_global",
    "wd_local": "wd_local",
    "warmup_epochs": "warmup_epochs",
    "seed": "seed",
    "augment": "augment",
    "epoch_size": "epoch_size",
    "size_aug": "size_aug",
    "size_aug_min": "size_aug_min",
    "size_aug_max": "size_aug_max",
    "limit_train": "limit_train",
    "limit_val": "limit_val",
    "val_fraction": "val_fraction",
    "amp": "amp",
    "cache": "cache_images",
    "workers": "workers",
    "name": "name",
    "runs_dir": "runs_dir",
}


def _training_options(given: dict) -> dict:
    """TrainConfig fields from the defaults, then --config FILE, then the flags given
    (``given``: a command's parameters by name; flags a command lacks are skipped)."""
    import json

    from glass_cli.config import TrainConfig
    from glass_cli.training.trainer import TrainError

    options: dict = {}
    config_file = given.get("config_file")
    if config_file is not None:
        try:
            options = json.loads(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TrainError(f"{config_file}: cannot read ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise TrainError(f"{config_file}: not valid JSON ({exc})") from None
        if not isinstance(options, dict):
            raise TrainError(f"{config_file}: expected a JSON object of option: value")
        try:
            TrainConfig.from_dict(options)
        except ValueError as exc:
            raise TrainError(f"{config_file}: {exc}") from None
    for flag, key in _TRAIN_FIELDS.items():
        if given.get(flag) is not None:
            options[key] = given[flag]
    if given.get("data"):
        data = given["data"]
        options["data"] = os.pathsep.join(str(d) for d in data) if isinstance(data, list) else str(data)
    if given.get("baseline"):
        options["arch"] = "baseline"
    if given.get("no_pretrained"):
        options["pretrained"] = False
    if given.get("backbone_weights") is not None:
        options["global_weights"] = str(given["backbone_weights"])
    if given.get("local_backbone_weights") is not None:
        options["local_weights"] = str(given["local_backbone_weights"])
    if given.get("balance") is not None:
        options["balance"] = given["balance"].value
    if given.get("reencode") is not None:
        options["reencode"] = given["reencode"].value
    if given.get("device") is not None:
        options["device"] = given["device"].value
    return options


@app.command(epilog=TRAIN_EPILOG)
def train(
    data: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders with real/ and fake/ (or train/ and val/ holding them), or manifest .csv files; several are used together.", show_default=False),
    ] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="JSON file of training options.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name: files go to RUNS_DIR/NAME. Default: arch-backbone-time.")] = None,
    runs_dir: Annotated[str | None, typer.Option(help="Folder that holds the runs. Default: runs.", show_default=False)] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Train the resize-only baseline instead of GLASS.")] = False,
    backbone: Annotated[str | None, typer.Option(help="timm model name (global backbone). Default: tf_efficientnet_lite0.", show_default=False)] = None,
    local_backbone: Annotated[str | None, typer.Option(help="timm model for the crops. Default: same as --backbone.", show_default=False)] = None,
    backbone_weights: Annotated[Path | None, typer.Option(help="timm-format weights (.safetensors/.pth) for the global backbone.")] = None,
    local_backbone_weights: Annotated[Path | None, typer.Option(help="timm-format weights for the local backbone.")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Start both backbones from random weights.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Default: 10.", show_default=False, min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step (per process). Default: 16.", show_default=False, min=1)] = None,
    num_crops: Annotated[int | None, typer.Option("--crops", "-k", help="K, native-resolution crops per image. Default: 4.", show_default=False, min=1)] = None,
    crop_size: Annotated[int | None, typer.Option(help="S, side of the global view and of each crop. Default: 224.", show_default=False, min=8)] = None,
    crop_scales: Annotated[str | None, typer.Option(metavar="M,M,...", help="GLASS local-branch scales: K crops of M*S native pixels per scale, shrunk to S. Default: 1 (native only).", show_default=False)] = None,
    dropout: Annotated[float | None, typer.Option(help="Default: 0.1.", show_default=False)] = None,
    lr_global: Annotated[float | None, typer.Option(help="Global backbone learning rate (the baseline's only one). Default: 2e-5.", show_default=False)] = None,
    lr_local: Annotated[float | None, typer.Option(help="Local backbone learning rate. Default: 1e-4.", show_default=False)] = None,
    lr_head: Annotated[float | None, typer.Option(help="Attention + classifier learning rate (lr_atten_class). Default: 1e-4.", show_default=False)] = None,
    wd_global: Annotated[float | None, typer.Option(help="Default: 1e-5.", show_default=False)] = None,
    wd_local: Annotated[float | None, typer.Option(help="Default: 1e-5.", show_default=False)] = None,
    warmup_epochs: Annotated[float | None, typer.Option(help="Linear warm-up before the cosine decay. Default: 0.5.", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Default: 0.", show_default=False)] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="JPEG re-encode, downscale, blur, crop, flip. Default: augment.", show_default=False)] = None,
    size_aug: Annotated[float | None, typer.Option(help="Probability of the size-aware rescale of both classes (replaces the factor downscale): long side log-uniform in [--size-aug-min, --size-aug-max]. Default: 0 (off).", show_default=False, min=0.0, max=1.0)] = None,
    size_aug_min: Annotated[int | None, typer.Option(help="Smallest long side of the size-aware rescale. Default: 384.", show_default=False, min=8)] = None,
    size_aug_max: Annotated[int | None, typer.Option(help="Largest long side of the size-aware rescale (never enlarges). Default: 1024.", show_default=False, min=8)] = None,
    balance: Annotated[Balance | None, typer.Option(help="Class balance: weighted sampler, per-source sampler (each source's share grows as the square root of its size), loss weights, or none. Default: sampler.", show_default=False)] = None,
    epoch_size: Annotated[int | None, typer.Option(help="Images drawn per epoch. Default: the training set's size.", show_default=False, min=1)] = None,
    reencode: Annotated[Reencode | None, typer.Option(help="Re-encode augmentation of both classes: jpeg (JPEG q60-100) or mixed (JPEG or WebP, sometimes twice). Default: jpeg.", show_default=False)] = None,
    limit_train: Annotated[int | None, typer.Option(help="Train on a class-stratified slice of N images.", min=1)] = None,
    limit_val: Annotated[int | None, typer.Option(help="Validate on a class-stratified slice of N images.", min=1)] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Held-out share for data without a split. Default: 0.2.", show_default=False)] = None,
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA. Default: amp.", show_default=False)] = None,
    cache: Annotated[bool | None, typer.Option("--cache/--no-cache", help="Keep decoded training images in memory (small data sets). Default: no-cache.", show_default=False)] = None,
    device: Annotated[Device | None, typer.Option(help="Default: auto.", show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(help="Image preparation threads. Default: 2.", show_default=False, min=0)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue run --name from its last completed epoch.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for fatal errors.")] = False,
) -> None:
    """Train GLASS (or --baseline) on labelled images; writes RUNS_DIR/NAME/.

    Each epoch writes metrics.csv, curves.png, the best and last checkpoints and the resume state. Exit codes: 0 done; 2 usage or fatal error.
    """
    from glass_cli.config import TrainConfig
    from glass_cli.training.data import DataError
    from glass_cli.training.trainer import Trainer, TrainError, check_resume_options, load_run_config

    given = dict(locals())
    try:
        options = _training_options(given)
        if resume:
            if not options.get("name"):
                raise TrainError("--resume needs the --name of the run to continue")
            saved = load_run_config(options.get("runs_dir", "runs"), options["name"])
            check_resume_options(saved, options)
            keep = ("device", "workers", "cache_images", "name", "runs_dir")
            config = saved.replace(**{k: v for k, v in options.items() if k in keep})
        else:
            config = TrainConfig.from_dict(options)
        trainer = Trainer(config, resume=resume, console=err)
        try:
            if trainer.done:
                err.print(f"run {trainer.dir} already finished all {trainer.config.epochs} epochs", highlight=False)
            trainer.fit()
        finally:
            trainer.close()
    except (TrainError, DataError, ValueError) as exc:
        if debug:
            raise
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; continue with --resume", 130) from None
    if trainer.is_main:
        best = max(trainer.history, key=lambda r: r.score) if trainer.history else None
        lines = [f"run folder: {trainer.dir}"]
        if best is not None:
            lines.append(
                f"best: epoch {best.epoch}, val accuracy {best.val_acc:.4f}, AUROC "
                + ("n/a" if best.val_auroc is None else f"{best.val_auroc:.4f}")
                + f" -> {trainer.dir / 'best.safetensors'}"
            )
        typer.echo("\n".join(lines))


TUNE_EPILOG = """[bold]Examples[/bold]

  glass tune ../shared/data/train-v1 --backbone tf_efficientnet_lite0 --n-trials 100

  glass tune data/ --baseline --backbone resnet50 --n-trials 50 --space my-space.json

  glass tune data/ --backbone vit_base_patch16_224 --n-trials 100 --storage postgresql://user:pw@db/optuna   (one line per worker, any machine)

  glass train --config runs/tune/glass-tf_efficientnet_lite0/best-config.json --epochs 50

--n-trials is the study's target: run the same command again after an interrupt and it finishes the remaining trials; interrupted trials are retried with the same parameters. Flags such as --batch-size fix an option for every trial and remove it from the space.

[bold]Exit codes[/bold]: 0 the study has a best trial; 1 no trial completed, or this process stopped after repeated failures; 2 usage or fatal error; 130 interrupted (run the same command to continue).
"""

# glass tune flag -> TrainConfig field, for options fixed in every trial
_TUNE_FIELDS = {
    "local_backbone": "local_backbone",
    "batch_size": "batch_size",
    "num_crops": "num_crops",
    "crop_size": "crop_size",
    "seed": "seed",
    "augment": "augment",
    "limit_train": "limit_train",
    "limit_val": "limit_val",
    "val_fraction": "val_fraction",
    "cache": "cache_images",
    "workers": "workers",
}


class Metric(str, Enum):
    accuracy = "accuracy"
    auroc = "auroc"
    cv = "cv"


@app.command(epilog=TUNE_EPILOG)
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
        Metric,
        typer.Option(help="What to maximise: val accuracy or AUROC (best epoch of each trial), or cv: a leave-family-out cross-validation per trial (as glass cv; needs a manifest with a family column).")
    ] = Metric.accuracy,
    cv_folds: Annotated[int, typer.Option(help="With --metric cv: folds per trial.", min=2)] = 3,
    cv_real_sizes: Annotated[str, typer.Option(metavar="N,N,...", help="With --metric cv: long sides at which held-out reals are also scored.")] = "1024,512",
    cv_group_by: Annotated[GroupBy, typer.Option(help="With --metric cv: what each fold holds out whole (manifest column).")] = GroupBy.source,
    epochs: Annotated[int, typer.Option(help="Epochs per trial: Hyperband's maximum (the paper: 25).", min=1)] = 25,
    min_epochs: Annotated[int | None, typer.Option(help="Hyperband's minimum epochs before pruning. Default: epochs // 5.", min=1, show_default=False)] = None,
    runs_dir: Annotated[str, typer.Option(help="Folder for the study database, trial runs and reports (RUNS_DIR/tune/).")] = "runs",
    sampler_seed: Annotated[int, typer.Option(help="TPE sampler seed (the paper: 606).")] = 606,
    stale_after: Annotated[int, typer.Option(help="Seconds without a heartbeat after which a running trial counts as lost (process killed) and is retried.", min=2)] = 120,
    keep_checkpoints: Annotated[bool, typer.Option("--keep-checkpoints", help="Keep each trial's best checkpoint (default: only config, metrics and curves).")] = False,
    local_backbone: Annotated[str | None, typer.Option(help="timm model for the crops. Default: same as --backbone.", show_default=False)] = None,
    backbone_weights: Annotated[Path | None, typer.Option(help="timm-format weights for the global backbone.")] = None,
    local_backbone_weights: Annotated[Path | None, typer.Option(help="timm-format weights for the local backbone.")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Start both backbones from random weights.")] = False,
    batch_size: Annotated[int | None, typer.Option(help="Fix the batch size (removes it from the space).", min=1, show_default=False)] = None,
    num_crops: Annotated[int | None, typer.Option("--crops", "-k", help="Fix K (removes it from the space).", min=1, show_default=False)] = None,
    crop_size: Annotated[int | None, typer.Option(help="S, side of the global view and of each crop. Default: 224.", min=8, show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed of every trial. Default: 0.", show_default=False)] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="Training augmentation. Default: augment.", show_default=False)] = None,
    balance: Annotated[Balance | None, typer.Option(help="Class balance: weighted sampler, loss weights, or none. Default: sampler.", show_default=False)] = None,
    limit_train: Annotated[int | None, typer.Option(help="Train every trial on a class-stratified slice of N images.", min=1)] = None,
    limit_val: Annotated[int | None, typer.Option(help="Validate every trial on a class-stratified slice of N images.", min=1)] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Held-out share for data without a split. Default: 0.2.", show_default=False)] = None,
    cache: Annotated[bool | None, typer.Option("--cache/--no-cache", help="Keep decoded training images in memory (small data sets). Default: no-cache.", show_default=False)] = None,
    device: Annotated[Device | None, typer.Option(help="Default: auto.", show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(help="Image preparation threads. Default: 2.", show_default=False, min=0)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and Optuna's own log.")] = False,
) -> None:
    """Search hyperparameters with Optuna (TPE + Hyperband, as in the paper); resumable, any number of workers.

    Each trial is a glass train run of up to --epochs epochs, pruned early when it falls behind. At the end: a table of the best trials, RUNS_DIR/tune/STUDY/best-config.json (a glass train --config file), trials.csv, history.png and importance.png.
    """
    from glass_cli.training.data import DataError
    from glass_cli.training.trainer import TrainError
    from glass_cli.tuning.space import Space, SpaceError
    from glass_cli.tuning.study import METRIC_NAMES, TuneError, TuneOptions, best_table, run_study, summary_line

    given = dict(locals())
    result = None
    try:
        fixed = {key: given[flag] for flag, key in _TUNE_FIELDS.items() if given[flag] is not None}
        if no_pretrained:
            fixed["pretrained"] = False
        if backbone_weights is not None:
            fixed["global_weights"] = str(backbone_weights)
        if local_backbone_weights is not None:
            fixed["local_weights"] = str(local_backbone_weights)
        if balance is not None:
            fixed["balance"] = balance.value
        if device is not None:
            fixed["device"] = device.value
        options = TuneOptions(
            data=str(data),
            backbone=backbone,
            arch="baseline" if baseline else "glass",
            n_trials=n_trials,
            timeout=timeout,
            study=study or "",
            storage=storage or "",
            space=Space.load(space) if space is not None else None,
            metric=metric.value,
            epochs=epochs,
            min_epochs=min_epochs or 0,
            runs_dir=runs_dir,
            sampler_seed=sampler_seed,
            stale_after=stale_after,
            keep_checkpoints=keep_checkpoints,
            train=fixed,
            cv_folds=cv_folds,
            cv_real_sizes=_sizes(cv_real_sizes),
            cv_group_by=cv_group_by.value,
        )
        result = run_study(options, console=err, debug=debug)
    except (TuneError, SpaceError, TrainError, DataError, ValueError) as exc:
        if debug:
            raise
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; run the same command to continue the study (the interrupted trial is retried)", 130) from None
    except Exception as exc:  # a bug: say what, keep the traceback for --debug
        if debug:
            raise
        raise fail(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)") from None

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
    raise typer.Exit(1 if result.best is None or result.gave_up else 0)


EVAL_EPILOG = """[bold]Examples[/bold]

  glass eval ../shared/data/train-v1 --weights runs/lite0/best.safetensors --split val

  glass eval photos/ --weights model.safetensors --jpeg 75 --json -

  glass eval data/manifest.csv --weights model.safetensors --downscale 0.5 --json eval.json

  glass eval data/ --weights model.safetensors --long-side 512    (real photos as the web shows them)

[bold]Exit codes[/bold]: 0 every file scored; 2 usage or fatal error; 3 some files could not be read (they are listed and left out of the metrics).
"""


@app.command(name="eval", epilog=EVAL_EPILOG)
def eval_command(
    data: Annotated[Path, typer.Argument(help="Folder with real/ and fake/, or a manifest .csv.", show_default=False)],
    weights: Annotated[Path | None, typer.Option(help="Model checkpoint. Default: the shipped model, or $GLASS_WEIGHTS.")] = None,
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
    calibrated_out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where --calibrate writes the copy. Default: WEIGHTS-calibrated.safetensors beside the original.")
    ] = None,
    val_fraction: Annotated[float, typer.Option(help="Held-out share that defines 'val' for data without a split (as in glass train).")] = 0.2,
    device: Annotated[Device, typer.Option(help="Where the model runs.")] = Device.auto,
    batch_size: Annotated[int, typer.Option(help="Images per model call.", min=1)] = 8,
    workers: Annotated[int, typer.Option(help="Image preparation threads.", min=0)] = 2,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for fatal errors.")] = False,
) -> None:
    """Measure a checkpoint on labelled images: accuracy, balanced accuracy, AUROC, AP, ECE, TPR at 1% and 5% FPR, per generator and family.

    Images are prepared exactly as glass scan prepares them, so each file gets scan's score.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from glass_cli.evaluation.evaluate import EvalError, Perturbation, predict, summarize
    from glass_cli.evaluation.evaluate import calibrate as calibrate_threshold
    from glass_cli.inference.engines import EngineError, TorchEngine
    from glass_cli.models import checkpoint
    from glass_cli.models.backbones import BackboneError
    from glass_cli.outputs import report
    from glass_cli.training.data import DataError, assign_split, read_dataset, select

    out = err if json_out == "-" else Console(highlight=False)
    try:
        if not 0.0 < val_fraction < 1.0:
            raise EvalError(f"--val-fraction must lie in (0, 1), got {val_fraction}")
        perturb = Perturbation(jpeg=jpeg, downscale=downscale, long_side=long_side)
        samples = assign_split(read_dataset(data), val_fraction)
        chosen = select(samples, split)
        if not chosen:
            found = sorted({s.split for s in samples if s.split})
            raise EvalError(f"{data}: no images in split {split!r} (splits: {', '.join(found) or 'none'})")
        weights = checkpoint.resolve_weights(weights)
        engine = TorchEngine.from_checkpoint(weights, device=device.value)
        thr = engine.config.threshold if threshold is None else threshold
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True
        ) as progress:
            task = progress.add_task("evaluating", total=len(chosen))
            records = predict(
                chosen, engine, perturb=perturb, batch_size=batch_size, workers=workers, on_progress=lambda n: progress.advance(task, n)
            )
        summary = summarize(records, thr)
        if calibrate:
            calibration = calibrate_threshold(records, target_fpr)
            calibration.update(data=str(data), split=split, perturbation=perturb.describe(), source=str(weights))
            target = calibrated_out or Path(str(checkpoint.paths_for(weights)[0]).removesuffix(".safetensors") + "-calibrated")
            saved = checkpoint.save(
                engine.model, engine.config.replace(threshold=calibration["threshold"], calibration=calibration), target
            )
    except (DataError, EvalError, checkpoint.CheckpointError, EngineError, BackboneError) as exc:
        if debug:
            raise
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None

    title = f"{data}" + (f", split {split}" if split else "") + f": {perturb.describe()}, threshold {thr:g}"
    for table in report.eval_tables(summary, title):
        out.print(table)
    out.print(f"model: {engine.config.describe()} ({weights}), device: {engine.device}", markup=False, style="dim")
    if json_out:
        document = report.eval_document(
            summary,
            records,
            model=checkpoint.describe_file(weights),
            data=str(data),
            split=split,
            perturbation=perturb.to_dict(),
            device=engine.device,
        )
        report.write_json(document, json_out)
    if calibrate:
        tpr = "n/a" if calibration["tpr"] is None else f"{calibration['tpr']:.3f}"
        out.print(
            f"calibrated threshold {calibration['threshold']:.6g}: FPR {calibration['fpr']:.3f} on {calibration['real']} real images "
            f"(target {target_fpr:g}), TPR {tpr} on {calibration['fake']} AI images; written to {saved}",
            markup=False, soft_wrap=True,
        )
    raise typer.Exit(3 if summary["errors"] else 0)


CV_EPILOG = """[bold]Examples[/bold]

  glass cv ../shared/data/train-v1/manifest.csv --folds 3 --epochs 8

  glass cv ../shared/data/train-v1/manifest.csv --folds 3 --epochs 8 --baseline

  glass cv data/manifest.csv --config recipe.json --name recipe-a --real-sizes 1024,512,256

Each fold holds out whole families (the manifest's family column: generator families and camera makes / real sources), trains on every other image and scores the held-out ones as glass scan would, with the fold run's last checkpoint: reals as stored and shrunk to each --real-sizes long side, both classes re-encoded (--jpeg) and downscaled (--downscale). Writes RUNS_DIR/cv/NAME/ (cv.json, cv.png, one run per fold); running the same command again resumes it.

[bold]Exit codes[/bold]: 0 every fold done; 2 usage or fatal error; 3 done, but some held-out files could not be read (listed, left out of the numbers).
"""


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"expected long sides in pixels such as 1024,512, got {text!r}") from None
    if not sizes:
        raise typer.BadParameter("name at least one long side, e.g. 1024,512")
    return sizes


@app.command(name="cv", epilog=CV_EPILOG)
def cv_command(
    data: Annotated[list[Path], typer.Argument(help="Manifest .csv files (or folders holding manifest.csv) with a source (or family) column; several are used together.", show_default=False)],
    folds: Annotated[int, typer.Option(help="Number of folds; each holds out about 1/N of the fake families and of the real sources.", min=2)] = 3,
    config_file: Annotated[Path | None, typer.Option("--config", help="JSON file of training options (as for glass train).")] = None,
    name: Annotated[str | None, typer.Option(help="Cross-validation name: files go to RUNS_DIR/cv/NAME. Default: arch-backbone[-kK]-Nfold.", show_default=False)] = None,
    runs_dir: Annotated[str | None, typer.Option(help="Folder that holds the runs. Default: runs.", show_default=False)] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Cross-validate the resize-only baseline instead of GLASS.")] = False,
    backbone: Annotated[str | None, typer.Option(help="timm model name (global backbone). Default: tf_efficientnet_lite0.", show_default=False)] = None,
    local_backbone: Annotated[str | None, typer.Option(help="timm model for the crops. Default: same as --backbone.", show_default=False)] = None,
    backbone_weights: Annotated[Path | None, typer.Option(help="timm-format weights (.safetensors/.pth) for the global backbone.")] = None,
    local_backbone_weights: Annotated[Path | None, typer.Option(help="timm-format weights for the local backbone.")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Start both backbones from random weights.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Epochs per fold. Default: 10.", show_default=False, min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per training step and per scoring call. Default: 16.", show_default=False, min=1)] = None,
    num_crops: Annotated[int | None, typer.Option("--crops", "-k", help="K, native-resolution crops per image. Default: 4.", show_default=False, min=1)] = None,
    crop_size: Annotated[int | None, typer.Option(help="S, side of the global view and of each crop. Default: 224.", show_default=False, min=8)] = None,
    crop_scales: Annotated[str | None, typer.Option(metavar="M,M,...", help="GLASS local-branch scales: K crops of M*S native pixels per scale, shrunk to S. Default: 1 (native only).", show_default=False)] = None,
    lr_global: Annotated[float | None, typer.Option(help="Global backbone learning rate. Default: 2e-5.", show_default=False)] = None,
    lr_local: Annotated[float | None, typer.Option(help="Local backbone learning rate. Default: 1e-4.", show_default=False)] = None,
    lr_head: Annotated[float | None, typer.Option(help="Attention + classifier learning rate. Default: 1e-4.", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Default: 0.", show_default=False)] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="Training augmentation. Default: augment.", show_default=False)] = None,
    size_aug: Annotated[float | None, typer.Option(help="Probability of the size-aware rescale of both classes (replaces the factor downscale): long side log-uniform in [--size-aug-min, --size-aug-max]. Default: 0 (off).", show_default=False, min=0.0, max=1.0)] = None,
    size_aug_min: Annotated[int | None, typer.Option(help="Smallest long side of the size-aware rescale. Default: 384.", show_default=False, min=8)] = None,
    size_aug_max: Annotated[int | None, typer.Option(help="Largest long side of the size-aware rescale (never enlarges). Default: 1024.", show_default=False, min=8)] = None,
    balance: Annotated[Balance | None, typer.Option(help="Class balance: weighted sampler, per-source sampler (each source's share grows as the square root of its size), loss weights, or none. Default: sampler.", show_default=False)] = None,
    epoch_size: Annotated[int | None, typer.Option(help="Images drawn per epoch. Default: the training set's size.", show_default=False, min=1)] = None,
    reencode: Annotated[Reencode | None, typer.Option(help="Re-encode augmentation of both classes: jpeg (JPEG q60-100) or mixed (JPEG or WebP, sometimes twice). Default: jpeg.", show_default=False)] = None,
    group_by: Annotated[GroupBy, typer.Option(help="What each fold holds out whole: the manifest's source (gallery, repository, pipeline) or family column.")] = GroupBy.source,
    webp: Annotated[int, typer.Option(help="WebP quality of the WebP re-encode condition (0: leave it out).", min=0, max=100)] = 80,
    heldout_per_source: Annotated[int, typer.Option(help="Score at most N held-out images per source and class (0: all).", min=0)] = 0,
    limit_train: Annotated[int | None, typer.Option(help="Train each fold on a class-stratified slice of N images.", min=1)] = None,
    limit_val: Annotated[int | None, typer.Option(help="Held-out images the trainer monitors each epoch (scoring always uses all).", min=1)] = None,
    real_sizes: Annotated[str, typer.Option(metavar="N,N,...", help="Long sides at which held-out reals are also scored (never enlarged).")] = "1024,512",
    jpeg: Annotated[int, typer.Option(help="JPEG quality of the re-encode robustness condition.", min=1, max=100)] = 75,
    downscale: Annotated[float, typer.Option(help="Factor of the downscale robustness condition.")] = 0.5,
    target_fpr: Annotated[float, typer.Option(help="False-positive rate on held-out reals that the leave-source-out threshold aims at.")] = 0.05,
    calibrate: Annotated[
        Path | None,
        typer.Option(metavar="WEIGHTS", help="Save a copy of this checkpoint (a model of the same recipe trained on all the data) with the leave-source-out threshold."),
    ] = None,
    calibrated_out: Annotated[Path | None, typer.Option("--output", "-o", help="Where --calibrate writes the copy. Default: WEIGHTS-calibrated.safetensors.")] = None,
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA. Default: amp.", show_default=False)] = None,
    cache: Annotated[bool | None, typer.Option("--cache/--no-cache", help="Keep decoded training images in memory (small data sets). Default: no-cache.", show_default=False)] = None,
    device: Annotated[Device | None, typer.Option(help="Default: auto.", show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(help="Image preparation threads. Default: 2.", show_default=False, min=0)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for fatal errors.")] = False,
) -> None:
    """Leave-source-out cross-validation: train on some sources (galleries, repositories, cameras; or --group-by family), score on the others.

    Prints each number per fold with its mean ± standard deviation, the false-positive rate of every held-out real source and the detection rate of every held-out fake family.
    """
    from glass_cli.config import TrainConfig
    from glass_cli.evaluation.cv import FIGURE_FILE, RESULT_FILE, CvError, CvOptions, calibrate_checkpoint, run_cv, size_keys
    from glass_cli.evaluation.evaluate import EvalError
    from glass_cli.inference.engines import EngineError
    from glass_cli.models import checkpoint
    from glass_cli.models.backbones import BackboneError
    from glass_cli.outputs import report
    from glass_cli.training.data import DataError
    from glass_cli.training.trainer import TrainError

    given = dict(locals())
    try:
        config = TrainConfig.from_dict(_training_options(given))
        options = CvOptions(
            folds=folds, real_sizes=_sizes(real_sizes), jpeg=jpeg, downscale=downscale, batch_size=config.batch_size,
            workers=config.workers, device=config.device, target_fpr=target_fpr, group_by=group_by.value, webp=webp,
            heldout_per_source=heldout_per_source,
        )
        if calibrate is not None and not calibrate.is_file():
            raise CvError(f"{calibrate}: no such checkpoint (--calibrate)")
        result = run_cv(config, options, console=err)
        calibrated = calibrate_checkpoint(result, calibrate, calibrated_out) if calibrate is not None else None
    except (CvError, TrainError, DataError, EvalError, checkpoint.CheckpointError, EngineError, BackboneError, ValueError) as exc:
        if debug:
            raise
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; run the same command again to resume", 130) from None
    except Exception as exc:  # a bug: say what, keep the traceback for --debug
        if debug:
            raise
        raise fail(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)") from None

    out = Console(highlight=False)
    document = result.to_dict()
    for table in report.cv_tables(document):
        out.print(table)
    terms = ", ".join(size_keys(options))
    objective = "n/a" if result.objective is None else f"{result.objective:.4f}"
    out.print(f"objective (mean over folds of the AUROC averaged over {terms}): {objective}", markup=False, soft_wrap=True)
    out.print(f"wrote {result.root / RESULT_FILE} and {result.root / FIGURE_FILE} ({result.seconds:.0f} s)", markup=False, style="dim", soft_wrap=True)
    if calibrated is not None:
        path, record = calibrated
        out.print(f"threshold {record['threshold']:.6g} ({record['method'].removesuffix(' cross-validation')}, target FPR {record['target_fpr']:g}) written to {path}", markup=False, soft_wrap=True)
    raise typer.Exit(3 if result.errors else 0)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="glass")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
