"""Preparing files in worker processes, for machines where decode threads stop scaling.

Threads share one interpreter: the decoders release the GIL, but hashing small files,
parsing metadata, cutting and normalising views do not always, and on a 16-core machine a
thread pool stopped gaining at about 4.4x. ``process_map`` runs the same per-file function
(``prepare``: item -> (result, Views or None)) in separate processes instead:

- each worker writes the views of its file straight into a slot of one shared-memory
  block (``multiprocessing.shared_memory``), so the big float arrays never go through
  pickling; the parent copies them out of the slot once and frees it. Only the small
  result record travels through the worker's pipe;
- at most ``window`` files are in flight (dispatched, or finished but not yet handed on),
  and a file is handed out only with a free slot, so memory is bounded and flat however
  many files there are; results come out in input order;
- each worker holds one file at a time, so the parent knows which file a worker is on:
  a file past ``timeout`` has its worker killed (its memory is freed, unlike a stuck
  thread) and replaced, and a worker that dies (a decoder crash, the OOM killer) costs
  only its file, reported through ``on_lost``; no file is lost or given twice;
- workers ignore SIGINT: Ctrl-C reaches the parent, which stops every worker and
  removes the shared memory on the way out (the generator's ``finally``).

Workers start from a fork server that has already imported glass where the platform has
one (Linux), else by spawning; either way nothing of the parent's threads or open model is
inherited.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from glass_cli.preprocess.views import Views

POOLS: tuple[str, ...] = ("auto", "thread", "process")

AUTO_PROCESS_THRESHOLD = 4
"""``pool='auto'`` takes processes above this many workers: threads scaled to about 4.4x on
a 16-core machine and no further (measured on an H100 machine; bench/scan.py --workers)."""


def choose_pool(pool: str, workers: int) -> str:
    """'thread' or 'process' for ``pool`` ('auto', 'thread', 'process') and a worker count."""
    if pool == "auto":
        return "process" if workers > AUTO_PROCESS_THRESHOLD else "thread"
    if pool not in POOLS:
        raise ValueError(f"pool must be auto, thread or process, not {pool!r}")
    return pool


@dataclass(frozen=True)
class SlotLayout:
    """Where one file's views sit in a slot: the global view, then the crops (if any)."""

    global_shape: tuple[int, ...]
    crops_shape: tuple[int, ...] | None

    @property
    def nbytes(self) -> int:
        n = int(np.prod(self.global_shape))
        if self.crops_shape is not None:
            n += int(np.prod(self.crops_shape))
        return 4 * n  # float32

    @classmethod
    def for_config(cls, config) -> SlotLayout:
        s = config.crop_size
        crops = (config.num_crops * len(config.crop_scales), 3, s, s) if config.uses_crops else None
        return cls((3, s, s), crops)

    def arrays(self, buffer, slot: int) -> tuple[np.ndarray, np.ndarray | None]:
        base = slot * self.nbytes
        g = np.ndarray(self.global_shape, np.float32, buffer, base)
        if self.crops_shape is None:
            return g, None
        return g, np.ndarray(self.crops_shape, np.float32, buffer, base + g.nbytes)


def _worker(conn, shm_name: str, layout: SlotLayout, prepare: Callable, filters: list) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    warnings.filters[:] = filters  # warn (or not) as the parent process would
    shm = SharedMemory(name=shm_name)
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None:
                return
            seq, slot, item = message
            try:
                result, views = prepare(item)
            except BaseException as exc:  # handed to the parent, which raises it as the thread pool would
                conn.send((seq, "error", exc, None))
                continue
            meta = None
            if views is not None:
                g, c = layout.arrays(shm.buf, slot)
                g[...] = views.global_view
                if c is not None:
                    c[...] = views.crops
                meta = (views.plan, views.image_size)
                del g, c
            conn.send((seq, "ok", result, meta))
    finally:
        shm.close()


def _portable_filters() -> list:
    """The parent's warning filters for the standard warning categories: a filter on a
    category that some library defines (torch's, say) would make every worker import that
    library just to read its filters."""
    return [f for f in warnings.filters if getattr(f[2], "__module__", None) == "builtins"]


def _context():
    methods = mp.get_all_start_methods()
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["glass_cli.scan.step"])
        return ctx
    return mp.get_context("spawn")


class _Task:
    __slots__ = ("seq", "item", "slot", "started", "outcome")

    def __init__(self, seq, item):
        self.seq, self.item, self.slot, self.started, self.outcome = seq, item, None, None, None


