"""Fault injection for the Ray scan tests, installed in every Ray worker process by the test
session's ``worker_process_setup_hook``; nothing of it is in glass itself.

A worker about to prepare file NAME (``FileStep``) or to score a batch holding it (``Scorer``)
that can delete ``$GLASS_TEST_KILL_DIR/prepare-NAME`` or ``.../score-NAME`` exits on the spot,
as a killed process would. Only one worker can delete the file, so each fault happens once.
"""

from __future__ import annotations

import os
import pickle

KILL_ENV = "GLASS_TEST_KILL_DIR"


def _die_if_armed(stage: str, path: str) -> None:
    folder = os.environ.get(KILL_ENV)
    if not folder:
        return
    try:
        os.unlink(os.path.join(folder, f"{stage}-{os.path.basename(path)}"))
    except OSError:
        return
    os._exit(1)


def install() -> None:
    """Wrap the per-file step and the scoring actor of this worker process."""
    from glass_cli.io.walk import WalkError
    from glass_cli.scan import cluster, step

    prepare, score = step.FileStep.__call__, cluster.Scorer.__call__

    def armed_prepare(self, indexed):
        item = indexed[1]
        _die_if_armed("prepare", item.path if isinstance(item, WalkError) else str(item))
        return prepare(self, indexed)

    def armed_score(self, batch):
        for result in batch["result"]:
            _die_if_armed("score", pickle.loads(result).path)
        return score(self, batch)

    step.FileStep.__call__ = armed_prepare
    cluster.Scorer.__call__ = armed_score
