"""Training: labelled data sets (``datasets``), augmentation (``augment``) and the trainer
(``trainer``, with its ``state``, ``schedule``, ``distributed``, ``inputs`` and ``runfiles``)."""
