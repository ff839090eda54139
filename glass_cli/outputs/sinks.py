"""Where a scan's results go besides the terminal: JSON, JSON Lines, CSV, crop PNGs and the
HTML report, checked up front and fed one result at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glass_cli.inference.scan import VERDICT_AI, VERDICT_UNCERTAIN, Decision, ScanError, ScanResult
from glass_cli.io.walk import inside_scanned_folder
from glass_cli.outputs import pictures as explain
from glass_cli.outputs import records
from glass_cli.outputs.html import HtmlReport


@dataclass
class OutputOptions:
    json: str | None = None
    jsonl: str | None = None
    csv: str | None = None
    save_crops: str | None = None
    report: str | None = None

    @property
    def explain(self) -> bool:
        """Whether the scan must keep previews and crops."""
        return bool(self.save_crops or self.report)

    @property
    def uses_stdout(self) -> bool:
        return "-" in (self.json, self.jsonl, self.csv)


def check_destinations(options: OutputOptions, scanned: Iterable[str | Path]) -> None:
    """Refuse destinations that cannot be honoured (two outputs on stdout, '-' for a folder
    or the HTML report, a path inside a scanned folder) with a ScanError. Cheap: call it
    before walking the folders or loading a model."""
    named = {"--json": options.json, "--jsonl": options.jsonl, "--csv": options.csv,
             "--save-crops": options.save_crops, "--report": options.report}
    if sum(v == "-" for v in named.values()) > 1:
        raise ScanError("only one of --json, --jsonl and --csv can write to stdout ('-')")
    for flag, dest in named.items():
        if dest is None:
            continue
        if dest == "-" and flag in ("--save-crops", "--report"):
            raise ScanError(f"{flag} needs a path, not '-'")
        folder = inside_scanned_folder(dest, scanned)
        if folder is not None:
            raise ScanError(f"{dest}: refusing to write inside the scanned folder {folder}; write it elsewhere")


class ScanOutputs:
    """Opened before the scan, fed each result as it arrives, finished with the full list.
    Its destinations are checked again here (``check_destinations``); ``inference.job``
    checks them before any work, so a bad one fails before the walk and the model load."""

    def __init__(self, options: OutputOptions, scanned: Iterable[str | Path], *, model: dict[str, Any],
                 decision: Decision, device: str):
        self.options, self.model, self.decision, self.device = options, model, decision, device
        check_destinations(options, scanned)
        self.streams = [records.RecordStream(dest, fmt) for dest, fmt in ((options.jsonl, "jsonl"), (options.csv, "csv")) if dest]
        self.html = None
        if options.report:
            self.html = HtmlReport(model=self._model_name(), threshold=decision.threshold, uncertain=decision.uncertain,
                                   crop_size=self._crop_size())
        if options.save_crops:
            Path(options.save_crops).mkdir(parents=True, exist_ok=True)

    def _crop_size(self) -> int | None:
        return self.model.get("config", {}).get("crop_size")

    def _model_name(self) -> str:
        cfg = self.model.get("config", {})
        return f"{cfg.get('arch', '?')} {cfg.get('global_backbone', '?')} ({self.model.get('id', '')})"

    def add(self, result: ScanResult) -> None:
        for stream in self.streams:
            stream.write(result)
        if result.explanation is not None:
            if self.options.save_crops and result.verdict in (VERDICT_AI, VERDICT_UNCERTAIN):
                explain.save_crops(result, self.options.save_crops, crop_size=self._crop_size())
            if self.html is not None:
                self.html.add(result)
            result.explanation = None  # previews are large: keep only what was written
        elif self.html is not None:
            self.html.add(result)

    def finish(self, results: Sequence[ScanResult]) -> None:
        self.close()
        if self.html is not None:
            self.html.write(self.options.report)
        if self.options.json:
            doc = records.json_document(results, model=self.model, threshold=self.decision.threshold,
                                       uncertain=self.decision.uncertain, device=self.device)
            records.write_json(doc, self.options.json)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.streams = []

    def __enter__(self) -> ScanOutputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
