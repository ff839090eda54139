"""The two moving parts every inference loop shares: preparing files ahead of the model in
a bounded thread pool, and batching prepared views through an engine.

Scan and eval both run files through ``ordered_map`` then ``batched``; so does anything a
library user builds on them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from glass_cli.preprocess.views import Views, collate

T = TypeVar("T")
U = TypeVar("U")


def ordered_map(fn: Callable[[T], U], items: Iterable[T], workers: int = 1, window: int = 16) -> Iterator[U]:
    """``map(fn, items)`` in input order. With ``workers > 1`` the calls run on a thread pool
    (Pillow, hashlib and numpy release the GIL for their heavy parts) with at most
    ``window`` items in flight, so memory stays flat however long ``items`` is."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="glass-prepare") as pool:
        ahead: deque = deque()
        for item in items:
            ahead.append(pool.submit(fn, item))
            if len(ahead) >= max(window, workers):
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


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
