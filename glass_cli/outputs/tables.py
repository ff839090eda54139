"""Every rich table the commands print: scan results and errors, eval metrics, a
cross-validation's folds, a study's best trials."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from glass_cli.io.evidence import declares_ai, summary
from glass_cli.outputs.records import display_path, format_box
from glass_cli.results import VERDICT_AI, VERDICT_ERROR, VERDICT_UNCERTAIN, ScanResult

_VERDICT_STYLE = {VERDICT_AI: ("AI", "bold red"), VERDICT_UNCERTAIN: ("uncertain", "yellow"), "real": ("real", "green")}


WIDE = 110
"""Console width from which the scan table has a column per field; narrower consoles (and
pipes, which rich treats as 80 columns) get one line per file."""

FALLBACK_NOTE = "fallback sampling: the image is too small for a grid of distinct crops, so crops overlap"


def shown_name(path: str, roots: Sequence[str | os.PathLike] = ()) -> str:
    """How a file is named in the tables: relative to the scanned folder that holds it (to
    that folder's parent when several folders were scanned, so the name says which), else
    as given; the full path stays in JSON and CSV. Undecodable bytes show as escapes."""
    folders = [str(r) for r in roots if os.path.isdir(r)]
    for root in folders:
        rel = os.path.relpath(path, root)
        if not rel.startswith(os.pardir):
            if len(folders) > 1:
                rel = os.path.join(os.path.basename(os.path.normpath(os.path.abspath(root))), rel)
            return display_path(rel)
    return display_path(path)


def _cut(text: str, width: int, *, keep_end: bool = False) -> str:
    """``text`` in at most ``width`` characters, an ellipsis where it was cut (at the start
    with ``keep_end``, so a path keeps its file name)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return "…" + text[-(width - 1):] if keep_end else text[: width - 1] + "…"


def results_table(results: Sequence[ScanResult], *, show_all: bool = False, roots: Sequence[str | os.PathLike] = (),
                  width: int = 200) -> Table | Text | None:
    """Flagged and uncertain files (every scanned file with show_all), highest P(AI) first.

    At ``width`` >= WIDE a table with a column per field, each crop on its own line. Below
    it (pipes and logs, which rich treats as 80 columns) one line per file: P(AI), verdict,
    size, name and evidence, cut with an ellipsis rather than wrapped; the crops are left to
    the records and the report. Names and crop boxes are never broken."""
    rows = [r for r in results if r.verdict != VERDICT_ERROR and (show_all or r.verdict in (VERDICT_AI, VERDICT_UNCERTAIN))]
    if not rows:
        return None
    rows.sort(key=lambda r: (-(r.p_ai or 0.0), r.path))
    title = "Scanned files" if show_all else "Flagged files"
    fallback = any(r.sampling == "fallback" for r in rows)
    if width < WIDE:
        return _compact(rows, title, roots, width)
    k = max((len(r.crops) for r in rows), default=0)
    shown = min(2, k)
    caption = f"* {FALLBACK_NOTE}" if fallback else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("file (size)", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("P(AI)", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column(f"top {shown} of {k} crops (box, weight)" if k else "crops", no_wrap=True)
    table.add_column("evidence in file", overflow="fold", ratio=2)
    for r in rows:
        word, style = _VERDICT_STYLE[r.verdict]
        mark = "*" if r.sampling == "fallback" else ""
        crops = "\n".join(f"{format_box(c.box)} {c.weight:.2f}{mark}" for c in r.top_crops(shown)) or "-"
        cell = Text(shown_name(r.path, roots))
        cell.append(f"\n{r.width}x{r.height}", style="dim")
        evidence = Text(summary(r.evidence) or "-", style="bold" if declares_ai(r.evidence) else "")
        table.add_row(cell, f"{r.p_ai:.3f}", Text(word, style=style), crops, evidence)
    return table


def _compact(rows: Sequence[ScanResult], title: str, roots: Sequence[str | os.PathLike], width: int) -> Text:
    names = [shown_name(r.path, roots) for r in rows]
    sizes = [f"{r.width}x{r.height}" for r in rows]
    size_w = max(4, *map(len, sizes))
    fixed = 5 + 2 + 9 + 2 + size_w + 2  # P(AI), verdict, size and the gaps
    name_w = max(8, min(max(map(len, names)), width - fixed - 14))
    evidence_w = max(0, width - fixed - name_w - 2)
    out = Text(f"{title}\n", style="italic")
    out.append(f"{'P(AI)':>5}  {'verdict':9}  {'size':{size_w}}  {'file':{name_w}}  evidence"[:width].rstrip() + "\n", style="bold")
    for r, name, size in zip(rows, names, sizes):
        word, style = _VERDICT_STYLE[r.verdict]
        out.append(f"{r.p_ai:5.3f}  ")
        out.append(f"{word:9}", style=style)
        line = f"  {size:{size_w}}  {_cut(name, name_w, keep_end=True):{name_w}}"
        evidence = summary(r.evidence) or "-"
        if len(evidence) <= evidence_w:
            line += "  " + evidence
        elif evidence != "-":  # too long for the column: whole, on a line of its own, rather than cut
            line = line.rstrip() + "\n" + _cut(f"{' ' * 7}evidence: {evidence}", width)
        out.append(line.rstrip() + "\n")
    if any(r.crops for r in rows):  # a resize-only baseline has none to point to
        out.append(f"(crops: in the records and --report, or at {WIDE}+ columns)", style="dim")
    return out


def errors_table(results: Sequence[ScanResult], roots: Sequence[str | os.PathLike] = (), width: int = 200) -> Table | Text | None:
    """The files that could not be scanned, with their reasons; one line per file below WIDE."""
    rows = sorted((r for r in results if r.verdict == VERDICT_ERROR), key=lambda r: r.path)
    if not rows:
        return None
    names = [shown_name(r.path, roots) for r in rows]
    if width < WIDE:
        name_w = max(8, min(max(map(len, names)), width // 2))
        out = Text("Not scanned\n", style="italic")
        out.append(f"{'file':{name_w}}  reason\n", style="bold")
        reason_w = max(20, width - name_w - 2)
        lines = []
        for r, name in zip(rows, names):  # reasons wrap at spaces, under their own column
            wrapped = textwrap.wrap(r.error or "", reason_w, break_on_hyphens=False, break_long_words=False) or [""]
            lines.append(f"{_cut(name, name_w, keep_end=True):{name_w}}  {wrapped[0]}")
            lines.extend(" " * (name_w + 2) + more for more in wrapped[1:])
        out.append("\n".join(lines))
        return out
    table = Table(title="Not scanned", title_justify="left")
    table.add_column("file", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("reason", ratio=2)
    for r, name in zip(rows, names):
        table.add_row(name, r.error or "")
    return table


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


MIN_GROUP = 5
"""Smallest group glass eval lists by default: below it accuracy moves in steps of 25% or
more and a per-group AUROC says nothing."""


def eval_tables(summary: dict[str, Any], title: str, *, min_group: int = MIN_GROUP) -> list[Table | Text]:
    """The overall metrics, then one table per breakdown (generator, family) of the groups
    of at least ``min_group`` images (a line counts the others), then errors."""
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
        shown = {name: g for name, g in groups.items() if g["n"] >= min_group}
        for name, g in shown.items():
            t.add_row(Text(name), g["label"], str(g["n"]), _num(g["accuracy"]), _num(g["mean_p_ai"]), _num(g["auroc"]))
        hidden = len(groups) - len(shown)
        if not shown:  # no table without rows: one line says why
            tables.append(Text(f"By {key}: {hidden} group(s), each of fewer than {min_group} images "
                               "(--min-group 1 lists them; --json has every group)"))
            continue
        if hidden:
            t.caption = f"{hidden} {key} group(s) of fewer than {min_group} images not listed (--min-group 1 lists all; --json has every group)"
            t.caption_justify = "left"
        tables.append(t)
    if summary["errors"]:
        t = Table(title="Not scored", title_justify="left")
        t.add_column("file", overflow="fold")
        t.add_column("reason", overflow="fold")
        for e in summary["errors"]:
            t.add_row(display_path(e["path"]), e["error"])
        tables.append(t)
    return tables


# ---------------------------------------------------------------------------- glass cv


def _spread(s: dict[str, Any] | None) -> str:
    if not s or s.get("mean") is None:
        return "n/a"
    return f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s.get("std") is not None else "")


def cv_tables(document: dict[str, Any]) -> list[Table]:
    """A cross-validation (``evaluation.cv.CvResult.to_dict()``) as tables: each number per fold with
    its mean ± standard deviation, then the false-positive rate of every held-out real source
    and the detection rate of every held-out fake family, at the model's threshold."""
    conds = document["conditions"]
    folds = document["folds"]
    summary = document["summary"]
    thresholds = sorted({f["threshold"] for f in folds})
    at = "/".join(f"{t:g}" for t in thresholds) or "n/a"

    main = Table(title=f"{document['name']}: leave-{document['options'].get('group_by', 'family')}-out cross-validation, {len(folds)} of {document['options']['folds']} folds", title_justify="left")
    main.add_column("metric")
    for f in folds:
        main.add_column(f"fold {f['fold']['index']}", justify="right")
    main.add_column("mean ± std", justify="right")
    main.add_row("held out (real / fake)", *[f"{f['fold']['real']} / {f['fold']['fake']}" for f in folds], "")
    rows = [(f"auroc_{c['key']}", "AUROC, " + (f"reals at {c['label']}, fakes as stored" if c["reals_only"] else c["label"])) for c in conds]
    rows.append(("auroc_sizes_mean", "AUROC, mean over real sizes (objective)"))
    rows += [(f"tpr_{c['key']}", f"fakes flagged, {c['label']}") for c in conds if not c["reals_only"]]
    rows += [(f"fpr_{c['key']}", f"reals flagged, {c['label']}") for c in conds]
    for key, label in rows:
        main.add_row(label, *[_num(f["metrics"].get(key)) for f in folds], _spread(summary.get(key)))
    tables = [main]

    reals = Table(title=f"Held-out real sources: share flagged as AI at threshold {at}", title_justify="left")
    fakes = Table(title=f"Held-out fake families: share detected at threshold {at}", title_justify="left")
    for t, which in ((reals, conds), (fakes, [c for c in conds if not c["reals_only"]])):
        group = "source" if t is reals and document["options"].get("group_by", "source") == "source" else "family"
        t.add_column(group, overflow="fold", min_width=12)  # whole names, folded rather than cut: they tell sources apart
        for col in ("fold", "n"):
            t.add_column(col, justify="right")
        for c in which:
            t.add_column(c["label"], justify="right")
    for f in folds:
        for table, groups, which in ((reals, f["real_sources"], conds), (fakes, f["fake_families"], [c for c in conds if not c["reals_only"]])):
            for name, g in groups.items():
                table.add_row(Text(name), str(f["fold"]["index"]), str(g["n"]), *[_num(g.get(c["key"])) for c in which])
    tables += [t for t in (reals, fakes) if t.row_count]
    cal = document.get("calibration")
    if cal:
        t = Table(
            title=f"Leave-{document['options'].get('group_by', 'family')}-out threshold for {cal['target_fpr']:g} FPR: {cal['threshold']:.4g} (from {cal['reals']} held-out real scores, all sizes); "
            "each fold judged at the threshold of the other folds",
            title_justify="left",
        )
        t.add_column("metric")
        for n in cal["nested"]:
            t.add_column(f"fold {n['fold']}", justify="right")
        t.add_column("mean ± std", justify="right")
        t.add_row("threshold", *[f"{n['threshold']:.4g}" for n in cal["nested"]], "")
        rows = [(f"tpr_{c['key']}", f"fakes flagged, {c['label']}") for c in conds if not c["reals_only"]]
        rows += [(f"fpr_{c['key']}", f"reals flagged, {c['label']}") for c in conds]
        for key, label in rows:
            t.add_row(label, *[_num(n["metrics"].get(key)) for n in cal["nested"]], _spread(cal["nested_summary"].get(key)))
        for key, label in (("worst_source", "worst real source"), ("worst_source_sized", f"worst real source of >= {cal['worst_source_min_n']} images")):
            for c in conds:
                w = cal[key].get(c["key"])
                if w:
                    t.add_row(f"{label}, {c['label']}", *["" for _ in cal["nested"]], Text(f"{w['fpr']:.3f} {w['source']} (n={w['n']}, fold {w['fold']})"))
        tables.append(t)
    errors = [e for f in folds for e in f["errors"]]
    if errors:
        t = Table(title="Not scored", title_justify="left")
        t.add_column("file", overflow="fold")
        t.add_column("reason", overflow="fold")
        for e in errors:
            t.add_row(display_path(e["path"]), e["error"])
        tables.append(t)
    return tables


# ---------------------------------------------------------------------------- glass tune


def _param(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def tune_table(result, metric_name: str, top: int = 5) -> Table:
    """A study's best completed trials (``tuning.study.TuneResult``), one column per trial
    (so that it fits a terminal however many parameters the space has); ``metric_name``
    labels the value row."""
    complete = sorted((r for r in result.rows if r.state == "complete"), key=lambda r: (-r.value, r.number))[:top]
    params = sorted({k for r in complete for k in r.params})
    table = Table(title=f"best trials of study {result.study}", title_justify="left")
    table.add_column("", style="bold")
    for r in complete:
        table.add_column(f"trial {r.number}", justify="right")
    table.add_row(metric_name, *[f"{r.value:.4f}" for r in complete])
    table.add_row("best epoch", *[str(r.best_epoch or "") for r in complete])
    for name in params:
        table.add_row(name, *[_param(r.params.get(name, "")) for r in complete])
    return table
