"""Where the scan, eval and cv outputs used to live: ``records`` (JSON / JSON Lines / CSV,
counts, exit codes) and ``tables`` (every rich table) now hold them; these names stay
importable from here."""

from glass_cli.outputs.records import (
    CSV_COLUMNS,
    EXIT_CLEAN,
    EXIT_FLAGGED,
    EXIT_UNREADABLE,
    SCHEMA_VERSION,
    Counts,
    RecordStream,
    counts,
    csv_row,
    display_path,
    eval_document,
    exit_code,
    format_box,
    json_document,
    record,
    summary_line,
    write_json,
)
from glass_cli.outputs.tables import EVAL_METRICS, cv_tables, errors_table, eval_tables, results_table, tune_table

__all__ = [
    "CSV_COLUMNS", "EXIT_CLEAN", "EXIT_FLAGGED", "EXIT_UNREADABLE", "SCHEMA_VERSION", "Counts", "RecordStream", "counts",
    "csv_row", "display_path", "eval_document", "exit_code", "format_box", "json_document", "record", "summary_line",
    "write_json", "EVAL_METRICS", "cv_tables", "errors_table", "eval_tables", "results_table", "tune_table",
]