class _Worker:
    def __init__(self, ctx, shm_name: str, layout: SlotLayout, prepare: Callable):
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, shm_name, layout, prepare, _portable_filters()),
                                   name="glass-prepare", daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.task: _Task | None = None

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=None if kill else 2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def process_map(
    prepare: Callable,
    items: Iterable,
    layout: SlotLayout,
    *,
    workers: int,
    window: int,
    timeout: float | None = None,
    on_timeout: Callable | None = None,
    on_lost: Callable | None = None,
) -> Iterator[tuple[object, Views | None]]:
    """``(prepare(item) for item in items)`` in input order, on ``workers`` processes.

    ``prepare`` must be picklable (a module-level function or an object of a module-level
    class) and return (result, Views or None). A file still running after ``timeout``
    seconds is replaced by ``on_timeout(item, timeout)``, one whose worker died by
    ``on_lost(item, exitcode)``; each returns (result, None)."""
    workers = max(1, workers)
    window = max(window, workers)
    ctx = _context()
    shm = SharedMemory(create=True, size=max(1, layout.nbytes * window))
    pool: list[_Worker] = []
    try:
        pool = [_Worker(ctx, shm.name, layout, prepare) for _ in range(workers)]
        free_slots = deque(range(window))
        ahead: deque[_Task] = deque()  # in input order: waiting, running or done
        waiting: deque[_Task] = deque()
        source = iter(items)
        exhausted, seq = False, 0

        def finish(task: _Task, outcome) -> None:
            task.outcome = outcome
            if task.slot is not None:
                free_slots.append(task.slot)
                task.slot = None

        while True:
            while not exhausted and len(ahead) < window:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                task = _Task(seq, item)
                seq += 1
                ahead.append(task)
                waiting.append(task)
            for i, w in enumerate(pool):
                if w.task is None and waiting and free_slots:
                    if not w.process.is_alive():  # died idle (killed from outside): replace it first
                        w.stop(kill=True)
                        w = pool[i] = _Worker(ctx, shm.name, layout, prepare)
                    task = waiting.popleft()
                    task.slot, task.started = free_slots.popleft(), time.monotonic()
                    try:
                        w.conn.send((task.seq, task.slot, task.item))
                    except OSError:  # it died since the check: the file was never started, so give it to a fresh worker
                        free_slots.append(task.slot)
                        task.slot = task.started = None
                        waiting.appendleft(task)
                        w.stop(kill=True)
                        pool[i] = _Worker(ctx, shm.name, layout, prepare)
                        continue
                    w.task = task
            while ahead and ahead[0].outcome is not None:
                kind, value = ahead.popleft().outcome
                if kind == "error":
                    raise value
                yield value
            if not ahead:
                if exhausted:
                    return
                continue
            busy = [w for w in pool if w.task is not None]
            wait_for = None
            if timeout is not None and busy:
                wait_for = max(0.0, min(w.task.started for w in busy) + timeout - time.monotonic()) + 0.001
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=wait_for)
            for i, w in enumerate(pool):
                task = w.task
                if task is None:
                    continue
                if w.conn in ready:
                    try:
                        got_seq, kind, value, meta = w.conn.recv()
                    except (EOFError, OSError):
                        got_seq = None
                    if got_seq == task.seq:
                        if kind == "ok" and meta is not None:
                            g, c = layout.arrays(shm.buf, task.slot)
                            plan, size = meta
                            views = Views(g.copy(), None if c is None else c.copy(), plan, size)
                            del g, c
                            finish(task, ("ok", (value, views)))
                        else:
                            finish(task, (kind, (value, None) if kind == "ok" else value))
                        w.task = None
                        continue
                if not w.process.is_alive() or w.process.sentinel in ready:
                    w.process.join()
                    code = w.process.exitcode
                    finish(task, ("ok", on_lost(task.item, code) if on_lost else (None, None)))
                    w.task = None
                    w.stop(kill=True)
                    pool[i] = _Worker(ctx, shm.name, layout, prepare)
                elif timeout is not None and time.monotonic() - task.started >= timeout:
                    w.stop(kill=True)  # killing frees what the stuck decoder held
                    finish(task, ("ok", on_timeout(task.item, timeout) if on_timeout else (None, None)))
                    pool[i] = _Worker(ctx, shm.name, layout, prepare)
    finally:
        for w in pool:
            w.stop(kill=w.task is not None)
        shm.close()
        shm.unlink()


def exit_reason(code: int | None) -> str:
    """Words for a worker process's exit code (negative: killed by that signal)."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"

