"""Scan results as things programs read: JSON, JSON Lines and CSV records, the summary
counts and line, and the process exit code.

One record layout (``record``) serves every format; the README documents it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glass_cli import __version__
from glass_cli.errors import EXIT_CLEAN, EXIT_FLAGGED, EXIT_UNREADABLE
from glass_cli.io import atomic
from glass_cli.io.evidence import declares_ai, summary
from glass_cli.results import ScanResult

SCHEMA_VERSION = 1


@dataclass
class Counts:
    scanned: int
    flagged: int
    uncertain: int
    real: int
    errors: int


def counts(results: Sequence[ScanResult]) -> Counts:
    n = {v: 0 for v in ("ai", "uncertain", "real", "error")}
    for r in results:
        n[r.verdict] += 1
    return Counts(len(results) - n["error"], n["ai"], n["uncertain"], n["real"], n["error"])


def exit_code(results: Sequence[ScanResult]) -> int:
    c = counts(results)
    if c.flagged or c.uncertain:
        return EXIT_FLAGGED
    return EXIT_UNREADABLE if c.errors else EXIT_CLEAN


def display_path(path: str) -> str:
    """A path safe to print: undecodable bytes in file names shown as escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def format_box(box: Sequence[int]) -> str:
    left, top, right, bottom = box
    return f"({left},{top})-({right},{bottom})"


def summary_line(results: Sequence[ScanResult], threshold: float) -> str:
    c = counts(results)
    uncertain = f"{c.uncertain} uncertain, " if c.uncertain else ""
    return (
        f"{c.scanned} scanned, {c.flagged} flagged as AI (P(AI) >= {threshold:g}), "
        f"{uncertain}{c.real} real, {c.errors} not scanned"
    )


# ------------------------------------------------------------------ records


def record(result: ScanResult) -> dict[str, Any]:
    """One file's record, the same in JSON, JSON Lines and (flattened) CSV."""
    return {
        "path": display_path(result.path),
        "verdict": result.verdict,
        "p_ai": result.p_ai,
        "threshold": result.threshold,
        "model_id": result.model_id,
        "engine": result.engine,
        "width": result.width,
        "height": result.height,
        "bytes": result.bytes,
        "mtime_ns": result.mtime_ns,
        "sha256": result.sha256,
        "format": result.format,
        "sampling": result.sampling,
        "crops": [{"rank": rank, "box": list(c.box), "weight": c.weight}
                  for rank, c in enumerate(result.ranked_crops(), 1)],
        "evidence": [f.to_dict() for f in result.evidence],
        "evidence_declares_ai": declares_ai(result.evidence),
        "error": result.error,
    }


def json_document(
    results: Sequence[ScanResult], *, model: dict[str, Any], threshold: float, uncertain, device: str
) -> dict[str, Any]:
    c = counts(results)
    return {
        "schema": SCHEMA_VERSION,
        "glass_version": __version__,
        "model": model,
        "threshold": threshold,
        "uncertain": list(uncertain) if uncertain else None,
        "device": device,
        "summary": {"scanned": c.scanned, "flagged": c.flagged, "uncertain": c.uncertain, "real": c.real, "errors": c.errors},
        "files": [record(r) for r in sorted(results, key=lambda r: r.index)],
    }


def write_json(document: dict[str, Any], dest: str) -> None:
    """Write to a file atomically, or to stdout for '-'."""
    # ASCII escapes keep the output valid UTF-8 whatever the file names hold.
    text = json.dumps(document, indent=2) + "\n"
    if dest == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic.write_text(dest, text)


CSV_COLUMNS = [
    "path", "verdict", "p_ai", "threshold", "model_id", "engine", "width", "height", "bytes", "mtime_ns", "sha256", "format",
    "sampling", "top_crop_box", "top_crop_weight", "crops", "evidence", "evidence_declares_ai", "error",
]


def csv_row(result: ScanResult) -> dict[str, Any]:
    rec = record(result)
    top = result.top_crops(1)
    rec["top_crop_box"] = " ".join(map(str, top[0].box)) if top else ""
    rec["top_crop_weight"] = top[0].weight if top else ""
    rec["crops"] = json.dumps(rec["crops"]) if rec["crops"] else ""
    rec["evidence"] = summary(result.evidence, limit=10)
    return {k: _csv_cell(rec[k]) for k in CSV_COLUMNS}


def _csv_cell(value: Any) -> Any:
    """None as an empty cell, booleans spelled as in JSON (true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class RecordStream:
    """Writes one record per file as results arrive (JSON Lines or CSV). Each record goes to
    the file in one ``write`` of the whole line, so a record on disk is whole or absent
    whatever moment the process is killed (``scan.resume`` relies on it). '-' streams to
    stdout. ``append``: add to an existing file (a resumed scan) instead of starting it."""

    def __init__(self, dest: str, fmt: str, *, append: bool = False):
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown record format {fmt!r}")
        self.fmt = fmt
        self._own = dest != "-"
        self._fd: int | None = None
        if self._own:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(dest, flags, 0o666)
        if fmt == "csv" and not append:
            self._put(self._csv_line(None))

    @staticmethod
    def _csv_line(result: ScanResult | None) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
        if result is None:
            writer.writeheader()
        else:
            writer.writerow(csv_row(result))
        return buffer.getvalue()

    def _put(self, text: str) -> None:
        if self._fd is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        data = text.encode("utf-8")
        while data:  # one write for a whole record; the loop only covers a short write
            data = data[os.write(self._fd, data):]

    def write(self, result: ScanResult) -> None:
        self._put(self._csv_line(result) if self.fmt == "csv" else json.dumps(record(result)) + "\n")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RecordStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def eval_document(summary: dict[str, Any], records: Sequence[Any], **context: Any) -> dict[str, Any]:
    """The JSON form of an evaluation: context (model, data, split, perturbation), the
    metrics, and every file's score."""
    return {
        "schema": SCHEMA_VERSION,
        "glass_version": __version__,
        **context,
        **summary,
        "files": [
            {
                "path": r.path,
                "label": "ai" if r.label else "real",
                "p_ai": r.p_ai,
                "sha256": r.sha256,
                "generator": r.generator,
                "family": r.family,
                "error": r.error,
            }
            for r in records
        ],
    }
