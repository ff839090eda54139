"""glass export: inference.export.export writes and verifies the file; this prints what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glass_cli.cli import options as o
from glass_cli.cli.app import app
from glass_cli.cli.errors import err, needs, reported

EPILOG = """[bold]Examples[/bold]

  glass export --onnx --weights model.safetensors -o model.onnx

  glass export --onnx --weights model.safetensors --fp16 -o model.fp16.onnx

  glass scan ./photos --model model.onnx

[bold]Exit codes[/bold]: 0 exported and verified; 4 ONNX Runtime disagrees with torch beyond the tolerance (nothing written); 2 usage or fatal error.
"""


@app.command(epilog=EPILOG)
def export(
    onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX (the only format so far; required).")] = False,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", "--model", help="Checkpoint to export, or a shipped model's name: default (the resize-only baseline), baseline, glass. Default: the shipped model, or $GLASS_WEIGHTS."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Where to write the .onnx file. Default: NAME.onnx in the current folder."),
    ] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision weights and compute (inputs/outputs stay float32).")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Also quantise to INT8 (static, calibrated on --calibration pictures) for CPUs; writes NAME.int8.onnx.")] = False,
    calibration: Annotated[Path | None, typer.Option(metavar="DATA", help="With --int8: a labelled manifest .csv or real/ fake/ folder whose pictures (both classes, every source) calibrate the activation ranges.")] = None,
    calibration_images: Annotated[int, typer.Option(help="With --int8: calibration pictures to use.", min=2)] = 256,
    opset: Annotated[int, typer.Option(help="ONNX opset version (18 or newer).")] = 18,
    debug: o.Debug = False,
) -> None:
    """Export a checkpoint to one self-contained ONNX file for [bold]glass scan --model FILE.onnx[/bold].

    Batch size and number of crops stay dynamic; the model config travels in the file's metadata. The export is checked with onnx.checker and compared with torch in ONNX Runtime before it is written.
    """
    needs("export", debug)
    from glass_cli.inference.export import STEPS, ExportError, default_output
    from glass_cli.inference.export import export as run_export
    from glass_cli.models import checkpoint
    from glass_cli.outputs.progress import progress

    with reported(debug), progress(err, info=False) as bar:
        if not onnx:
            raise ExportError("name the export format: --onnx (the only one so far)")
        weights = checkpoint.resolve_weights(weights, "torch")
        task = bar.add_task(STEPS[0], total=len(STEPS)) if bar else None

        def step(i: int, name: str) -> None:  # a bar on a terminal, a line per step elsewhere
            if bar:
                bar.update(task, completed=i - 1, description=name)
            else:
                err.print(f"export step {i}/{len(STEPS)}: {name}", markup=False)

        if int8:
            if fp16 or calibration is None:
                raise ExportError("--int8 needs --calibration DATA (labelled pictures) and an fp32 export (not --fp16)")
            from glass_cli.inference.quantize import export_int8

            out = output or default_output(weights).with_suffix(".int8.onnx")
            result, quantized = export_int8(weights, out, calibration, images=calibration_images, on_step=step)
        else:
            result = run_export(weights, output or default_output(weights, fp16), fp16=fp16, opset=opset, on_step=step)
    if int8:
        typer.echo(f"wrote {quantized.path}: {result.config.describe()}, int8, {quantized.nbytes / 1e6:.1f} MB; calibrated on "
                   f"{quantized.images} pictures ({quantized.real} real, {quantized.fake} AI, {quantized.sources} sources)")
        typer.echo(f"fp32 export: onnx.checker passed; {result.describe_checks()}")
        return
    typer.echo(f"wrote {result.path}: {result.config.describe()}, {result.precision}, opset {result.opset}, {result.nbytes / 1e6:.1f} MB")
    typer.echo(f"onnx.checker passed; {result.describe_checks()}")
