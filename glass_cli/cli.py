"""The `glass` command line: parse options, call the library, render. No model logic here.

Library modules are imported inside each command so that `glass --help` does not pay for
torch and timm.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import __version__

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
        Precision, typer.Option(help="Torch engine arithmetic: auto = bf16 on CUDA, fp32 on CPU.")
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

    from . import checkpoint, report
    from .engines import EngineError, describe_model, engine_kind, open_engine
    from .outputs import OutputOptions, ScanOutputs
    from .scan import Decision, ScanError
    from .scan import scan as run_scan
    from .scan import default_workers
    from .walk import iter_files, parse_shard, shard_files

    options = OutputOptions(json_out, jsonl_out, csv_out, save_crops, report_html)
    out = err if options.uses_stdout else Console(highlight=False)
    results = []
    try:
        for p in paths:
            if not p.exists() and not p.is_symlink():
                raise ScanError(f"{p}: no such file or folder")
        weights = weights or checkpoint.default_weights()
        if weights is None:
            raise checkpoint.CheckpointError(
                "no model weights: glass has no shipped default model yet; pass --weights FILE.safetensors "
                "(a checkpoint saved by glass_cli.checkpoint.save) or set GLASS_WEIGHTS"
            )
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
    out.print(f"model: {config.describe()} ({model_info['id']}), device: {engine.device}", markup=False, style="dim")
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
    from . import checkpoint
    from .export import ExportError, ParityError, default_output
    from .export import export as run_export

    try:
        if not onnx:
            raise ExportError("name the export format: --onnx (the only one so far)")
        weights = weights or checkpoint.default_weights()
        if weights is None:
            raise checkpoint.CheckpointError(
                "no model weights: glass has no shipped default model yet; pass --weights FILE.safetensors"
            )
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="glass")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
