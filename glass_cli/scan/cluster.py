"""``glass scan --ray``: the same scan, spread over a Ray cluster with Ray Data.

How it runs (``ray_scan_paths`` from Python, or ``glass scan --ray ADDRESS``):

1. The driver (the process running ``glass scan``) checks the options and walks the folders
   as a local scan does (``inference.job.scan_paths``), and opens the model once on its CPU
   to describe it for the outputs.
2. The walked list becomes a Ray dataset of (index, path) rows. CPU tasks read and prepare
   each file with ``inference.scan.prepare_file``, the local scan's own step, under the
   same byte, pixel, size and time limits.
3. An actor pool runs the engine: one actor per GPU the cluster reports (unless ``--device
   cpu``), else one per two CPUs. The model's files travel to the actors through Ray's
   object store, so a node needs glass-cli installed but not the model at any path. Each
   batch of prepared files is scored through ``inference.pipeline.batched`` and gets its
   verdict from ``inference.scan.apply_prediction``, as in a local scan.
4. The driver puts the results back in walk order and feeds them to the local scan's
   outputs (``outputs.sinks.ScanOutputs``) in the order a local scan streams them, so the
   JSON Lines, CSV and JSON files, the summary and the exit code are the same.

Files are read by the tasks from their paths: every node must see the scanned files at the
same path (a local folder on a one-machine Ray, or a shared file system such as NFS,
Lustre, CephFS or a bucket mounted through FUSE). Object-store URLs (s3://...) are not read.

Faults: a task or actor whose process dies (killed, out of memory, node lost) is retried by
Ray, at most ``MAX_RETRIES`` times; a file's record comes from the one attempt that
finished, so no file is lost or counted twice.
"""

from __future__ import annotations

import contextlib
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
from glass_cli.inference.engines import Prediction, engine_kind, open_engine
from glass_cli.inference.job import ScanJob, scan_paths
from glass_cli.inference.pipeline import batched, ordered_map
from glass_cli.inference.scan import (
    DEFAULT_FILE_TIMEOUT,
    DEFAULT_MIN_SIDE,
    VERDICT_ERROR,
    Decision,
    ScanError,
    ScanResult,
    Watermarks,
    apply_prediction,
    prepare_file,
    too_slow_reason,
)
from glass_cli.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from glass_cli.io.walk import WalkError
from glass_cli.models import checkpoint
from glass_cli.outputs import records
from glass_cli.preprocess.views import Views

MAX_RETRIES = 3
"""Attempts Ray makes again at a batch whose task or actor process died. Not unlimited (Ray
Data's default): a file that crashes its decoder every time must end the scan, not loop.
A dead actor is restarted as often as needed (Ray Data's default); each batch is bounded."""

KILL_ENV = "GLASS_TEST_KILL_WORKER"
"""Fault injection for the tests: a folder. A worker about to handle file NAME in stage
``prepare`` or ``score`` that can delete ``FOLDER/STAGE-NAME`` exits on the spot, as a
killed process would (only one worker can delete it, so this happens once)."""

ADDRESS_HELP = "local (start Ray on this machine), auto (the cluster this node belongs to), HOST:PORT of a head node, or ray://HOST:10001"
CONNECT_TIMEOUT = 10.0


