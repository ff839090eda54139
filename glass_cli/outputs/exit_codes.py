"""Every exit code glass returns, in one place (the README's "Exit codes" lists them)."""

EXIT_CLEAN = 0
"""Every file scanned, none flagged or uncertain; any other command: done."""
EXIT_FLAGGED = 1
"""scan: at least one file flagged as AI-generated or in the uncertain band; export: ONNX
Runtime disagrees with torch beyond the tolerance (nothing written)."""
EXIT_USAGE = 2
"""A usage or fatal error (bad arguments, no model, CUDA asked for but absent)."""
EXIT_UNREADABLE = 3
"""Nothing flagged, but some files could not be scanned (or evaluated): they have no verdict."""
EXIT_INTERRUPTED = 130
"""Interrupted (128 + SIGINT), as shells report it."""
