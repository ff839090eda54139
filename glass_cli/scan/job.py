"""A whole scan from Python, as ``glass scan`` runs it: paths and settings in, results out.

``scan_paths`` checks everything that can be checked cheaply first, in this order (the
settings checked themselves when built): the paths exist, the weights resolve, the model
file suits the engine, the shard parses, the output destinations can be written
(``outputs.sinks.check_destinations``), an optional reader asked for is installed. Only
then does it walk the folders, and ``ScanJob.open()`` loads the model (and TrustMark's,
when asked). So a bad option fails before any work. Iterating the opened job scans file by
file, feeds every requested output as results arrive, and finishes the outputs that are
written whole (JSON document, HTML report) when the last file is done::

    job = scan_paths(["photos/"], ScanSettings(outputs=OutputOptions(json="scan.json")))
    with job.open():
        for result in job:
            print(result.path, result.verdict, result.p_ai)
    print(job.exit_code)

Where the files are scored is the job's ``runner``: ``LocalRunner`` (this machine's
pools, ``scan.local``) or ``scan.cluster.RayRunner`` (a Ray cluster), chosen from
``settings.ray``. Either yields results in the order a local scan streams them, so the
outputs, summary and exit code do not depend on the runner.

With ``settings.resume`` the job first takes back the results its JSON Lines file already
holds (``scan.resume``): those files are not scanned again, come first in the iteration
(marked ``resumed``) and count in every output. With ``settings.cache`` the runner answers
files seen before from the cache (``scan.cache``) and the job writes each fresh answer to it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from glass_cli import extras
from glass_cli.errors import ScanError
from glass_cli.inference.engines import Engine, describe_model, engine_kind, open_engine
from glass_cli.io.walk import WalkError, inside_scanned_folder, iter_files, parse_shard, shard_files
from glass_cli.io.watermark import TRUSTMARK_MISSING, TrustMarkReader, WatermarkSetupError, trustmark_installed
from glass_cli.models import checkpoint
from glass_cli.outputs import records
from glass_cli.outputs.sinks import ScanContext, ScanOutputs, check_destinations
from glass_cli.results import VERDICT_REAL, Decision, ScanResult
from glass_cli.scan import resume
from glass_cli.scan.cache import CacheKey, ResultCache
from glass_cli.scan.local import scan
from glass_cli.scan.settings import ScanSettings
from glass_cli.scan.step import FileStep, Watermarks


class Runner(Protocol):
    """Where a job's files are scored."""

    def engine_place(self, settings: ScanSettings) -> tuple[str, str]:
        """(device, precision) for the engine the job opens in this process."""
        ...

    def open(self, settings: ScanSettings, engine: Engine) -> None: ...

    def results(self, files: list, weights: Path, engine: Engine, settings: ScanSettings, decision: Decision,
                watermarks: Watermarks, cache: ResultCache | None) -> Iterator[ScanResult]:
        """Every file's result, in the order a local scan streams them (``index``: the
        position in ``files``)."""
        ...

    def device(self, engine: Engine) -> str:
        """Where the model ran, in words."""
        ...

    def close(self) -> None: ...


class LocalRunner:
    """This machine: ``scan.local.scan`` on the job's open engine."""

    def engine_place(self, settings: ScanSettings) -> tuple[str, str]:
        return settings.device, settings.precision

    def open(self, settings: ScanSettings, engine: Engine) -> None:
        if settings.decode == "gpu" and not engine.device_name.startswith("cuda"):
            raise ScanError("--decode gpu needs a CUDA GPU for the torch engine; torch sees none here "
                            "(or --device cpu was given); the default --decode cpu works everywhere")

    def results(self, files: list, weights: Path, engine: Engine, settings: ScanSettings, decision: Decision,
                watermarks: Watermarks, cache: ResultCache | None) -> Iterator[ScanResult]:
        return scan(files, engine, settings, decision=decision, watermarks=watermarks, cache=cache)

    def device(self, engine: Engine) -> str:
        return engine.device

    def close(self) -> None:
        pass


