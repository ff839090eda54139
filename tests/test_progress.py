"""The one progress bar: drawn on a terminal, absent otherwise."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from glass_cli.outputs.progress import progress


def test_no_console_or_no_terminal_gives_no_bar():
    with progress(None) as bar:
        assert bar is None
    with progress(Console(file=io.StringIO(), force_terminal=False)) as bar:
        assert bar is None


def test_a_terminal_gets_a_transient_bar_with_the_asked_columns():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with progress(console) as bar:
        assert isinstance(bar, Progress)
        task = bar.add_task("scanning", total=3, info="")
        bar.update(task, advance=3, info="done")
        assert len(bar.columns) == 6
    assert len(progress(console, info=False, elapsed=False).columns) == 4
