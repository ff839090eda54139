"""The one progress bar every long job shows (training, cross-validation, eval, scan).

    with progress(console) as bar:
        task = bar.add_task("scanning", total=len(files), info="") if bar else None
        for ...:
            if bar:
                bar.advance(task)

``progress(console)`` is a rich ``Progress`` with a description, a bar, done/total, an
``info`` field, elapsed and remaining time, drawn on ``console`` and removed when it closes.
When ``console`` is None or not a terminal it is a context that yields None, so callers
guard each update with ``if bar:`` and pipes and log files stay free of bar drawing.
"""

from __future__ import annotations

import contextlib


def progress(console, *, info: bool = True, elapsed: bool = True):
    """A context that yields a transient rich Progress on ``console``, or None when there is
    nowhere to draw it. ``info``: a column showing each task's ``info`` field (add tasks with
    ``info=""``); ``elapsed``: a column with the time spent so far."""
    if console is None or not console.is_terminal:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    if elapsed:
        columns.append(TimeElapsedColumn())
    columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console, transient=True)
