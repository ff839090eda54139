"""Turning scan results into things people and programs read: a rich table, a summary,
JSON, and the process exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from . import __version__, atomic
from .scan import VERDICT_AI, VERDICT_ERROR, ScanResult

EXIT_CLEAN = 0
"""Every file scanned, none flagged."""
EXIT_FLAGGED = 1
"""At least one file flagged as AI-generated."""
EXIT_USAGE = 2
"""Bad arguments, no model, or a fatal error: no verdicts to trust."""
EXIT_UNREADABLE = 3
"""Nothing flagged, but some files could not be scanned: they have no verdict."""

SCHEMA_VERSION = 1


@dataclass
class Counts:
    scanned: int
    flagged: int
    real: int
    errors: int


def counts(results: Sequence[ScanResult]) -> Counts:
    flagged = sum(r.verdict == VERDICT_AI for r in results)
    errors = sum(r.verdict == VERDICT_ERROR for r in results)
    return Counts(len(results) - errors, flagged, len(results) - errors - flagged, errors)


def exit_code(results: Sequence[ScanResult]) -> int:
    c = counts(results)
    if c.flagged:
        return EXIT_FLAGGED
    return EXIT_UNREADABLE if c.errors else EXIT_CLEAN


def format_box(box: Sequence[int]) -> str:
    left, top, right, bottom = box
    return f"({left},{top})-({right},{bottom})"


def display_path(path: str) -> str:
    """A path safe to print: undecodable bytes in file names shown as escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _crop_cell(result: ScanResult, n: int = 2) -> str:
    if not result.crops:
        return "-" if result.sampling is None else ""
    return "\n".join(f"{format_box(c.box)} {c.weight:.2f}" for c in result.top_crops(n))


def results_table(results: Sequence[ScanResult], *, show_all: bool = False) -> Table | None:
    """Flagged files (or every scanned file with show_all), highest P(AI) first."""
    rows = [r for r in results if r.verdict != VERDICT_ERROR and (show_all or r.flagged)]
    if not rows:
        return None
    title = "Scanned files" if show_all else "Flagged as AI-generated"
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("P(AI)", justify="right")
    table.add_column("verdict")
    table.add_column("size", justify="right")
    table.add_column("top crops (box, attention)", overflow="fold")
    for r in sorted(rows, key=lambda r: (-(r.p_ai or 0.0), r.path)):
        style = "bold red" if r.flagged else "green"
        table.add_row(
            display_path(r.path),
            f"{r.p_ai:.3f}",
            Text("AI" if r.flagged else "real", style=style),
            f"{r.width}x{r.height}",
            _crop_cell(r) + ("" if r.sampling != "fallback" else "\n(fallback sampling)"),
        )
    return table


def errors_table(results: Sequence[ScanResult]) -> Table | None:
    rows = [r for r in results if r.verdict == VERDICT_ERROR]
    if not rows:
        return None
    table = Table(title="Not scanned", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("reason", overflow="fold")
    for r in sorted(rows, key=lambda r: r.path):
        table.add_row(display_path(r.path), r.error or "")
    return table


def summary_line(results: Sequence[ScanResult], threshold: float) -> str:
    c = counts(results)
    return (
        f"{c.scanned} scanned, {c.flagged} flagged as AI (P(AI) >= {threshold:g}), "
        f"{c.real} real, {c.errors} not scanned"
    )


def record(result: ScanResult) -> dict[str, Any]:
    """One file's JSON record (schema documented in README)."""
    return {
        "path": result.path,
        "verdict": result.verdict,
        "p_ai": result.p_ai,
        "threshold": result.threshold,
        "width": result.width,
        "height": result.height,
        "bytes": result.bytes,
        "sha256": result.sha256,
        "format": result.format,
        "sampling": result.sampling,
        "crops": [{"box": list(c.box), "weight": c.weight} for c in result.crops],
        "error": result.error,
    }


def json_document(
    results: Sequence[ScanResult], *, model: dict[str, Any], threshold: float, device: str
) -> dict[str, Any]:
    c = counts(results)
    return {
        "schema": SCHEMA_VERSION,
        "glass_version": __version__,
        "model": model,
        "threshold": threshold,
        "device": device,
        "summary": {"scanned": c.scanned, "flagged": c.flagged, "real": c.real, "errors": c.errors},
        "files": [record(r) for r in sorted(results, key=lambda r: r.index)],
    }


def write_json(document: dict[str, Any], dest: str) -> None:
    """Write to a file atomically, or to stdout for '-'."""
    # ASCII escapes keep the file valid UTF-8 even for file names that are not.
    text = json.dumps(document, indent=2) + "\n"
    if dest == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic.write_text(dest, text)


# ---------------------------------------------------------------------------- glass eval

EVAL_METRICS = (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("auroc", "AUROC"),
    ("average_precision", "average precision"),
    ("ece", "ECE (15 bins)"),
    ("tpr_at_fpr_1", "TPR at 1% FPR"),
    ("tpr_at_fpr_5", "TPR at 5% FPR"),
    ("tpr", "TPR at threshold"),
    ("fpr", "FPR at threshold"),
)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def eval_tables(summary: dict[str, Any], title: str) -> list[Table]:
    """The overall metrics, then one table per breakdown (generator, family), then errors."""
    overall = summary["overall"]
    table = Table(title=Text(title), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("images", f"{overall['n']} ({overall['n_real']} real, {overall['n_ai']} AI)")
    for key, label in EVAL_METRICS:
        table.add_row(label, _num(overall.get(key)))
    tables = [table]
    for key in ("generator", "family"):
        groups = summary.get(f"by_{key}")
        if not groups:
            continue
        t = Table(title=f"By {key} (AUROC: the group against every image of the other class)", title_justify="left")
        for col, justify in ((key, "left"), ("class", "left"), ("n", "right"), ("accuracy", "right"), ("mean P(AI)", "right"), ("AUROC", "right")):
            t.add_column(col, justify=justify, overflow="fold")
        for name, g in groups.items():
            t.add_row(Text(name), g["label"], str(g["n"]), _num(g["accuracy"]), _num(g["mean_p_ai"]), _num(g["auroc"]))
        tables.append(t)
    if summary["errors"]:
        t = Table(title="Not scored", title_justify="left")
        t.add_column("file", overflow="fold")
        t.add_column("reason", overflow="fold")
        for e in summary["errors"]:
            t.add_row(display_path(e["path"]), e["error"])
        tables.append(t)
    return tables


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
