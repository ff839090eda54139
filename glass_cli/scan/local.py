"""The scan on this machine: files through the per-file step on a pool of workers, then in
batches through an open engine, one ScanResult per file.

``scan`` is a generator, so callers (the scan job, a notebook, a service) can stream
results, write them as they come, or stop early::

    engine = open_engine("weights/baseline-lite0.onnx")
    for result in scan(["photos/"], engine, ScanSettings(workers=2)):
        print(result.path, result.verdict, result.p_ai)

Workers are threads, or processes (``inference.processes``; 'auto': processes above 4
workers, where threads stop scaling); results do not depend on which, nor on their number.
In a process a stuck file's worker is killed, not only left behind. With ``decode='gpu'``
(torch engine) the workers are threads that only read, hash and parse headers, and JPEGs are
decoded and cut into views on the engine's device (``scan.device``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from glass_cli.errors import ScanError
from glass_cli.inference.engines import Engine
from glass_cli.inference.pipeline import batched, ordered_map
from glass_cli.inference.processes import SlotLayout, choose_pool, exit_reason, process_map
from glass_cli.io.digest import usable_cores
from glass_cli.io.walk import WalkError
from glass_cli.results import Decision, ScanResult
from glass_cli.scan.cache import CacheKey, ResultCache
from glass_cli.scan.settings import ScanSettings
from glass_cli.scan.step import FileStep, Watermarks, lost_reason, too_slow_reason


def default_workers() -> int:
    """Decode workers: one per core the process may use, at least 1."""
    return usable_cores()


def pool_kind(settings: ScanSettings, workers: int, watermarks: Watermarks) -> str:
    """'thread' or 'process' for these settings: --decode gpu and TrustMark read in threads
    (settings refuse an explicit --pool process with either)."""
    if settings.decode == "gpu" or watermarks.trustmark is not None:
        return "thread"
    return choose_pool(settings.pool, workers)


def scan(
    files: Iterable[Path | WalkError | str | os.PathLike],
    engine: Engine,
    settings: ScanSettings | None = None,
    *,
    decision: Decision | None = None,
    watermarks: Watermarks | None = None,
    cache: ResultCache | None = None,
) -> Iterator[ScanResult]:
    """Scan ``files`` (paths, or what ``io.walk.iter_files`` yields) with an open ``engine``.

    Yields one ScanResult per file: errors at once, good files when their batch has run.
    ``settings`` gives the batch size, workers, pool, decode and per-file limits (its model,
    walk and output fields are the scan job's business, not read here); ``decision``
    defaults to the settings' threshold and band, else the model's own threshold;
    ``watermarks`` to the SD/SDXL ones when ``settings.watermarks`` (TrustMark needs an
    open reader: ``scan.job`` makes one). With ``cache`` a file answered before is not
    decoded or scored (``scan.cache``); writing fresh answers to it is the caller's.
    """
    settings = settings or ScanSettings()
    config = engine.config
    if decision is None:
        decision = settings.decision(config.threshold)
    watermarks = watermarks or Watermarks(dwt_dct=settings.watermarks)
    on_device = settings.decode == "gpu"
    if on_device and engine.kind != "torch":
        raise ScanError("--decode gpu needs the torch engine (a .safetensors checkpoint, --engine torch)")
    workers = settings.workers or default_workers()
    key = CacheKey.of(settings, engine.model_id) if cache is not None else None
    step = FileStep(config, settings.limits, settings.explain, watermarks, engine.model_id, engine.kind, on_device,
                    cache, key)
    timeout = settings.limits.file_timeout

    def too_slow(indexed, seconds: float) -> tuple[ScanResult, None]:
        return step.failed(indexed, too_slow_reason(seconds))

    def lost(indexed, code: int | None) -> tuple[ScanResult, None]:
        return step.failed(indexed, lost_reason(exit_reason(code)))

    window = max(2 * settings.batch_size, 2 * workers)
    if pool_kind(settings, workers, watermarks) == "process":
        ready = process_map(step, enumerate(files), SlotLayout.for_config(config), workers=workers, window=window,
                            timeout=timeout, on_timeout=too_slow, on_lost=lost)
    else:
        ready = ordered_map(step, enumerate(files), workers=workers, window=window, timeout=timeout, on_timeout=too_slow)
    if on_device:
        from glass_cli.scan import device

        batches = device.device_batched(ready, engine, settings.batch_size, device.DeviceDecoder(config, engine.device_name),
                                        step)
    else:
        batches = batched(ready, engine, settings.batch_size)
    for result, views, p, attention in batches:
        if p is not None:
            result.score(p, attention, views.plan.boxes if views.plan is not None else None, decision)
        elif result.cached:
            result.decide(decision)
        yield result
