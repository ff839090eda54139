"""``glass scan --ray``: the same scan, spread over a Ray cluster with Ray Data.

How it runs (``ScanSettings(ray=ADDRESS)`` through ``scan.job.scan_paths``, or ``glass scan
--ray ADDRESS``):

1. The driver (the process running the job) checks the settings and walks the folders as a
   local scan does, and opens the model once on its CPU to describe it for the outputs.
2. The walked list becomes a Ray dataset of (index, path) rows. CPU tasks run the local
   scan's own per-file step (``scan.step.FileStep``) on each file, under the same byte,
   pixel, size and time limits.
3. An actor pool runs the engine: one actor per GPU the cluster reports (unless ``--device
   cpu``), else one per two CPUs. The model's files travel to the actors through Ray's
   object store, so a node needs glass-cli installed but not the model at any path. Each
   batch of prepared files is scored through ``inference.pipeline.batched`` and gets its
   verdict from ``ScanResult.score``, as in a local scan.
4. ``RayRunner`` puts the results back in walk order and hands them to the job in the order
   a local scan streams them, so the JSON Lines, CSV and JSON files, the summary and the
   exit code are the same.

Files are read by the tasks from their paths: every node must see the scanned files at the
same path (a local folder on a one-machine Ray, or a shared file system such as NFS,
Lustre, CephFS or a bucket mounted through FUSE). Object-store URLs (s3://...) are not read.

Faults: a task or actor whose process dies (killed, out of memory, node lost) is retried by
Ray, at most ``MAX_RETRIES`` times; a file's record comes from the one attempt that
finished, so no file is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pickle
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from glass_cli import extras
from glass_cli.errors import GlassError, ScanError, one_line
from glass_cli.inference.engines import Engine, Prediction, engine_kind, open_engine
from glass_cli.inference.pipeline import batched, ordered_map
from glass_cli.io.walk import WalkError
from glass_cli.models import checkpoint
from glass_cli.outputs import records
from glass_cli.preprocess.views import Views
from glass_cli.results import VERDICT_ERROR, Decision, ScanResult
from glass_cli.scan.cache import CacheKey, ResultCache
from glass_cli.scan.settings import ScanSettings, ray_target
from glass_cli.scan.step import FileStep, Watermarks, too_slow_reason

MAX_RETRIES = 3
"""Attempts Ray makes again at a batch whose task or actor process died. Not unlimited (Ray
Data's default): a file that crashes its decoder every time must end the scan, not loop.
A dead actor is restarted as often as needed (Ray Data's default); each batch is bounded."""

CONNECT_TIMEOUT = 10.0


# ---------------------------------------------------------------------------- connecting


def connect(address: str, **init_kwargs: Any) -> bool:
    """Join (or for 'local' start) a Ray session; True when this call began it (the caller
    ends it with ``ray.shutdown()``), False when the process was connected already.
    An unreachable address is a one-line ScanError, checked before Ray tries for minutes."""
    import ray

    target = ray_target(address)
    if target is not None:
        try:
            socket.create_connection(target, timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise ScanError(f"--ray {address}: cannot reach a Ray head node there ({exc.strerror or exc})") from None
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False, **init_kwargs}
    if address == "local":
        kwargs.setdefault("include_dashboard", False)
    try:
        with _quiet():
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        hint = "; start one with `ray start --head`, or use --ray local" if address == "auto" else ""
        raise ScanError(f"--ray {address}: no Ray cluster found ({one_line(exc)}){hint}") from None
    except Exception as exc:
        raise ScanError(f"--ray {address}: cannot start or join Ray ({one_line(exc)})") from None
    return True


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            from ray._common.deprecation import RayDeprecationWarning  # where Ray 2.5x keeps it
        except ImportError:
            RayDeprecationWarning = DeprecationWarning
        warnings.simplefilter("ignore", RayDeprecationWarning)
        yield


def plan_actors(device: str, actors: int | None) -> tuple[int, bool]:
    """(number of engine actors, whether each takes a GPU) for the cluster Ray reports.
    Every actor also holds one CPU, and at least one CPU must stay free for the tasks
    that read the files."""
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if device.startswith("cuda") and gpus == 0:
        raise ScanError(f"--device {device} was asked for, but the Ray cluster reports no GPU")
    use_gpu = gpus > 0 and device != "cpu"
    n = actors or (gpus if use_gpu else max(1, cpus // 2))
    if use_gpu and n > gpus:
        raise ScanError(f"--ray-actors {n}: the Ray cluster reports {gpus} GPU(s), one per actor")
    if n + 1 > cpus:
        raise ScanError(f"{n} engine actor(s) would hold all {cpus} CPU(s) of the Ray cluster and leave none to read the files "
                        "(lower --ray-actors)")
    return n, use_gpu


# ---------------------------------------------------------------------------- the stages


def _text(value) -> str:
    return os.fsdecode(bytes(value)) if isinstance(value, (bytes, bytearray, np.bytes_)) else str(value)


def prepare_batch(batch: dict[str, np.ndarray], *, step: FileStep) -> dict[str, np.ndarray]:
    """CPU task: each row's file through the per-file step, one file at a time, given up
    after the step's ``file_timeout`` as a local scan does."""
    paths = [_text(p) for p in batch["path"]]
    indexes = batch["index"] if "index" in batch else np.full(len(paths), -1)
    reasons = batch["walk_error"] if "walk_error" in batch else [None] * len(paths)
    items = [(int(i), WalkError(p, r) if isinstance(r, str) else p) for i, p, r in zip(indexes, paths, reasons)]

    def too_slow(entry, seconds: float):
        return step.failed(entry, too_slow_reason(seconds))

    out_index, out_result, out_views = [], [], []
    for result, views in ordered_map(step, items, workers=1, timeout=step.limits.file_timeout, on_timeout=too_slow):
        out_index.append(result.index)
        out_result.append(pickle.dumps(result, protocol=5))
        out_views.append(b"" if views is None else pickle.dumps(views, protocol=5))
    return {"index": np.array(out_index, dtype=np.int64), "result": _objects(out_result), "views": _objects(out_views)}


def _objects(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


class Scorer:
    """Ray Data actor: the engine, opened once from the model files shipped to it. A CPU
    actor runs torch on one thread (its process is glass's own); ONNX sessions take
    ``threads`` themselves."""

    def __init__(self, model, name: str, engine: str, device: str, precision: str, threads: int | None,
                 decision: Decision):
        import ray

        if threads and engine_kind(name, engine) == "torch":
            import torch

            torch.set_num_threads(threads)
        files = ray.get(model[0]) if isinstance(model, list) else model  # [reference]: fetched here, also after a restart
        folder = tempfile.mkdtemp(prefix="glass-model-")
        try:
            for file_name, data in files.items():
                Path(folder, file_name).write_bytes(data)
            self.engine = open_engine(Path(folder, name), engine, device, precision, threads=threads)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the engine holds the model in memory
        self.decision = decision

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = []
        for result_bytes, views_bytes in zip(batch["result"], batch["views"]):
            result: ScanResult = pickle.loads(result_bytes)
            result.model_id, result.engine = self.engine.model_id, self.engine.kind
            items.append((result, pickle.loads(views_bytes) if len(views_bytes) else None))
        scored = []
        for result, views, p, attention in batched(items, self.engine, max(1, len(items))):
            if p is not None:
                result.score(p, attention, views.plan.boxes if views.plan is not None else None, self.decision)
            elif result.cached:
                result.decide(self.decision)
            scored.append(result)
        scored.sort(key=lambda r: r.index)
        return {
            "index": np.array([r.index for r in scored], dtype=np.int64),
            "path": _objects([records.display_path(r.path) for r in scored]),
            "verdict": _objects([r.verdict for r in scored]),
            "p_ai": np.array([np.nan if r.p_ai is None else r.p_ai for r in scored], dtype=np.float64),
            "record": _objects([json.dumps(records.record(r)) for r in scored]),
            "device": _objects([self.engine.device] * len(scored)),
            "result": _objects([pickle.dumps(r, protocol=5) for r in scored]),
        }


def model_files(weights: str | os.PathLike, engine: str = "auto") -> tuple[str, dict[str, bytes]]:
    """(name to open, {file name: bytes}) of a model file and its companions: an ONNX export
    alone, a checkpoint's .safetensors with its .json."""
    weights = Path(weights)
    if engine_kind(weights, engine) == "onnx":
        return weights.name, {weights.name: weights.read_bytes()}
    tensors, config = checkpoint.paths_for(weights)
    return tensors.name, {p.name: p.read_bytes() for p in (tensors, config)}


def scan_dataset(ds, settings: ScanSettings | None = None, *, decision: Decision | None = None):
    """The scan as a step of a Ray Data pipeline (needs a connected Ray session).

    ``ds`` has a ``path`` column (str, or bytes from ``os.fsencode``) and optionally ``index``
    (int) and ``walk_error`` (a reason, or None). Returns a dataset with, per file: ``index``,
    ``path``, ``verdict``, ``p_ai`` (NaN when not scored), ``record`` (the JSON Lines record a
    local scan writes for it), ``device`` and ``result`` (the pickled ScanResult;
    ``load_result`` turns it back). Rows come in no fixed order. ``settings`` as for a local
    scan (model, device, threshold, batch size, limits, watermarks, ``ray_actors``);
    ``decision`` overrides its threshold and band.
    """
    extras.require("scan --ray")
    import ray

    settings = settings or ScanSettings()
    weights = checkpoint.resolve_weights(settings.weights, settings.engine)
    name, files = model_files(weights, settings.engine)
    config = _config(weights, settings.engine)
    decision = decision or settings.decision(config.threshold)
    n, use_gpu = plan_actors(settings.device, settings.ray_actors)
    actor_device = ("cuda" if settings.device == "auto" else settings.device) if use_gpu else "cpu"
    cache = key = None
    if settings.cache is not None:
        from glass_cli.inference.engines import describe_model

        cache, key = ResultCache(settings.cache), CacheKey.of(settings, describe_model(weights)["id"])
    step = FileStep(config, settings.limits, settings.explain, Watermarks(dwt_dct=settings.watermarks), cache=cache,
                    cache_key=key)
    with _quiet():
        prepared = ds.map_batches(
            prepare_batch, batch_size=settings.batch_size, batch_format="numpy", num_cpus=1, max_retries=MAX_RETRIES,
            fn_kwargs=dict(step=step),
        )
        return prepared.map_batches(
            Scorer, batch_size=settings.batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=n),
            num_cpus=1, num_gpus=1 if use_gpu else 0, max_task_retries=MAX_RETRIES,
            fn_constructor_kwargs=dict(model=[ray.put(files)], name=name, engine=settings.engine, device=actor_device,
                                       precision=settings.precision, threads=None if use_gpu else 1, decision=decision),
        )


def _config(weights: Path, engine: str):
    """The ModelConfig of a model file, without opening an engine."""
    from glass_cli.inference import onnxfile

    if engine_kind(weights, engine) == "onnx":
        return onnxfile.config_from_metadata(onnxfile.read_metadata(weights), weights)
    return checkpoint.read_config(weights)


def load_result(value: bytes) -> ScanResult:
    """The ScanResult in a ``result`` cell of ``scan_dataset``'s output."""
    return pickle.loads(value)


def file_dataset(files: Iterable[Path | WalkError]):
    """What ``iter_files`` walked as a Ray dataset: index (walk order), path (bytes, so any
    file name survives Arrow), walk_error."""
    import ray

    rows = [{"index": i, "path": os.fsencode(f.path if isinstance(f, WalkError) else f),
             "walk_error": f.reason if isinstance(f, WalkError) else None} for i, f in enumerate(files)]
    with _quiet():
        return ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 200)))


# ---------------------------------------------------------------------------- order


def in_walk_order(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[ScanResult, str]]:
    """(result, device) per row, released in index order (indexes 0..n-1, each once)."""
    waiting: dict[int, tuple[ScanResult, str]] = {}
    following = 0
    for row in rows:
        index = int(row["index"])
        if index in waiting or index < following:
            raise ScanError(f"the Ray scan returned file #{index} twice")
        waiting[index] = load_result(row["result"]), str(row["device"])
        while following in waiting:
            yield waiting.pop(following)
            following += 1
    if waiting:
        raise ScanError(f"the Ray scan lost file #{following}")


class _Replay:
    """Stands in for the engine when replaying the local stream order: scores are known."""

    def predict(self, global_batch, crops_batch) -> Prediction:
        return Prediction(np.zeros(len(global_batch)), None)


_PLACEHOLDER = Views(np.zeros(1, dtype=np.float32), None, None, (0, 0))


def local_order(results: Iterable[ScanResult], batch_size: int) -> Iterator[ScanResult]:
    """Results given in walk order, in the order a local scan of ``batch_size`` streams them:
    ``pipeline.batched`` lets a file that has no views (an error) out at once and holds
    scored files until their batch has run. Replaying through ``batched`` itself keeps the
    two orders the same."""
    items = ((r, None if r.verdict == VERDICT_ERROR else _PLACEHOLDER) for r in results)
    for result, _, _, _ in batched(items, _Replay(), batch_size):
        yield result


# ---------------------------------------------------------------------------- the job


class RayRunner:
    """A scan job's runner that scores its files on Ray (``scan.job.Runner``); the driver's
    engine runs on the CPU, only to describe the model."""

    def __init__(self, address: str, actors: int | None = None):
        self.address, self.actors = address, actors
        self._devices: list[str] = []
        self._owns_ray = False

    def engine_place(self, settings: ScanSettings) -> tuple[str, str]:
        return "cpu", "auto"

    def open(self, settings: ScanSettings, engine: Engine) -> None:
        self._owns_ray = connect(self.address)

    def results(self, files: list, weights: Path, engine: Engine, settings: ScanSettings, decision: Decision,
                watermarks: Watermarks, cache: ResultCache | None) -> Iterator[ScanResult]:
        import ray

        context = ray.data.DataContext.get_current()
        saved = (context.enable_progress_bars, context.print_on_execution_start)
        context.enable_progress_bars, context.print_on_execution_start = False, False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        settings = dataclasses.replace(settings, weights=weights, ray_actors=self.actors)
        try:
            scored = scan_dataset(file_dataset(files), settings, decision=decision)
            rows = scored.iter_rows()
            yield from local_order(self._note_devices(in_walk_order(_reported(rows))), settings.batch_size)
        finally:
            context.enable_progress_bars, context.print_on_execution_start = saved

    def _note_devices(self, pairs: Iterator[tuple[ScanResult, str]]) -> Iterator[ScanResult]:
        for result, device in pairs:
            if device not in self._devices:
                self._devices.append(device)
            yield result

    def device(self, engine: Engine) -> str:
        return "; ".join(self._devices) if self._devices else engine.device

    def close(self) -> None:
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False


def _reported(rows: Iterable) -> Iterator:
    """Ray's errors as one line: the original exception of a failed task or actor when Ray
    carries one (an EngineError raised while an actor opened the model stays itself)."""
    import ray

    try:
        yield from rows
    except ray.exceptions.RayError as exc:
        cause = _cause(exc)
        if isinstance(cause, (GlassError, ValueError, OSError)):
            raise cause from None
        raise ScanError(f"the Ray scan failed: {one_line(cause)}") from None


def _cause(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if inner is None or not isinstance(inner, BaseException):
            break
        exc = inner
    return exc
