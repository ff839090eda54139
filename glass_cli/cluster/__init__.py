"""glass beyond one machine: ``glass scan`` on a Ray cluster (``cluster.ray_scan``, the
``ray`` extra). Importing this package imports no Ray; the functions below do, when called.

    from glass_cli.cluster import ray_scan_paths
    job = ray_scan_paths(["/shared/photos"], address="auto", jsonl="scan.jsonl")
    with job.open():
        for result in job:
            ...

``scan_dataset`` is the same scan as a step of a Ray Data pipeline you build yourself.
"""

from __future__ import annotations


def ray_scan_paths(*args, **kwargs):
    """``inference.job.scan_paths`` run on Ray; see ``cluster.ray_scan.ray_scan_paths``."""
    from glass_cli.cluster.ray_scan import ray_scan_paths as run

    return run(*args, **kwargs)


def scan_dataset(*args, **kwargs):
    """A Ray dataset of paths in, one record per file out; see ``cluster.ray_scan.scan_dataset``."""
    from glass_cli.cluster.ray_scan import scan_dataset as run

    return run(*args, **kwargs)


__all__ = ["ray_scan_paths", "scan_dataset"]
