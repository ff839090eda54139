"""glass scan: scan.job.scan_paths does the work; this renders the tables and summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from glass_cli.cli import options as o
from glass_cli.cli.app import app
from glass_cli.cli.errors import err, reported

EPILOG = """[bold]Examples[/bold]

  glass scan ./photos --threshold 0.7

  glass scan ./inbox --json report.json --report report.html --save-crops crops/

  glass scan ./inbox --uncertain 0.1 --jsonl - | jq 'select(.verdict != "real")'

  glass scan ./photos --model model.onnx    (ONNX Runtime; no torch at scan time)

  glass scan /shared/photos --ray auto --jsonl scan.jsonl    (on a Ray cluster; pip install 'glass-cli\\[ray]')

[bold]Exit codes[/bold]: 0 nothing flagged; 1 at least one file flagged as AI or uncertain; 2 usage or fatal error; 3 nothing flagged but some files could not be scanned.
"""


@app.command(epilog=EPILOG)
@o.panels({
    "Verdicts": ["threshold", "uncertain", "show_all"],
    "Model": ["weights", "engine_name", "device", "precision"],
    "Outputs": ["json_out", "jsonl_out", "csv_out", "save_crops", "report_html"],
    "Files": ["recursive", "shard", "max_pixels", "max_bytes", "file_timeout", "min_side"],
    "Long scans": ["resume", "cache"],
    "Speed": ["batch_size", "workers", "pool", "decode"],
    "Evidence": ["watermarks", "trustmark"],
    "Cluster": ["ray_address", "ray_actors"],
})
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Image files and/or folders to scan.", show_default=False)],
    threshold: Annotated[
        float | None,
        typer.Option(help="Flag a file when P(AI) >= this. Default: the model's own threshold.", min=0.0, max=1.0),
    ] = None,
    uncertain: Annotated[
        str | None, typer.Option(metavar="WIDTH|LOW:HIGH", help="Report P(AI) near the threshold as 'uncertain': WIDTH on either side of it (0.1), or the band [LOW, HIGH), which must hold the threshold so that verdicts follow the scores.")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            "--model",
            help="Model: a checkpoint (.safetensors + .json), an export from glass export --onnx (.onnx), "
            "or a shipped model's name: default (the resize-only baseline), baseline, glass. Default: the shipped model, or $GLASS_WEIGHTS.",
        ),
    ] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="One JSON document with every file's record ('-' = stdout).")] = None,
    jsonl_out: Annotated[str | None, typer.Option("--jsonl", help="One JSON record per line, written as files finish ('-' = stdout).")] = None,
    csv_out: Annotated[str | None, typer.Option("--csv", help="One CSV row per file, written as files finish ('-' = stdout).")] = None,
    save_crops: Annotated[str | None, typer.Option(metavar="DIR", help="Save flagged files' overlays as PNG, and a GLASS model's crops.")] = None,
    report_html: Annotated[str | None, typer.Option("--report", metavar="FILE.html", help="Write a self-contained HTML report.")] = None,
    device: o.DeviceOption = o.Device.auto,
    precision: Annotated[
        o.Precision, typer.Option(help="Torch engine arithmetic: auto = bf16 on CPUs with bfloat16 instructions (avx512_bf16, AMX), else fp32; bf16 also on CUDA; fp16 on CUDA only. A reduced precision gets its own model id (.../bf16).")
    ] = o.Precision.auto,
    decode: Annotated[
        o.Decode, typer.Option(help="Where JPEGs are decoded: cpu (worker threads or processes), or gpu (nvJPEG and views on the GPU; torch engine on CUDA).")
    ] = o.Decode.cpu,
    engine_name: Annotated[
        o.Engine,
        typer.Option("--engine", help="torch for checkpoints, onnx (ONNX Runtime) for .onnx files; auto picks by suffix."),
    ] = o.Engine.auto,
    batch_size: Annotated[int, typer.Option(help="Images per model call, across files.", min=1)] = 8,
    workers: Annotated[
        int | None, typer.Option(help="Workers reading and decoding files ahead of the model. Default: one per CPU core.", min=1)
    ] = None,
    pool: Annotated[
        o.Pool, typer.Option(help="Workers as threads, or processes (a stuck file's worker is killed); auto: processes above 4 workers.")
    ] = o.Pool.auto,
    shard: Annotated[
        str | None, typer.Option(metavar="I/N", help="Scan only shard I of N (stable split by path) to spread a corpus over N machines.")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray", metavar="ADDRESS", help="Score the files on Ray (pip install 'glass-cli\\[ray]'): local (start Ray on this machine), auto (this node's cluster), HOST:PORT of a head node, or ray://HOST:10001.")
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option(help="With --ray: engine actors. Default: one per GPU the cluster reports, else one per two CPUs.", min=1)
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")] = True,
    show_all: Annotated[bool, typer.Option("--all", help="List every scanned file, not only the flagged ones.")] = False,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse images with more pixels than this (decompression bombs).", min=1)
    ] = o.MAX_PIXELS,
    max_bytes: Annotated[
        int, typer.Option(metavar="SIZE", parser=o.byte_size, help="Refuse files larger than this without reading them (512M, 2G; K/M/G are powers of 1024).")
    ] = o.MAX_BYTES,
    file_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Give up on a file still being read or decoded after this long; 0 = no limit.", min=0)
    ] = o.FILE_TIMEOUT,
    min_side: Annotated[
        int, typer.Option(metavar="PX", help="Do not score images with a side shorter than this; they are reported as too small to judge (held-out real photos of 64-127 px were flagged 25% of the time).", min=1)
    ] = o.MIN_SIDE,
    watermarks: Annotated[
        bool, typer.Option("--watermarks/--no-watermarks", help="Read the invisible watermarks that Stable Diffusion and SDXL pipelines embed (evidence beside P(AI)).")
    ] = True,
    resume: Annotated[
        bool, typer.Option("--resume", help="Carry on a stopped scan: keep the records already in --jsonl FILE (same path, size and modification time), scan the rest, and report the whole scan.")
    ] = False,
    cache: Annotated[
        Path | None, typer.Option(metavar="FILE", help="A result cache (SQLite): files whose bytes were scanned before with this model and these limits are answered from it without decoding or scoring.")
    ] = None,
    trustmark: Annotated[
        bool, typer.Option("--trustmark", help="Also decode Adobe TrustMark watermarks: needs pip install 'glass-cli\\[trustmark]'; its models are fetched from Adobe on first use.")
    ] = False,
    debug: o.Debug = False,
) -> None:
    """Scan images and flag the ones made by generative AI.

    Prints a table of the flagged files with P(AI), the provenance evidence found in the file and, with a GLASS model (--weights glass), the crops it attended to most, then a summary line. Never writes inside the scanned folders.
    """
    from glass_cli.outputs import records, tables
    from glass_cli.outputs.progress import progress
    from glass_cli.outputs.sinks import OutputOptions
    from glass_cli.scan.job import scan_paths
    from glass_cli.scan.settings import Limits, ScanSettings

    out = err if "-" in (json_out, jsonl_out, csv_out) else Console(highlight=False)
    job = None
    with reported(debug, interrupted=lambda: f"interrupted after {len(job.results) if job else 0} files"):
        settings = ScanSettings(
            weights=weights, engine=engine_name.value, device=device.value, precision=precision.value, threshold=threshold,
            uncertain=o.band(uncertain), batch_size=batch_size, workers=workers, pool=pool.value, decode=decode.value,
            shard=shard, recursive=recursive,
            limits=Limits(max_pixels=max_pixels, max_bytes=max_bytes, file_timeout=file_timeout or None, min_side=min_side),
            watermarks=watermarks, trustmark=trustmark,
            outputs=OutputOptions(json=json_out, jsonl=jsonl_out, csv=csv_out, save_crops=save_crops, report=report_html),
            ray=ray_address, ray_actors=ray_actors, resume=resume, cache=cache)
        job = scan_paths(paths, settings)
        with job.open():
            if resume:
                err.print(f"resumed: {len(job.resumed)} files already scanned in {Path(jsonl_out).name}, "
                          f"{len(job.todo)} to scan", markup=False, soft_wrap=True)
            with progress(err, info=False, elapsed=False) as bar:
                label = f"scanning ({len(job.resumed)} skipped)" if resume else "scanning"
                task = bar.add_task(label, total=len(job.files), completed=len(job.resumed)) if bar else None
                for result in job:
                    if bar and not result.resumed:
                        bar.advance(task)

    roots = [str(p) for p in job.paths]
    for table in (tables.results_table(job.results, show_all=show_all, roots=roots, width=out.width),
                  tables.errors_table(job.results, roots, width=out.width)):
        if table is not None:
            out.print(table)
    out.print(records.summary_line(job.results, job.decision.threshold), markup=False, soft_wrap=True)  # one line, never broken
    if cache is not None:
        err.print(f"cache: {job.cache_hits} of {len(job.todo)} files answered from {cache.name}", markup=False, style="dim")
    sep = ", " if out.width >= tables.WIDE else "\n"
    out.print(f"model: {job.engine.config.describe()} ({job.model['id']}){sep}device: {job.device}", markup=False, style="dim", soft_wrap=True)
    raise typer.Exit(job.exit_code)
