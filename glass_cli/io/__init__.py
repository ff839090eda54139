"""Files in and out: walking folders, loading images safely, provenance evidence, atomic writes."""
