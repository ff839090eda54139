"""What a run feeds its model: the data splits, the fresh model, decoded images and batches
prepared on worker threads while the model trains."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from glass_cli.config import TrainConfig
from glass_cli.data.datasets import DataError, Sample, assign_split, class_counts, read_dataset, select, stratified_slice
from glass_cli.io.image import load_image
from glass_cli.preprocess.views import Views, collate
from glass_cli.training.errors import TrainError

PREFETCH = 2
"""Batches prepared ahead of the one the model is working on."""


def read_splits(config: TrainConfig) -> tuple[list[Sample], list[Sample]]:
    """The run's training and validation samples (after ``limit_train``/``limit_val``);
    TrainError when the data is missing or a split lacks one of the classes."""
    if not config.data:
        raise TrainError("no training data given (a folder with real/ and fake/, or a manifest .csv)")
    try:
        samples = assign_split(read_dataset(config.data), config.val_fraction)
    except DataError as exc:
        raise TrainError(str(exc)) from None
    train = stratified_slice(select(samples, config.train_split), config.limit_train or None, config.seed)
    val = stratified_slice(select(samples, config.val_split), config.limit_val or None, config.seed)
    for split, part in ((config.train_split, train), (config.val_split, val)):
        real, fake = class_counts(part)
        if not real or not fake:
            raise TrainError(f"{config.data}: the {split!r} split needs real and fake images, has {real} real and {fake} fake")
    return train, val


def build_model(config: TrainConfig):
    """A fresh (model, ModelConfig) for the run's architecture and backbones; TrainError when a
    backbone or its weights are unavailable."""
    from glass_cli.models import new_model
    from glass_cli.models.backbones import BackboneError

    try:
        return new_model(
            config.arch,
            config.global_backbone,
            config.local_name,
            pretrained=config.pretrained,
            global_weights=config.global_weights or None,
            local_weights=config.local_weights or None,
            **config.model_options(),
        )
    except BackboneError as exc:
        raise TrainError(str(exc)) from None


class ImageStore:
    """Decoded training images, optionally kept in memory (decode once, as measured worth it)."""

    def __init__(self, cache: bool):
        self.cache = cache
        self._images: dict[str, tuple] = {}

    def get(self, sample: Sample):
        hit = self._images.get(sample.path)
        if hit is not None:
            return hit
        loaded = load_image(sample.path)
        item = (loaded.image, loaded.digest)
        if self.cache:
            self._images[sample.path] = item
        return item


Job = Callable[[], "Views | None"]


def prefetch(jobs: list[list[Job]], labels: list[list[int]], pool: ThreadPoolExecutor | None) -> Iterator[tuple[list[Views], list[int]]]:
    """Each batch's views and labels, its preparation jobs run on ``pool`` (inline without
    one) ``PREFETCH`` batches ahead; a job that returns None drops its sample."""
    ahead: deque[list[Future | Views | None]] = deque()

    def submit(i: int):
        if pool is None:
            return [job() for job in jobs[i]]
        return [pool.submit(job) for job in jobs[i]]

    for i in range(min(PREFETCH, len(jobs))):
        ahead.append(submit(i))
    for i in range(len(jobs)):
        parts = ahead.popleft()
        if i + PREFETCH < len(jobs):
            ahead.append(submit(i + PREFETCH))
        views = [p.result() if isinstance(p, Future) else p for p in parts]
        keep = [(v, y) for v, y in zip(views, labels[i]) if v is not None]
        yield [v for v, _ in keep], [y for _, y in keep]


def to_tensors(views: list[Views], labels: list[int], device: str):
    """(global views, crops or None, labels) as tensors on ``device``."""
    import torch

    g, c = collate(views)
    g = torch.from_numpy(g).to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    c = None if c is None else torch.from_numpy(c).to(device, non_blocking=True)
    y = torch.tensor(labels, dtype=torch.long, device=device)
    return g, c, y
