"""``glass scan --cache FILE``: a file's result, kept by its content, for scans that see it again.

A desk that rescans its inbox every hour, or a platform where one viral picture arrives
under a thousand names, scores the same bytes over and over. The cache is one SQLite file
(the standard library's ``sqlite3``, in WAL mode) that maps

    (the file's SHA-256, what the result depends on) -> what the file's record says of it

where "what the result depends on" (``CacheKey``) is the model id, the glass version and
every setting that changes a record other than the decision: the pixel and size limits
and which watermarks are read. A file seen before, under any name or path, is answered
after it is read and hashed, without decoding or scoring; its verdict is taken afresh from
the scan's own threshold and band, so a cached record equals a fresh one.

What is kept: the picture's size and format, the crop sampling, every crop's box and
attention weight, P(AI), and all the evidence (metadata and pixel watermarks alike: the
metadata is cheap to read again, but the watermarks need the pixels, and both are fixed by
the bytes). A file too small to judge is kept too (its answer is fixed by its bytes); files
that could not be read, decoded in time or that lost their worker are not, so they are
tried again. A scan that needs pictures (``--report``, ``--save-crops``) still decodes a
cached file for them, without scoring it.

Several scans can share one cache at once (processes on one machine, shards, a Ray cluster
on one machine): SQLite's WAL lets readers run beside the one writer, each writer waits up
to ``BUSY_TIMEOUT`` seconds for its turn, and an entry is written in one transaction or not
at all. Workers (threads, processes, Ray tasks) only read; the scan's main process writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from glass_cli import __version__
from glass_cli.errors import ScanError
from glass_cli.io.evidence import Finding
from glass_cli.results import VERDICT_ERROR, CropScore, ScanResult

BUSY_TIMEOUT = 60.0
"""Seconds a scan waits for another writer before it gives up on the cache."""
COMMIT_EVERY = 64
"""Entries written per transaction (and at least every ``COMMIT_SECONDS``)."""
COMMIT_SECONDS = 2.0
SCHEMA = 1


@dataclass(frozen=True)
class CacheKey:
    """Everything besides the bytes that a cached answer depends on."""

    model_id: str
    max_pixels: int
    min_side: int
    dwt_dct: bool
    trustmark: bool
    glass_version: str = __version__

    @classmethod
    def of(cls, settings, model_id: str) -> CacheKey:
        """The key of a scan's ``settings`` (a ScanSettings) with the model ``model_id``."""
        limits = settings.limits
        return cls(model_id, limits.max_pixels, limits.min_side, settings.watermarks, settings.trustmark)

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def cacheable(result: ScanResult) -> bool:
    """Whether a finished result is fixed by its bytes: scored, or too small to judge."""
    if result.sha256 is None:
        return False
    if result.p_ai is not None:
        return True
    return result.error is not None and result.error.startswith("too small to judge")


def entry(result: ScanResult) -> dict:
    """What the cache keeps of a result (see the module docstring)."""
    return {
        "width": result.width, "height": result.height, "format": result.format, "sampling": result.sampling,
        "p_ai": result.p_ai, "crops": [[list(c.box), c.weight] for c in result.crops],
        "evidence": [f.to_dict() for f in result.evidence], "error": result.error,
    }


def fill(result: ScanResult, cached: dict) -> None:
    """Put a cached answer on a result that has been read and hashed (its verdict is the
    scan's to decide: ``ScanResult.decide``)."""
    result.width, result.height, result.format = cached["width"], cached["height"], cached["format"]
    result.sampling, result.p_ai, result.error = cached["sampling"], cached["p_ai"], cached["error"]
    result.crops = [CropScore(tuple(box), weight) for box, weight in cached["crops"]]
    result.evidence = [Finding(**f) for f in cached["evidence"]]
    result.verdict = VERDICT_ERROR
    result.cached = True


class ResultCache:
    """One cache file, opened by path: picklable, so worker processes open their own
    connection (one per thread) on first use."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._local = threading.local()
        self._pending: list[tuple[str, str, str]] = []
        self._last_commit = time.monotonic()

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS results (sha256 TEXT NOT NULL, key TEXT NOT NULL, "
                             "entry TEXT NOT NULL, written REAL NOT NULL, PRIMARY KEY (sha256, key))")
                conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
                (schema,) = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            except sqlite3.DatabaseError as exc:
                raise ScanError(f"{self.path}: not a usable glass cache ({exc})") from None
            if schema != str(SCHEMA):
                raise ScanError(f"{self.path}: a glass cache of schema {schema}, this glass reads {SCHEMA}; use a new file")
            self._local.conn = conn
        return conn

    def check(self) -> None:
        """Open (or create) the file now, so a bad path fails before the scan."""
        self._connection()

    def get(self, sha256: str, key: CacheKey) -> dict | None:
        row = self._connection().execute("SELECT entry FROM results WHERE sha256 = ? AND key = ?",
                                         (sha256, key.digest)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, results: Iterable[ScanResult], key: CacheKey) -> None:
        """Queue the cacheable results; written in batches (``flush``)."""
        for result in results:
            if cacheable(result) and not result.cached:
                self._pending.append((result.sha256, key.digest, json.dumps(entry(result))))
        if len(self._pending) >= COMMIT_EVERY or time.monotonic() - self._last_commit >= COMMIT_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write what is queued in one transaction."""
        if not self._pending:
            return
        conn = self._connection()
        now = time.time()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", [(*p, now) for p in self._pending])
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise ScanError(f"{self.path}: cannot write the cache ({exc})") from None
        self._pending.clear()
        self._last_commit = time.monotonic()

    def close(self) -> None:
        self.flush()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
