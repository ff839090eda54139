"""The scan: files in, one ``ScanResult`` per file out, read top to bottom.

- ``settings``: ``ScanSettings`` and ``Limits``, everything a scan is told, checked once;
- ``step``: one file made ready for the model (read, hash, evidence, decode, watermarks,
  too-small check, views): the step every runner calls;
- ``device``: the GPU half of ``--decode gpu`` (nvJPEG decode and views on the device);
- ``local``: ``scan``, the step on this machine's thread or process pool, then batches
  through an open engine;
- ``cluster``: the same on a Ray cluster (``RayRunner``, ``scan_dataset``; the ``ray`` extra);
- ``job``: ``scan_paths`` and ``ScanJob``, the whole of ``glass scan``: checks, walk, model,
  runner and outputs.

The result types the scan produces and its outputs read are ``glass_cli.results``.
"""
