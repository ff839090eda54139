"""What users see and keep: records and exit codes, terminal tables, JSON/JSONL/CSV sinks, HTML, pictures and figures."""
