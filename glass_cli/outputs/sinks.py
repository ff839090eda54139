"""Where a scan's results go besides the terminal: one ``Sink`` per output format.

Every format is one class with the same small life: ``open`` before the first file (a file
that streams is created then), ``add`` for each result as it arrives, ``finish`` once the
last file is done (documents written whole), ``close`` always, also when the scan stops
early (streams keep every record written so far). ``OutputOptions`` names the destination
of each format, one field per sink (its ``option``), and the CLI has one flag per field; so
a new format is a Sink subclass listed in ``SINKS``, a field here and a flag there.

Destinations are checked before any work (``check_destinations``): at most one on stdout
('-'), never '-' for a format that is not text, and never inside a scanned folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from glass_cli.errors import ScanError
from glass_cli.io.walk import inside_scanned_folder
from glass_cli.outputs import pictures, records
from glass_cli.outputs.html import HtmlReport
from glass_cli.results import VERDICT_AI, VERDICT_UNCERTAIN, Decision, ScanResult


@dataclass(frozen=True)
class OutputOptions:
    """The destination of each output, or None: a path, or '-' for stdout where allowed."""

    json: str | None = None
    jsonl: str | None = None
    csv: str | None = None
    save_crops: str | None = None
    report: str | None = None

    def chosen(self) -> list[tuple[type[Sink], str]]:
        """(sink class, destination) of each output asked for, in ``SINKS`` order."""
        return [(sink, getattr(self, sink.option)) for sink in SINKS if getattr(self, sink.option) is not None]

    @property
    def explain(self) -> bool:
        """Whether the scan must keep previews and crops for some output."""
        return any(sink.pictures for sink, _ in self.chosen())


@dataclass(frozen=True)
class ScanContext:
    """What a sink may need to know about the scan besides its results."""

    model: dict[str, Any]
    """The model summary (``inference.engines.describe_model``)."""
    decision: Decision
    resume: bool = False
    """A resumed scan: results taken from its JSON Lines records come first, marked
    ``resumed``; that file keeps them and gets only the new ones."""
    uses_crops: bool = True
    """The model's ``ModelConfig.uses_crops``: GLASS looks at crops, the resize-only model not."""

    @property
    def crop_size(self) -> int | None:
        return self.model.get("config", {}).get("crop_size")

    @property
    def model_name(self) -> str:
        cfg = self.model.get("config", {})
        return f"{cfg.get('arch', '?')} {cfg.get('global_backbone', '?')} ({self.model.get('id', '')})"


class Sink:
    """One output format. Subclasses set ``option`` (the OutputOptions field, and with dashes
    the CLI flag), whether '-' (stdout) is allowed and whether they need pictures, and
    override the steps they use."""

    option: ClassVar[str]
    stdout: ClassVar[bool] = False
    """Whether the destination may be '-' (stdout)."""
    pictures: ClassVar[bool] = False
    """Whether the sink needs each file's preview and crops (``ScanResult.explanation``)."""

    def __init__(self, dest: str, context: ScanContext):
        self.dest, self.context = dest, context

    @classmethod
    def flag(cls) -> str:
        return "--" + cls.option.replace("_", "-")

    def open(self) -> None:
        """Before the first result."""

    def add(self, result: ScanResult) -> None:
        """One result, as it arrives."""

    def finish(self, results: Sequence[ScanResult], device: str) -> None:
        """After the last result: every result (in the order they arrived) and where the
        model ran."""

    def close(self) -> None:
        """Release what is open; called after ``finish`` and when the scan stops early."""


class JsonSink(Sink):
    """One JSON document with the model, the settings, the summary and every file's record,
    written atomically when the scan ends."""

    option, stdout = "json", True

    def finish(self, results: Sequence[ScanResult], device: str) -> None:
        decision = self.context.decision
        doc = records.json_document(results, model=self.context.model, threshold=decision.threshold,
                                    uncertain=decision.uncertain, device=device)
        records.write_json(doc, self.dest)


class _StreamSink(Sink):
    """One record per file, written whole as it arrives (``records.RecordStream``)."""

    stdout = True
    journal = False
    """Whether this is the file a resumed scan resumes from (it has the earlier records)."""
    _stream: records.RecordStream | None = None

    def open(self) -> None:
        self._appending = self.journal and self.context.resume
        self._stream = records.RecordStream(self.dest, self.option, append=self._appending)

    def add(self, result: ScanResult) -> None:
        if not (self._appending and result.resumed):
            self._stream.write(result)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class JsonlSink(_StreamSink):
    option, journal = "jsonl", True


class CsvSink(_StreamSink):
    option = "csv"


class CropsSink(Sink):
    """The crops and attention overlay of every file flagged AI or uncertain, as PNGs."""

    option, pictures = "save_crops", True

    def open(self) -> None:
        Path(self.dest).mkdir(parents=True, exist_ok=True)

    def add(self, result: ScanResult) -> None:
        if result.explanation is not None and result.verdict in (VERDICT_AI, VERDICT_UNCERTAIN):
            pictures.save_crops(result, self.dest, crop_size=self.context.crop_size)


class HtmlSink(Sink):
    """A self-contained HTML report, one row per file, written when the scan ends."""

    option, pictures = "report", True

    def open(self) -> None:
        decision = self.context.decision
        self._report = HtmlReport(model=self.context.model_name, threshold=decision.threshold,
                                  uncertain=decision.uncertain, crop_size=self.context.crop_size, crops=self.context.uses_crops)

    def add(self, result: ScanResult) -> None:
        self._report.add(result)

    def finish(self, results: Sequence[ScanResult], device: str) -> None:
        self._report.write(self.dest)


SINKS: tuple[type[Sink], ...] = (JsonSink, JsonlSink, CsvSink, CropsSink, HtmlSink)
"""Every output format, in the order each result is handed to them."""

def check_destinations(options: OutputOptions, scanned: Iterable[str | Path]) -> None:
    """Refuse destinations that cannot be honoured (two outputs on stdout, '-' for a folder
    or the HTML report, a path inside a scanned folder) with a ScanError. Cheap: call it
    before walking the folders or loading a model."""
    chosen = options.chosen()
    if sum(dest == "-" for _, dest in chosen) > 1:
        flags = [sink.flag() for sink in SINKS if sink.stdout]
        raise ScanError(f"only one of {', '.join(flags[:-1])} and {flags[-1]} can write to stdout ('-')")
    for sink, dest in chosen:
        if dest == "-" and not sink.stdout:
            raise ScanError(f"{sink.flag()} needs a path, not '-'")
        folder = inside_scanned_folder(dest, scanned)
        if folder is not None:
            raise ScanError(f"{dest}: refusing to write inside the scanned folder {folder}; write it elsewhere")


class ScanOutputs:
    """Every sink a scan asked for, opened together, fed each result, finished together.
    The destinations are checked again here (``check_destinations``); the scan job checks
    them before any work, so a bad one fails before the walk and the model load."""

    def __init__(self, options: OutputOptions, scanned: Iterable[str | Path], context: ScanContext):
        check_destinations(options, scanned)
        self.sinks: list[Sink] = []
        try:
            for sink, dest in options.chosen():
                self.sinks.append(sink(dest, context))
                self.sinks[-1].open()
        except BaseException:
            self.close()
            raise

    def add(self, result: ScanResult) -> None:
        for sink in self.sinks:
            sink.add(result)
        result.explanation = None  # previews are large: keep only what was written

    def finish(self, results: Sequence[ScanResult], device: str) -> None:
        self.close()
        for sink in self.sinks:
            sink.finish(results, device)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def __enter__(self) -> ScanOutputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
