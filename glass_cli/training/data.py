"""Where the data helpers used to live: ``datasets`` (reading, splits, balance) and
``augment`` (training perturbations) now hold them; these names stay importable from here."""

from glass_cli.training.augment import (
    Augment,
    augment_for,
    encoded_bytes,
    encoded_roundtrip,
    jpeg_bytes,
    jpeg_roundtrip,
    rescale_long_side,
    sample_rng,
)
from glass_cli.training.datasets import (
    CLASS_NAMES,
    LABELS,
    SOURCE_POWER,
    DataError,
    Sample,
    assign_split,
    class_counts,
    class_weights,
    epoch_order,
    holdout_split,
    read_dataset,
    select,
    source_weights,
    stratified_slice,
)

__all__ = [
    "Augment", "augment_for", "encoded_bytes", "encoded_roundtrip", "jpeg_bytes", "jpeg_roundtrip", "rescale_long_side",
    "sample_rng", "CLASS_NAMES", "LABELS", "SOURCE_POWER", "DataError", "Sample", "assign_split", "class_counts",
    "class_weights", "epoch_order", "holdout_split", "read_dataset", "select", "source_weights", "stratified_slice",
]
