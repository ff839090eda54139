"""The trainer: GLASS or the baseline, one epoch per call, resumable, single process or DDP.

    trainer = Trainer(TrainConfig(data="train-v1", name="lite0", epochs=10))
    while not trainer.done:
        result = trainer.train_epoch()      # trains, validates, writes runs/<name>/
        report(result.score)                # e.g. an Optuna trial

What a run writes to ``runs/<name>/``:
- ``config.json``: the resolved TrainConfig (a valid ``--config`` file);
- ``metrics.csv`` and ``curves.png``: one row / point per finished epoch;
- ``best`` and ``last`` checkpoints (``checkpoint.save``: safetensors + JSON);
- ``resume.safetensors``: model, optimiser and RNG tensors, with the epoch counter,
  scheduler, history and config as JSON in the file's metadata. It is written last, in one
  atomic rename, so a run killed at any moment resumes from its last completed epoch.

Exact resumption: data order, augmentation and crop placement are drawn from generators
seeded by (seed, epoch, position), so they do not depend on what happened before; dropout
draws from torch's global generator, whose state is saved at each epoch's end. On one
machine and thread count, a resumed run ends with the same weights as an uninterrupted one.

Under ``torchrun`` (WORLD_SIZE > 1) the same code runs as DistributedDataParallel: gloo on
CPU, NCCL on GPU. Each rank takes every WORLD_SIZE-th sample of the epoch's order, validation
scores are gathered, and only rank 0 writes files or shows progress.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from glass_cli.config import RUNTIME_KEYS, ModelConfig, TrainConfig
from glass_cli.io import atomic
from glass_cli.io.image import LoadError, load_image
from glass_cli.models import checkpoint
from glass_cli.preprocess.prepare import prepare_file
from glass_cli.preprocess.views import Views, build_views, collate
from glass_cli.training.data import (
    DataError,
    Sample,
    assign_split,
    augment_for,
    class_counts,
    class_weights,
    epoch_order,
    read_dataset,
    sample_rng,
    select,
    stratified_slice,
)

STATE_FORMAT = "glass-train-state/1"
STATE_FILE = "resume.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
GROUPS = ("global", "local", "atten_class")


class TrainError(Exception):
    """A run that cannot start or continue; one line naming the file and the reason."""


@dataclass
class EpochResult:
    epoch: int
    """1-based number of the epoch just finished."""
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    val_balanced_acc: float | None
    val_auroc: float | None
    val_ece: float | None
    lr: dict[str, float]
    seconds: float
    score: float
    """The validation metric that selects the best checkpoint (higher is better)."""
    best: bool = False

    def to_row(self) -> dict:
        row = {k: v for k, v in asdict(self).items() if k not in ("lr", "score")}
        row.update({f"lr_{k}": v for k, v in self.lr.items()})
        return row


# ---------------------------------------------------------------------------- run helpers


def run_dir(config: TrainConfig) -> Path:
    return Path(config.runs_dir) / config.name


def default_name(config: TrainConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.arch}-{config.global_backbone}-{stamp}"


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(name: str, local_rank: int) -> str:
    """As ``engines.resolve_device``, with plain 'cuda' meaning this process's GPU under torchrun."""
    from glass_cli.inference.engines import EngineError
    from glass_cli.inference.engines import resolve_device as engine_device

    try:
        device = engine_device(name)
    except EngineError as exc:
        raise TrainError(str(exc)) from None
    return f"cuda:{local_rank}" if device == "cuda" else device


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 down to ``floor``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    t = min(max(step - warmup, 0) / span, 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


# ---------------------------------------------------------------------------- images


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


# ---------------------------------------------------------------------------- the trainer


class Trainer:
    """Build everything a run needs; then ``train_epoch()`` until ``done``.

    ``resume=True`` continues ``runs/<name>/`` from its ``resume.safetensors``. ``console``
    (a rich Console) receives progress bars and one line per epoch; None keeps quiet.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, console=None):
        import torch

        if not config.name:
            config = config.replace(name=default_name(config))
        self.rank, self.world, self.local_rank = _dist_env()
        self.is_main = self.rank == 0
        self.console = console if (self.is_main and not config.quiet) else None
        self.dir = run_dir(config)
        saved = self._check_run_dir(config, resume)
        if saved is not None:  # the run's own settings, with this invocation's runtime options
            keep = {k: getattr(config, k) for k in (*RUNTIME_KEYS, "name", "runs_dir")}
            config = saved.replace(**keep)  # the folder may have been moved or renamed
        self.config = config
        self.device = resolve_device(config.device, self.local_rank)
        self._init_distributed()

        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        torch.manual_seed(config.seed)

        self.train_set, self.val_set = read_splits(config)
        self.store = ImageStore(config.cache_images)
        self._val_views: dict[str, Views] = {}
        self._pool = ThreadPoolExecutor(config.workers) if config.workers > 0 else None
        if config.cache_images:
            self._decode_all()

        self.model, self.model_config = build_model(config)
        self.model.to(self.device).to(memory_format=torch.channels_last)
        self.net = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.local_rank] if self.device.startswith("cuda") else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)

        self.epoch_size = config.epoch_size or len(self.train_set)
        self.steps_per_epoch = max(1, math.ceil((self.epoch_size // self.world) / config.batch_size))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.optimizer = self._build_optimizer(config)
        warmup = round(config.warmup_epochs * self.steps_per_epoch)
        lambdas = [
            (lambda step, base=g["lr"]: lr_factor(step, self.total_steps, warmup, min(config.min_lr / base, 1.0)))
            for g in self.optimizer.param_groups
        ]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambdas)
        self.amp_dtype = None
        if config.amp and self.device.startswith("cuda"):
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        weights = None
        if config.balance == "loss":
            weights = torch.tensor(class_weights(self.train_set), dtype=torch.float32, device=self.device)
        self.criterion = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)
        self.val_criterion = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing, reduction="sum")
        self.augment = (
            augment_for(config.reencode, size_p=config.size_aug, size_min=config.size_aug_min, size_max=config.size_aug_max)
            if config.augment
            else None
        )

        self.epoch = 0
        self.history: list[EpochResult] = []
        self.best_score = -math.inf
        torch.manual_seed(config.seed + 7919 * (self.rank + 1))  # dropout stream, distinct per rank
        if resume:
            self._load_state()
        elif self.is_main:
            atomic.write_text(self.dir / CONFIG_FILE, config.to_json() + "\n")
        self._barrier()
        self._say(
            f"run {self.dir}: {self.model_config.describe()}, train {len(self.train_set)} images "
            f"({class_counts(self.train_set)[0]} real / {class_counts(self.train_set)[1]} fake), "
            f"val {len(self.val_set)}, {self.epoch_size} images and {self.steps_per_epoch} steps/epoch, device {self.device}"
            + (f", {self.world} processes" if self.world > 1 else "")
            + (f", resuming after epoch {self.epoch}" if resume else "")
        )

    # ------------------------------------------------------------------ setup

    def _check_run_dir(self, config: TrainConfig, resume: bool) -> TrainConfig | None:
        state = self.dir / STATE_FILE
        if resume:
            if not state.is_file():
                raise TrainError(f"{state}: nothing to resume (no state file; the run never finished an epoch)")
            return load_run_config(config.runs_dir, config.name)
        if self.is_main and self.dir.exists() and any(self.dir.iterdir()):
            raise TrainError(f"{self.dir}: run folder exists; pass --resume to continue it, or choose another --name")
        return None

    def _init_distributed(self) -> None:
        if self.world <= 1:
            return
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if self.device.startswith("cuda") else "gloo"
            if self.device.startswith("cuda"):
                torch.cuda.set_device(self.device)
            dist.init_process_group(backend=backend)

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _build_optimizer(self, config: TrainConfig):
        import torch

        m = self.model
        if config.arch == "baseline":
            groups = [{"params": list(m.parameters()), "lr": config.lr_global, "weight_decay": config.wd_global, "name": "global"}]
        else:
            backbone_ids = {id(p) for p in m.global_net.parameters()} | {id(p) for p in m.local_net.parameters()}
            rest = [p for p in m.parameters() if id(p) not in backbone_ids]
            groups = [
                {"params": list(m.global_net.parameters()), "lr": config.lr_global, "weight_decay": config.wd_global, "name": "global"},
                {"params": list(m.local_net.parameters()), "lr": config.lr_local, "weight_decay": config.wd_local, "name": "local"},
                {"params": rest, "lr": config.lr_atten_class, "weight_decay": 0.0, "name": "atten_class"},
            ]
        return torch.optim.AdamW(groups)

    def _decode_all(self) -> None:
        """Decode every training image once; unreadable files are dropped with a warning."""
        bad: list[str] = []
        todo = self.train_set[self.rank :: self.world] if self.world > 1 else self.train_set

        def load(sample: Sample):
            try:
                self.store.get(sample)
                return None
            except LoadError as exc:
                return f"{exc.path}: {exc.reason}"

        with self._progress() as progress:
            task = progress.add_task("decoding", total=len(todo), info="") if progress else None
            results = self._pool.map(load, todo) if self._pool else map(load, todo)
            for outcome in results:
                if outcome:
                    bad.append(outcome)
                if progress:
                    progress.advance(task)
        self._drop_unreadable(bad)

    def _drop_unreadable(self, bad: list[str]) -> None:
        if self.world > 1:
            import torch.distributed as dist

            gathered: list[list[str]] = [[] for _ in range(self.world)]
            dist.all_gather_object(gathered, bad)
            bad = [b for part in gathered for b in part]
        if not bad:
            return
        for line in bad:
            self._say(f"[yellow]skipping unreadable training image[/yellow] {line}", markup=True)
        paths = {b.split(": ", 1)[0] for b in bad}
        self.train_set = [s for s in self.train_set if s.path not in paths]

    # ------------------------------------------------------------------ output

    def _say(self, text: str, markup: bool = False) -> None:
        if self.console is not None:
            self.console.print(text, markup=markup, highlight=False, soft_wrap=True)

    def _progress(self):
        import contextlib

        if self.console is None or not self.console.is_terminal:
            return contextlib.nullcontext(None)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )

    # ------------------------------------------------------------------ data pipeline

    def _train_item(self, sample: Sample, epoch: int, position: int) -> Views | None:
        try:
            image, _ = self.store.get(sample)
        except LoadError as exc:
            self._say(f"skipping unreadable training image {exc.path}: {exc.reason}")
            return None
        rng = sample_rng(self.config.seed, epoch, position)
        if self.augment is not None:
            image = self.augment.apply(image, rng)
        return build_views(image, self.model_config, int(rng.integers(0, 2**63 - 1)))

    def _val_item(self, sample: Sample) -> Views | None:
        hit = self._val_views.get(sample.path)
        if hit is not None:
            return hit
        try:
            views = prepare_file(sample.path, self.model_config).views
        except LoadError as exc:
            self._say(f"skipping unreadable validation image {exc.path}: {exc.reason}")
            return None
        if self.config.cache_images:
            self._val_views[sample.path] = views
        return views

    def _batches(self, jobs: list[list[Callable[[], Views | None]]], labels: list[list[int]]) -> Iterator[tuple]:
        """Run each batch's preparation jobs on the thread pool, two batches ahead."""
        ahead: deque[list[Future | Views | None]] = deque()

        def submit(i: int):
            if self._pool is None:
                return [job() for job in jobs[i]]
            return [self._pool.submit(job) for job in jobs[i]]

        for i in range(min(2, len(jobs))):
            ahead.append(submit(i))
        for i in range(len(jobs)):
            parts = ahead.popleft()
            if i + 2 < len(jobs):
                ahead.append(submit(i + 2))
            views = [p.result() if isinstance(p, Future) else p for p in parts]
            keep = [(v, y) for v, y in zip(views, labels[i]) if v is not None]
            yield [v for v, _ in keep], [y for _, y in keep]

    def _tensors(self, views: list[Views], labels: list[int]):
        import torch

        g, c = collate(views)
        g = torch.from_numpy(g).to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        c = None if c is None else torch.from_numpy(c).to(self.device, non_blocking=True)
        y = torch.tensor(labels, dtype=torch.long, device=self.device)
        return g, c, y

    def _autocast(self):
        import contextlib

        import torch

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    # ------------------------------------------------------------------ epochs

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    def train_epoch(self) -> EpochResult:
        """Train one epoch, validate, write the run's files; returns the epoch's numbers."""
        import torch

        if self.done:
            raise TrainError(f"{self.dir}: all {self.config.epochs} epochs are done")
        start = time.perf_counter()
        epoch = self.epoch
        order = epoch_order(self.train_set, self.config.seed, epoch, self.config.balance, self.epoch_size)
        per_rank = len(order) // self.world
        positions = list(range(self.rank, len(order), self.world))[:per_rank]
        bs = self.config.batch_size
        chunks = [positions[i : i + bs] for i in range(0, len(positions), bs)]
        jobs = [[(lambda s=self.train_set[order[p]], p=p: self._train_item(s, epoch, p)) for p in chunk] for chunk in chunks]
        labels = [[self.train_set[order[p]].label for p in chunk] for chunk in chunks]

        self.net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        seen = torch.zeros((), dtype=torch.float64, device=self.device)
        with self._progress() as progress:
            task = progress.add_task(f"epoch {epoch + 1}/{self.config.epochs} train", total=len(jobs), info="") if progress else None
            for views, ys in self._batches(jobs, labels):
                if not views:
                    self.scheduler.step()
                    continue
                g, c, y = self._tensors(views, ys)
                with self._autocast():
                    logits, _ = self.net(g, c)
                    loss = self.criterion(logits.float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    loss.backward()
                    self.optimizer.step()
                self.scheduler.step()
                n = y.shape[0]
                loss_sum += loss.detach().double() * n
                correct += (logits.detach().argmax(1) == y).sum().double()
                seen += n
                if progress:
                    progress.update(task, advance=1, info=f"loss {loss_sum.item() / seen.item():.4f}")
        totals = self._all_reduce(torch.stack([loss_sum, correct, seen]))
        train_loss, train_acc = (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()
        val = self.validate()
        self.epoch = epoch + 1
        lrs = {g.get("name", str(i)): float(g["lr"]) for i, g in enumerate(self.optimizer.param_groups)}
        score = {"accuracy": val["accuracy"], "auroc": val["auroc"], "loss": -val["loss"]}[self.config.select_metric]
        score = -math.inf if score is None else float(score)
        result = EpochResult(
            epoch=self.epoch,
            train_loss=train_loss,
            train_acc=train_acc,
            val_loss=val["loss"],
            val_acc=val["accuracy"],
            val_balanced_acc=val["balanced_accuracy"],
            val_auroc=val["auroc"],
            val_ece=val["ece"],
            lr=lrs,
            seconds=time.perf_counter() - start,
            score=score,
            best=score > self.best_score,
        )
        if result.best:
            self.best_score = score
        self.history.append(result)
        if self.is_main:
            self._write_epoch(result)
        self._barrier()
        self._say(self._epoch_line(result))
        return result

    def fit(self) -> list[EpochResult]:
        while not self.done:
            self.train_epoch()
        return self.history

    def validate(self) -> dict:
        """Validation loss and metrics on the val split, views exactly as scan builds them."""
        import torch

        from glass_cli.evaluation.metrics import binary_metrics

        part = self.val_set[self.rank :: self.world]
        bs = self.config.batch_size
        chunks = [part[i : i + bs] for i in range(0, len(part), bs)]
        jobs = [[(lambda s=s: self._val_item(s)) for s in chunk] for chunk in chunks]
        labels = [[s.label for s in chunk] for chunk in chunks]
        probs: list[float] = []
        ys: list[int] = []
        loss_sum = 0.0
        self.net.eval()
        with torch.inference_mode(), self._progress() as progress:
            task = progress.add_task(f"epoch {self.epoch + 1}/{self.config.epochs} val", total=len(jobs), info="") if progress else None
            for views, y in self._batches(jobs, labels):
                if views:
                    g, c, yt = self._tensors(views, y)
                    with self._autocast():
                        logits, _ = self.model(g, c)
                    logits = logits.float()
                    loss_sum += float(self.val_criterion(logits, yt))
                    probs.extend(torch.softmax(logits, 1)[:, 1].cpu().tolist())
                    ys.extend(y)
                if progress:
                    progress.advance(task)
        if self.world > 1:
            import torch.distributed as dist

            gathered: list = [None] * self.world
            dist.all_gather_object(gathered, (probs, ys, loss_sum))
            probs = [p for g in gathered for p in g[0]]
            ys = [y for g in gathered for y in g[1]]
            loss_sum = sum(g[2] for g in gathered)
        if not ys:
            raise TrainError(f"{self.config.data}: no readable validation images")
        out = binary_metrics(ys, probs, 0.5)
        out["loss"] = loss_sum / len(ys)
        return out

    def _all_reduce(self, t):
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
        return t

    @staticmethod
    def _epoch_line(r: EpochResult) -> str:
        def f(x, spec=".4f"):
            return "n/a" if x is None else format(x, spec)

        return (
            f"epoch {r.epoch}: train loss {r.train_loss:.4f} acc {r.train_acc:.3f} | val loss {r.val_loss:.4f} "
            f"acc {r.val_acc:.3f} auroc {f(r.val_auroc)} ece {f(r.val_ece)} | {r.seconds:.1f}s" + ("  (best)" if r.best else "")
        )

    # ------------------------------------------------------------------ files

    def _write_epoch(self, result: EpochResult) -> None:
        if result.best:
            checkpoint.save(self.model, self.model_config, self.dir / "best")
        checkpoint.save(self.model, self.model_config, self.dir / "last")
        self._write_metrics()
        self._save_state()

    def _write_metrics(self) -> None:
        rows = [r.to_row() for r in self.history]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        atomic.write_text(self.dir / METRICS_FILE, buf.getvalue())
        from glass_cli.outputs.plots import training_curves

        atomic.write_bytes(self.dir / CURVES_FILE, training_curves(self.history, title=f"{self.config.name}: {self.model_config.describe()}"))

    def _save_state(self) -> None:
        import torch
        from safetensors.torch import save as to_bytes

        tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()}
        opt = self.optimizer.state_dict()
        for idx, slots in opt["state"].items():
            for key, value in slots.items():
                t = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"optim.{idx}.{key}"] = t.detach().cpu().contiguous().clone()
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.startswith("cuda"):
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        sched = {k: v for k, v in self.scheduler.state_dict().items() if k != "lr_lambdas"}
        meta = {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "best_score": self.best_score if math.isfinite(self.best_score) else None,
            "param_groups": opt["param_groups"],
            "scheduler": sched,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "history": [asdict(r) for r in self.history],
            "config": self.config.to_dict(),
            "model_config": self.model_config.to_dict(),
        }
        atomic.write_bytes(self.dir / STATE_FILE, to_bytes(tensors, metadata={"state": json.dumps(meta)}))

    def _load_state(self) -> None:
        import torch
        from safetensors import safe_open

        path = self.dir / STATE_FILE
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["state"])
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:
            raise TrainError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from None
        if meta.get("format") != STATE_FORMAT:
            raise TrainError(f"{path}: not a {STATE_FORMAT} file")
        saved_model = ModelConfig.from_dict(meta["model_config"])
        if saved_model.replace(glass_version=self.model_config.glass_version) != self.model_config:
            raise TrainError(f"{path}: saved model ({saved_model.describe()}) differs from this run's ({self.model_config.describe()})")
        model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model_state, strict=True)
        slots: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                slots.setdefault(int(idx), {})[key] = v
        self.optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
        sched = self.scheduler.state_dict()
        sched.update(meta["scheduler"])
        self.scheduler.load_state_dict(sched)
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.startswith("cuda"):
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.epoch = int(meta["epoch"])
        self.best_score = -math.inf if meta["best_score"] is None else float(meta["best_score"])
        self.history = [EpochResult(**r) for r in meta["history"]]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    @classmethod
    def open(cls, options: dict, *, resume: bool, console=None) -> Trainer:
        """A Trainer from TrainConfig fields (``options``: what ``glass train`` or a notebook
        asks for). With ``resume`` the run's saved config is loaded and ``options`` may change
        only what ``check_resume_options`` allows (the runtime options and where the run
        lives); what they set of those is kept, the rest comes from the saved run."""
        if not resume:
            return cls(TrainConfig.from_dict(options), console=console)
        if not options.get("name"):
            raise TrainError("--resume needs the --name of the run to continue")
        saved = load_run_config(options.get("runs_dir", "runs"), options["name"])
        check_resume_options(saved, options)
        return cls(TrainConfig.from_dict(options, base=saved), resume=True, console=console)


def run_state(run: str | os.PathLike) -> dict | None:
    """What a run's state file says about it (epoch finished, history, config), without
    loading any tensor; None when the run never finished an epoch."""
    from safetensors import safe_open

    path = Path(run) / STATE_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["state"])
    except Exception as exc:
        raise TrainError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != STATE_FORMAT:
        raise TrainError(f"{path}: not a {STATE_FORMAT} file")
    return meta


def load_run_config(runs_dir: str | os.PathLike, name: str) -> TrainConfig:
    """The resolved config a run saved when it started."""
    path = Path(runs_dir) / name / CONFIG_FILE
    try:
        return TrainConfig.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainError(f"{path.parent}: no such run to resume (no {CONFIG_FILE} there)") from None
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path}: cannot read the run's config ({exc})") from None


def check_resume_options(saved: TrainConfig, options: dict) -> None:
    """Refuse options that would change what a resumed run computes (runtime ones may change)."""
    for key, value in options.items():
        if key in RUNTIME_KEYS or key in ("name", "runs_dir"):
            continue
        if getattr(saved, key) != value:
            raise TrainError(
                f"run {saved.name} was started with {key}={getattr(saved, key)!r}; --resume cannot change it to {value!r}"
            )
