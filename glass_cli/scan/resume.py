"""``glass scan --jsonl FILE --resume``: carry on a scan that was stopped, from its own records.

The JSON Lines file of a scan is its journal: each record is written whole, in one write,
as soon as its file is done (``outputs.records.RecordStream``), and beside it the scan
keeps the settings its records depend on (``FILE.settings.json``, written before the
first record). Resuming reads both:

- a last line cut short by the kill (no newline at its end, or not JSON) is dropped and
  its file scanned again; a damaged line anywhere else stops the resume with one line;
- a record is kept, and its file skipped, when the file is still the same: the same path,
  the same size in bytes and the same modification time to the nanosecond
  (``os.stat().st_mtime_ns``). Records of files that could not be read carry no size, so
  those files are always tried again;
- the settings must be the ones the records were written with (model, engine, threshold,
  uncertain band, pixel and size limits, minimum side, watermarks, shard): a difference
  stops the resume with one line naming it, rather than mixing two kinds of record in one
  file.

The kept records become results again, so the summary, exit code and every other output
cover the whole scan as if it had run in one go. At worst a kill loses the records of the
files in flight (read or scored but not yet written), and those files are scanned again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glass_cli import __version__
from glass_cli.errors import ScanError
from glass_cli.io import atomic
from glass_cli.io.evidence import Finding
from glass_cli.io.walk import WalkError
from glass_cli.outputs.records import display_path
from glass_cli.results import CropScore, Decision, ScanResult

SETTINGS_SUFFIX = ".settings.json"
FORMAT = "glass-scan-settings/1"


def settings_path(jsonl: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(jsonl)}{SETTINGS_SUFFIX}")


def journal_settings(settings, model_id: str, engine: str, decision: Decision) -> dict[str, Any]:
    """What the records of a scan depend on besides the files (``settings``: ScanSettings)."""
    limits = settings.limits
    return {
        "format": FORMAT, "model_id": model_id, "engine": engine, "threshold": decision.threshold,
        "uncertain": list(decision.uncertain) if decision.uncertain else None, "max_pixels": limits.max_pixels,
        "max_bytes": limits.max_bytes, "min_side": limits.min_side, "watermarks": settings.watermarks,
        "trustmark": settings.trustmark, "shard": settings.shard,
    }


FLAGS = {"model_id": "the model", "engine": "--engine", "threshold": "--threshold", "uncertain": "--uncertain",
         "max_pixels": "--max-pixels", "max_bytes": "--max-bytes", "min_side": "--min-side", "watermarks": "--watermarks",
         "trustmark": "--trustmark", "shard": "--shard"}


def write_settings(jsonl: str | os.PathLike, values: dict[str, Any]) -> None:
    atomic.write_text(settings_path(jsonl), json.dumps({**values, "glass_version": __version__}, indent=2) + "\n")


@dataclass
class Journal:
    """What a stopped scan left in its JSON Lines file."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    """Each record's line as it stands in the file."""
    keep_bytes: int = 0
    """The length of the file up to its last whole record."""
    torn: bool = False
    """Whether a cut last line follows it."""


def read_journal(path: str | os.PathLike) -> Journal:
    """The whole records of a JSON Lines file (none when it does not exist yet)."""
    journal = Journal(Path(path))
    try:
        data = journal.path.read_bytes()
    except FileNotFoundError:
        return journal
    except OSError as exc:
        raise ScanError(f"{path}: cannot read the records to resume from ({exc.strerror or exc})") from None
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a line the kill cut short
    offset = 0
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "path" not in record:
                raise ValueError("not a scan record")
        except ValueError:
            if number == len(lines) and not tail:
                journal.torn = True  # a cut record that happened to end in a newline byte
                break
            raise ScanError(f"{path}: line {number} is not a glass scan record; resume from an intact file, "
                            "or scan into a new one") from None
        journal.records.append(record)
        journal.lines.append(line)
        offset += len(line) + 1
    journal.keep_bytes = offset
    journal.torn = journal.torn or bool(tail)
    return journal


def check_settings(jsonl: str | os.PathLike, journal: Journal, current: dict[str, Any]) -> None:
    """Refuse, with one line naming the first difference, to add records of other settings."""
    if not journal.records:
        return
    where = settings_path(jsonl)
    try:
        saved = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScanError(f"{jsonl}: its settings file {where.name} is missing, so its records cannot be matched to this "
                        "scan; scan into a new file") from None
    except (OSError, ValueError) as exc:
        raise ScanError(f"{where}: cannot read the settings of the records to resume ({exc})") from None
    if saved.get("format") != FORMAT:
        raise ScanError(f"{where}: not a glass scan settings file ({FORMAT})")
    for name, flag in FLAGS.items():
        if saved.get(name) != current.get(name):
            raise ScanError(f"{jsonl}: its records were written with {flag} {_shown(saved.get(name))}, this scan has "
                            f"{_shown(current.get(name))}; resume with the same settings, or scan into a new file")


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ":".join(f"{v:g}" for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def result_of(record: dict[str, Any], index: int) -> ScanResult:
    """A record turned back into the result it was written from (pictures aside)."""
    crops = sorted(record.get("crops") or [], key=lambda c: c["rank"])
    return ScanResult(
        path=record["path"], verdict=record["verdict"], p_ai=record.get("p_ai"), threshold=record.get("threshold"),
        width=record.get("width"), height=record.get("height"), bytes=record.get("bytes"),
        mtime_ns=record.get("mtime_ns"), sha256=record.get("sha256"), format=record.get("format"),
        sampling=record.get("sampling"), crops=[CropScore(tuple(c["box"]), c["weight"]) for c in crops],
        evidence=[Finding(**f) for f in record.get("evidence") or []], error=record.get("error"),
        model_id=record.get("model_id"), engine=record.get("engine"), index=index, resumed=True,
    )


def keep_only(journal: Journal, kept: Sequence[ScanResult]) -> None:
    """Rewrite the journal with the records of ``kept`` alone, in their order there: a torn
    tail, records of files to scan again and of files gone from the walk leave the file, so
    that each file ends with one record. Atomic: a kill leaves the old file or the new one."""
    wanted = {r.path for r in kept}
    lines, seen = [], set()
    for record, line in reversed(list(zip(journal.records, journal.lines))):  # the last record of a path counts
        if record["path"] in wanted and record["path"] not in seen:
            seen.add(record["path"])
            lines.append(line)
    lines.reverse()
    if len(lines) == len(journal.records) and not journal.torn:
        return
    atomic.write_bytes(journal.path, b"".join(line + b"\n" for line in lines))


def split_done(files: Sequence[Path | WalkError], journal: Journal) -> tuple[list[ScanResult], list[int]]:
    """(results kept from the journal, walk indexes of the files still to scan)."""
    kept = {r["path"]: r for r in journal.records if r.get("bytes") is not None and r.get("mtime_ns") is not None}
    done, todo = [], []
    for index, item in enumerate(files):
        record = None if isinstance(item, WalkError) else kept.get(display_path(str(item)))
        if record is not None:
            try:
                info = os.stat(item)
            except OSError:
                info = None
            if info is not None and info.st_size == record["bytes"] and info.st_mtime_ns == record["mtime_ns"]:
                done.append(result_of(record, index))
                continue
        todo.append(index)
    return done, todo
