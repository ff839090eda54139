"""Training: the trainer (``trainer``, with its ``state``, ``schedule``, ``distributed``,
``inputs`` and ``runfiles``). The data sets and augmentation it draws on are ``glass_cli.data``."""