# ---------------------------------------------------------------------------- connecting


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of an address that names one, else None (local, auto)."""
    rest = address.removeprefix("ray://")
    if address in ("local", "auto"):
        return None
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ScanError(f"--ray {address}: expected {ADDRESS_HELP}")
    return host.strip("[]"), int(port)


def connect(address: str, **init_kwargs: Any) -> bool:
    """Join (or for 'local' start) a Ray session; True when this call began it (the caller
    ends it with ``ray.shutdown()``), False when the process was connected already.
    An unreachable address is a one-line ScanError, checked before Ray tries for minutes."""
    import ray

    target = _host_port(address)
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
        raise ScanError(f"--ray {address}: no Ray cluster found ({_one_line(exc)}){hint}") from None
    except Exception as exc:
        raise ScanError(f"--ray {address}: cannot start or join Ray ({_one_line(exc)})") from None
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


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def _maybe_die(stage: str, path: str) -> None:
    folder = os.environ.get(KILL_ENV)
    if not folder:
        return
    try:
        os.unlink(os.path.join(folder, f"{stage}-{os.path.basename(path)}"))
    except OSError:
        return
    os._exit(1)


def _text(value) -> str:
    return os.fsdecode(bytes(value)) if isinstance(value, (bytes, bytearray, np.bytes_)) else str(value)


def _prepare_batch(batch: dict[str, np.ndarray], *, config, max_pixels: int, max_bytes: int, file_timeout: float | None,
                   min_side: int, explain: bool, dwt_dct: bool) -> dict[str, np.ndarray]:
    """CPU task: each row's file read and cut into views (``prepare_file``), one file at a time,
    given up after ``file_timeout`` seconds as a local scan does."""
    paths = [_text(p) for p in batch["path"]]
    indexes = batch["index"] if "index" in batch else np.full(len(paths), -1)
    reasons = batch["walk_error"] if "walk_error" in batch else [None] * len(paths)
    items = [(int(i), WalkError(p, r) if isinstance(r, str) else p) for i, p, r in zip(indexes, paths, reasons)]
    watermarks = Watermarks(dwt_dct=dwt_dct)

    def prepare(entry):
        index, item = entry
        _maybe_die("prepare", item.path if isinstance(item, WalkError) else item)
        result, views = prepare_file(item, config, max_pixels=max_pixels, max_bytes=max_bytes, min_side=min_side,
                                     explain=explain, watermarks=watermarks)
        result.index = index
        return result, views

    def too_slow(entry, seconds: float):
        index, item = entry
        path = item.path if isinstance(item, WalkError) else item
        return ScanResult(path=path, verdict=VERDICT_ERROR, error=too_slow_reason(seconds), index=index), None

    out_index, out_result, out_views = [], [], []
    for result, views in ordered_map(prepare, items, workers=1, timeout=file_timeout, on_timeout=too_slow):
        out_index.append(result.index)
        out_result.append(pickle.dumps(result, protocol=5))
        out_views.append(b"" if views is None else pickle.dumps(views, protocol=5))
    return {"index": np.array(out_index, dtype=np.int64), "result": _objects(out_result), "views": _objects(out_views)}


def _objects(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


class _Scorer:
    """Ray Data actor: the engine, opened once from the model files shipped to it."""

    def __init__(self, model, name: str, engine: str, device: str, precision: str, threads: int | None,
                 decision: Decision | None, uncertain: tuple[float, float] | None):
        import ray

        files = ray.get(model[0]) if isinstance(model, list) else model  # [reference]: fetched here, also after a restart
        folder = tempfile.mkdtemp(prefix="glass-model-")
        try:
            for file_name, data in files.items():
                Path(folder, file_name).write_bytes(data)
            self.engine = open_engine(Path(folder, name), engine, device, precision, threads=threads)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the engine holds the model in memory
        self.decision = decision or Decision(self.engine.config.threshold, uncertain)
        self.model_id, self.kind = getattr(self.engine, "model_id", None), getattr(self.engine, "kind", None)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = []
        for result_bytes, views_bytes in zip(batch["result"], batch["views"]):
            result: ScanResult = pickle.loads(result_bytes)
            result.model_id, result.engine = self.model_id, self.kind
            _maybe_die("score", result.path)
            items.append((result, pickle.loads(views_bytes) if len(views_bytes) else None))
        scored = []
        for result, views, p, attention in batched(items, self.engine, max(1, len(items))):
            if p is not None:
                apply_prediction(result, views, p, attention, self.decision)
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


def scan_dataset(
    ds,
    weights: str | os.PathLike | None = None,
    *,
    engine: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    threshold: float | None = None,
    uncertain: tuple[float, float] | None = None,
    decision: Decision | None = None,
    batch_size: int = 8,
    actors: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    file_timeout: float | None = DEFAULT_FILE_TIMEOUT,
    min_side: int = DEFAULT_MIN_SIDE,
    explain: bool = False,
    watermarks: bool = True,
):
    """The scan as a step of a Ray Data pipeline (needs a connected Ray session).

    ``ds`` has a ``path`` column (str, or bytes from ``os.fsencode``) and optionally ``index``
    (int) and ``walk_error`` (a reason, or None). Returns a dataset with, per file: ``index``,
    ``path``, ``verdict``, ``p_ai`` (NaN when not scored), ``record`` (the JSON Lines record a
    local scan writes for it), ``device`` and ``result`` (the pickled ScanResult;
    ``load_result`` turns it back). Rows come in no fixed order. The options mean what
    ``scan_paths``'s do; ``decision`` (a Decision) overrides ``threshold`` and ``uncertain``.
    """
    extras.require("scan --ray")
    import ray

    weights = checkpoint.resolve_weights(weights, engine)
    name, files = model_files(weights, engine)
    config = _config(weights, engine)
    if decision is None and threshold is not None:
        decision = Decision(threshold, uncertain)
    n, use_gpu = plan_actors(device, actors)
    actor_device = ("cuda" if device == "auto" else device) if use_gpu else "cpu"
    with _quiet():
        prepared = ds.map_batches(
            _prepare_batch, batch_size=batch_size, batch_format="numpy", num_cpus=1, max_retries=MAX_RETRIES,
            fn_kwargs=dict(config=config, max_pixels=max_pixels, max_bytes=max_bytes, file_timeout=file_timeout,
                           min_side=min_side, explain=explain, dwt_dct=watermarks),
        )
        return prepared.map_batches(
            _Scorer, batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=n),
            num_cpus=1, num_gpus=1 if use_gpu else 0, max_task_retries=MAX_RETRIES,
            fn_constructor_kwargs=dict(model=[ray.put(files)], name=name, engine=engine, device=actor_device, precision=precision,
                                       threads=None if use_gpu else 1, decision=decision, uncertain=uncertain),
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


class RayScanJob(ScanJob):
    """A checked scan (``scan_paths``) whose files are scored on Ray; the same outputs."""

    def __init__(self, job: ScanJob, address: str, actors: int | None):
        self.__dict__.update(job.__dict__)
        self.address, self.actors = address, actors
        engine, device, precision = self._engine_args
        self._ray_engine = (engine, device, precision)
        self._engine_args = (engine, "cpu", "auto")  # the driver only describes the model
        self._devices: list[str] = []
        self._owns_ray = False

    def open(self) -> RayScanJob:
        super().open()
        self._owns_ray = connect(self.address)
        return self

    def _scan(self) -> Iterator[ScanResult]:
        import ray

        engine, device, precision = self._ray_engine
        context = ray.data.DataContext.get_current()
        saved = (context.enable_progress_bars, context.print_on_execution_start)
        context.enable_progress_bars, context.print_on_execution_start = False, False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        try:
            scored = scan_dataset(
                file_dataset(self.files), self.weights, engine=engine, device=device, precision=precision,
                decision=self.decision, batch_size=self.batch_size, actors=self.actors, max_pixels=self.max_pixels,
                max_bytes=self.max_bytes, file_timeout=self.file_timeout, min_side=self.min_side,
                explain=self.outputs.explain, watermarks=self.watermarks.dwt_dct,
            )
            rows = scored.iter_rows()
            yield from local_order(self._note_devices(in_walk_order(_reported(rows))), self.batch_size)
        finally:
            context.enable_progress_bars, context.print_on_execution_start = saved

    def _note_devices(self, pairs: Iterator[tuple[ScanResult, str]]) -> Iterator[ScanResult]:
        for result, device in pairs:
            if device not in self._devices:
                self._devices.append(device)
            yield result

    @property
    def device(self) -> str:
        return "; ".join(self._devices) if self._devices else super().device

    def close(self) -> None:
        super().close()
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
        if isinstance(cause, (ScanError, ValueError, OSError)) or type(cause).__name__ in ("EngineError", "CheckpointError"):
            raise cause from None
        raise ScanError(f"the Ray scan failed: {_one_line(cause)}") from None


def _cause(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if inner is None or not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def ray_scan_paths(paths, *, address: str = "local", actors: int | None = None, **options: Any) -> RayScanJob:
    """``inference.job.scan_paths(paths, **options)`` with the files scored on Ray: the same
    checks before any work, the same outputs, results and exit code. ``address``: see
    ``ADDRESS_HELP``; a process already connected to Ray (its own ``ray.init``) keeps its
    session. ``actors``: engine actors (default: one per GPU, else one per two CPUs)."""
    extras.require("scan --ray")
    _host_port(address)
    if actors is not None and actors < 1:
        raise ScanError("--ray-actors must be at least 1")
    if options.get("trustmark"):
        raise ScanError("--trustmark does not run on Ray yet: scan without --ray to decode TrustMark")
    if options.get("decode", "cpu") != "cpu":
        raise ScanError("--decode gpu does not run on Ray: the Ray scan decodes in its CPU tasks")
    if options.get("pool", "auto") == "process":
        raise ScanError("--pool applies to a local scan; on Ray each file is prepared in a Ray task")
    return RayScanJob(scan_paths(paths, **options), address, actors)
