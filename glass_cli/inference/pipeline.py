"""The two moving parts every inference loop shares: preparing files ahead of the model in
a bounded thread pool (with a per-file time limit when asked), and batching prepared views
through an engine.

Scan and eval both run files through ``ordered_map`` then ``batched``; so does anything a
library user builds on them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np

from glass_cli.preprocess.views import Views, collate

T = TypeVar("T")
U = TypeVar("U")


class _Task:
    __slots__ = ("item", "started", "done", "value", "error", "abandoned")

    def __init__(self, item):
        self.item, self.started, self.done = item, None, threading.Event()
        self.value = self.error = None
        self.abandoned = False


class _Workers:
    """Daemon threads running ``fn`` on queued tasks. A task given up on (``abandon``) keeps
    its thread until it returns, and a fresh thread takes its place, so a stuck file costs
    one thread's memory, not the pool's throughput, and never keeps the process alive."""

    def __init__(self, fn: Callable, n: int):
        self.fn, self.queue, self.closed, self.threads = fn, queue.SimpleQueue(), False, 0
        for _ in range(n):
            self._spawn()

    def _spawn(self) -> None:
        self.threads += 1
        threading.Thread(target=self._run, name="glass-prepare", daemon=True).start()

    def _run(self) -> None:
        while True:
            task = self.queue.get()
            if task is None or self.closed:
                return
            task.started = time.monotonic()
            try:
                task.value = self.fn(task.item)
            except BaseException as exc:  # handed to the consumer, as Future.result does
                task.error = exc
            task.done.set()
            if task.abandoned:  # its replacement already runs: this thread retires
                return

    def submit(self, item) -> _Task:
        task = _Task(item)
        self.queue.put(task)
        return task

    def abandon(self, task: _Task) -> None:
        task.abandoned = True
        self._spawn()

    def close(self) -> None:
        """Stop every thread once its current call returns; queued items are not started."""
        self.closed = True
        for _ in range(self.threads):
            self.queue.put(None)


def ordered_map(
    fn: Callable[[T], U],
    items: Iterable[T],
    workers: int = 1,
    window: int = 16,
    *,
    timeout: float | None = None,
    on_timeout: Callable[[T, float], U] | None = None,
) -> Iterator[U]:
    """``map(fn, items)`` in input order. With ``workers > 1`` the calls run on threads
    (Pillow, hashlib and numpy release the GIL for their heavy parts) with at most
    ``window`` items in flight, so memory stays flat however long ``items`` is.

    With ``timeout`` (seconds, counted from when a worker starts the item) a call that runs
    longer is given up: ``on_timeout(item, timeout)`` stands in for its result, the items
    behind it keep flowing, and the late call's result is dropped when it comes."""
    if workers <= 1 and timeout is None:
        yield from map(fn, items)
        return
    workers = max(1, workers)
    pool = _Workers(fn, workers)

    def result(task: _Task) -> U:
        while not task.done.wait(0.05 if timeout is None or task.started is None else
                                 max(0.0, task.started + timeout - time.monotonic()) + 0.001):
            if timeout is not None and task.started is not None and time.monotonic() - task.started >= timeout:
                pool.abandon(task)
                return on_timeout(task.item, timeout) if on_timeout else None
        if task.error is not None:
            raise task.error
        return task.value

    try:
        ahead: deque[_Task] = deque()
        for item in items:
            ahead.append(pool.submit(item))
            if len(ahead) >= max(window, workers):
                yield result(ahead.popleft())
        while ahead:
            yield result(ahead.popleft())
    finally:
        pool.close()


def batched(
    items: Iterable[tuple[T, Views | None]], engine, batch_size: int
) -> Iterator[tuple[T, Views | None, float | None, np.ndarray | None]]:
    """Run prepared views through ``engine`` ``batch_size`` at a time.

    Yields (item, views, P(AI), attention row) per input: items without views (errors) come
    out at once with None scores; the others when their batch has run.
    """
    pending: list[tuple[T, Views]] = []

    def flush():
        pred = engine.predict(*collate([v for _, v in pending]))
        for i, (item, views) in enumerate(pending):
            yield item, views, float(pred.p_ai[i]), None if pred.attention is None else pred.attention[i]
        pending.clear()

    for item, views in items:
        if views is None:
            yield item, None, None, None
            continue
        pending.append((item, views))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()