class ScanJob:
    """A checked scan: ``files`` walked, model not loaded until ``open()``."""

    def __init__(self, settings: ScanSettings, paths: Sequence[Path], files: list[Path | WalkError], weights: Path,
                 runner: Runner):
        self.settings, self.paths, self.files, self.weights, self.runner = settings, paths, files, weights, runner
        self.engine: Engine | None = None
        self.model: dict[str, Any] = {}
        self.decision: Decision | None = None
        self.watermarks = Watermarks(dwt_dct=settings.watermarks)
        self.results: list[ScanResult] = []
        self.resumed: list[ScanResult] = []
        """Results taken from the JSON Lines records of an earlier run (``settings.resume``)."""
        self.todo: list[int] = list(range(len(files)))
        """Walk indexes of the files this run scans."""
        self.cache: ResultCache | None = None
        self._outputs: ScanOutputs | None = None

    def open(self) -> ScanJob:
        """Load the model, open the runner and the outputs (files that stream are created here)."""
        s = self.settings
        self.engine = open_engine(self.weights, s.engine_kind, *self.runner.engine_place(s))
        self.runner.open(s, self.engine)
        self.model = describe_model(self.weights, self.engine)
        self.decision = s.decision(self.engine.config.threshold)
        if s.trustmark:
            try:
                reader = TrustMarkReader(device="cuda" if self.engine.device_name.startswith("cuda") else "cpu")
            except WatermarkSetupError as exc:
                raise ScanError(str(exc)) from None
            self.watermarks = dataclasses.replace(self.watermarks, trustmark=reader)
        jsonl = s.outputs.jsonl
        if jsonl not in (None, "-"):
            values = resume.journal_settings(s, self.engine.model_id, self.engine.kind, self.decision)
            if s.resume:
                journal = resume.read_journal(jsonl)
                resume.check_settings(jsonl, journal, values)
                self.resumed, self.todo = resume.split_done(self.files, journal)
                resume.keep_only(journal, self.resumed)
            resume.write_settings(jsonl, values)
        if s.cache is not None:
            self.cache = ResultCache(s.cache)
            self.cache.check()
        context = ScanContext(self.model, self.decision, resume=s.resume, uses_crops=self.engine.config.uses_crops)
        self._outputs = ScanOutputs(s.outputs, self.paths, context)
        return self

    def __iter__(self) -> Iterator[ScanResult]:
        if self._outputs is None:
            self.open()
        s = self.settings
        pictures = FileStep(self.engine.config, s.limits, explain=True) if s.explain else None
        for result in self.resumed:
            if pictures is not None and result.p_ai is not None and (s.outputs.report or result.verdict != VERDICT_REAL):
                pictures.pictures_again(result)
            yield self._add(result)
        files = [self.files[i] for i in self.todo]
        key = CacheKey.of(s, self.engine.model_id) if self.cache is not None else None
        for result in self.runner.results(files, self.weights, self.engine, s, self.decision, self.watermarks, self.cache):
            result.index = self.todo[result.index]
            if self.cache is not None:
                self.cache.put([result], key)
            yield self._add(result)
        if self.cache is not None:
            self.cache.flush()
        self._outputs.finish(self.results, self.device)

    def _add(self, result: ScanResult) -> ScanResult:
        self._outputs.add(result)
        self.results.append(result)
        return result

    def run(self) -> list[ScanResult]:
        """Scan every file; the results in the order they streamed."""
        with self:
            for _ in self:
                pass
        return self.results

    @property
    def device(self) -> str:
        return self.runner.device(self.engine) if self.engine is not None else ""

    @property
    def exit_code(self) -> int:
        """glass scan's exit code for the results so far (outputs.records.exit_code)."""
        return records.exit_code(self.results)

    @property
    def cache_hits(self) -> int:
        """Files answered from the cache so far."""
        return sum(r.cached for r in self.results)

    def close(self) -> None:
        if self._outputs is not None:
            self._outputs.close()
        if self.cache is not None:
            self.cache.close()
        self.runner.close()

    def __enter__(self) -> ScanJob:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scan_paths(paths: Sequence[str | os.PathLike], settings: ScanSettings | None = None) -> ScanJob:
    """Check a scan's settings against the files and walk them (see the module docstring);
    the model is loaded by ``open()`` or on the first iteration. Errors: ScanError,
    CheckpointError, EngineError, MissingExtra, one line each."""
    settings = settings or ScanSettings()
    if settings.ray is not None:
        extras.require("scan --ray")
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists() and not p.is_symlink():
            raise ScanError(f"{p}: no such file or folder")
    weights = checkpoint.resolve_weights(settings.weights, settings.engine_kind)
    engine_kind(weights, settings.engine_kind)
    try:
        part = parse_shard(settings.shard) if settings.shard else None
    except ValueError as exc:
        raise ScanError(str(exc)) from None
    check_destinations(settings.outputs, paths)
    if settings.cache is not None:
        folder = inside_scanned_folder(settings.cache, paths)
        if folder is not None:
            raise ScanError(f"{settings.cache}: refusing to write inside the scanned folder {folder}; keep the cache elsewhere")
    if settings.trustmark and not trustmark_installed():
        raise ScanError(TRUSTMARK_MISSING)
    files = list(shard_files(iter_files(paths, settings.recursive), part))
    if not files:
        where = ", ".join(str(p) for p in paths)
        raise ScanError(f"no image files found in {where}" + (f" for shard {settings.shard}" if settings.shard else ""))
    if settings.ray is None:
        runner: Runner = LocalRunner()
    else:
        from glass_cli.scan.cluster import RayRunner

        runner = RayRunner(settings.ray, settings.ray_actors)
    return ScanJob(settings, paths, files, weights, runner)
