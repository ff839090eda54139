"""The trainer: GLASS or the baseline, one epoch per call, resumable, single process or DDP.

    trainer = Trainer(TrainConfig(data="train-v1", name="lite0", epochs=10))
    while not trainer.done:
        result = trainer.train_epoch()      # trains, validates, writes runs/<name>/
        report(result.score)                # e.g. an Optuna trial

What a run writes to ``runs/<name>/``:
- ``config.json``: the resolved TrainConfig (a valid ``--config`` file);
- ``metrics.csv`` and ``curves.png``: one row / point per finished epoch (``runfiles``);
- ``best`` and ``last`` checkpoints (``checkpoint.save``: safetensors + JSON);
- ``resume.safetensors``: everything a resumed run needs (``state``), written last.

Exact resumption: data order, augmentation and crop placement are drawn from generators
seeded by (seed, epoch, position), so they do not depend on what happened before; dropout
draws from torch's global generator, whose state is saved at each epoch's end. On one
machine and thread count, a resumed run ends with the same weights as an uninterrupted one.

Under ``torchrun`` (WORLD_SIZE > 1) the same code runs as DistributedDataParallel
(``distributed``); the optimiser groups and the schedule are in ``schedule``, the data
pipeline in ``inputs``.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from glass_cli.config import TrainConfig
from glass_cli.data.augment import augment_for, sample_rng
from glass_cli.data.datasets import Sample, class_counts, class_weights, epoch_order
from glass_cli.io.image import LoadError
from glass_cli.models import checkpoint
from glass_cli.outputs.progress import progress
from glass_cli.preprocess.prepare import prepare_file
from glass_cli.preprocess.views import Views, build_views
from glass_cli.training.distributed import Processes
from glass_cli.training.errors import TrainError
from glass_cli.training.inputs import ImageStore, build_model, prefetch, read_splits, to_tensors
from glass_cli.training.runfiles import EpochResult, default_name, epoch_line, run_dir, write_metrics
from glass_cli.training.schedule import build_optimizer, build_scheduler, group_rates
from glass_cli.training.state import (
    RunProgress,
    check_resume_options,
    check_run_dir,
    load_run_config,
    load_state,
    resumed_config,
    save_state,
    write_config,
)

__all__ = ["Trainer", "resolve_device"]


def resolve_device(name: str, local_rank: int) -> str:
    """As ``engines.resolve_device``, with plain 'cuda' meaning this process's GPU under torchrun."""
    from glass_cli.inference.engines import EngineError
    from glass_cli.inference.engines import resolve_device as engine_device

    try:
        device = engine_device(name)
    except EngineError as exc:
        raise TrainError(str(exc)) from None
    return f"cuda:{local_rank}" if device == "cuda" else device


class Trainer:
    """Build everything a run needs; then ``train_epoch()`` until ``done``.

    ``resume=True`` continues ``runs/<name>/`` from its ``resume.safetensors``. ``console``
    (a rich Console) receives progress bars and one line per epoch; None keeps quiet.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, console=None):
        import torch

        if not config.name:
            config = config.replace(name=default_name(config))
        self.procs = Processes.from_env()
        self.rank, self.world, self.local_rank = self.procs.rank, self.procs.world, self.procs.local_rank
        self.is_main = self.procs.is_main
        self.console = console if (self.is_main and not config.quiet) else None
        self.dir = run_dir(config)
        saved = check_run_dir(self.dir, config, resume, self.is_main)
        if saved is not None:
            config = resumed_config(saved, config)
        self.config = config
        self.device = resolve_device(config.device, self.local_rank)
        self.procs.start(self.device)

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
        self.net = self.procs.wrap(self.model, self.device)

        self.epoch_size = config.epoch_size or len(self.train_set)
        self.steps_per_epoch = max(1, math.ceil((self.epoch_size // self.world) / config.batch_size))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.amp_dtype = None
        if config.amp and self.device.startswith("cuda"):
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        weights = None
        if config.balance == "loss":
            weights = torch.tensor(class_weights(self.train_set), dtype=torch.float32, device=self.device)
        self.criterion = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)
        self.aux_weight = config.aux_weight if self.model_config.aux_heads else 0.0
        """Deep supervision: each auxiliary head's loss weight (0: fused loss only). The
        reported train loss is the fused head's alone, comparable with runs without it."""
        self.local_native = config.local_native if self.model_config.uses_crops else 0.0
        """GLASS: probability that a sample's crops come from its picture before rescaling."""
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
            standing = load_state(
                self.dir, model=self.model, model_config=self.model_config, optimizer=self.optimizer,
                scheduler=self.scheduler, scaler=self.scaler, device=self.device,
            )
            self.epoch, self.best_score, self.history = standing.epoch, standing.best_score, standing.history
        elif self.is_main:
            write_config(self.dir, config)
        self.procs.barrier()
        real, fake = class_counts(self.train_set)
        self._say(
            f"run {self.dir}: {self.model_config.describe()}, train {len(self.train_set)} images "
            f"({real} real / {fake} fake), "
            f"val {len(self.val_set)}, {self.epoch_size} images and {self.steps_per_epoch} steps/epoch, device {self.device}"
            + (f", {self.world} processes" if self.world > 1 else "")
            + (f", resuming after epoch {self.epoch}" if resume else "")
        )

    # ------------------------------------------------------------------ setup

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

        with progress(self.console) as bar:
            task = bar.add_task("decoding", total=len(todo), info="") if bar else None
            results = self._pool.map(load, todo) if self._pool else map(load, todo)
            for outcome in results:
                if outcome:
                    bad.append(outcome)
                if bar:
                    bar.advance(task)
        self._drop_unreadable(bad)

    def _drop_unreadable(self, bad: list[str]) -> None:
        bad = [b for part in self.procs.gather(bad) for b in part]
        if not bad:
            return
        for line in bad:
            self._say(f"[yellow]skipping unreadable training image[/yellow] {line}", markup=True)
        paths = {b.split(": ", 1)[0] for b in bad}
        self.train_set = [s for s in self.train_set if s.path not in paths]

    def _say(self, text: str, markup: bool = False) -> None:
        if self.console is not None:
            self.console.print(text, markup=markup, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------ data pipeline

    def _train_item(self, sample: Sample, epoch: int, position: int) -> Views | None:
        try:
            image, _ = self.store.get(sample)
        except LoadError as exc:
            self._say(f"skipping unreadable training image {exc.path}: {exc.reason}")
            return None
        rng = sample_rng(self.config.seed, epoch, position)
        native = None
        if self.augment is not None:
            if self.local_native and rng.random() < self.local_native:
                image, native = self.augment.apply_split(image, rng)
            else:
                image = self.augment.apply(image, rng)
        return build_views(image, self.model_config, int(rng.integers(0, 2**63 - 1)), crops_from=native)

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

    def _autocast(self):
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
        order = epoch_order(self.train_set, self.config.seed, epoch, self.config.balance, self.epoch_size,
                            self.config.source_power)
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
        with progress(self.console) as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{self.config.epochs} train", total=len(jobs), info="") if bar else None
            for views, ys in prefetch(jobs, labels, self._pool):
                if not views:
                    self.scheduler.step()
                    continue
                g, c, y = to_tensors(views, ys, self.device)
                with self._autocast():
                    if self.aux_weight:
                        logits, _, aux = self.net(g, c, with_aux=True)
                        loss = self.criterion(logits.float(), y)
                        fused_loss = loss.detach()
                        loss = loss + self.aux_weight * sum(self.criterion(a.float(), y) for a in aux)
                    else:
                        logits, _ = self.net(g, c)
                        loss = self.criterion(logits.float(), y)
                        fused_loss = loss.detach()
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
                loss_sum += fused_loss.double() * n
                correct += (logits.detach().argmax(1) == y).sum().double()
                seen += n
                if bar:
                    bar.update(task, advance=1, info=f"loss {loss_sum.item() / seen.item():.4f}")
        totals = self.procs.all_reduce(torch.stack([loss_sum, correct, seen]))
        train_loss, train_acc = (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()
        val = self.validate()
        self.epoch = epoch + 1
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
            lr=group_rates(self.optimizer),
            seconds=time.perf_counter() - start,
            score=score,
            best=score > self.best_score,
        )
        if result.best:
            self.best_score = score
        self.history.append(result)
        if self.is_main:
            self._write_epoch(result)
        self.procs.barrier()
        self._say(epoch_line(result))
        return result

    def fit(self) -> list[EpochResult]:
        while not self.done:
            self.train_epoch()
        return self.history

    def validate(self) -> dict:
        """Validation loss and metrics on the val split, views exactly as scan builds them."""
        import torch

        from glass_cli.metrics import binary_metrics

        part = self.val_set[self.rank :: self.world]
        bs = self.config.batch_size
        chunks = [part[i : i + bs] for i in range(0, len(part), bs)]
        jobs = [[(lambda s=s: self._val_item(s)) for s in chunk] for chunk in chunks]
        labels = [[s.label for s in chunk] for chunk in chunks]
        probs: list[float] = []
        ys: list[int] = []
        loss_sum = 0.0
        self.net.eval()
        with torch.inference_mode(), progress(self.console) as bar:
            task = bar.add_task(f"epoch {self.epoch + 1}/{self.config.epochs} val", total=len(jobs), info="") if bar else None
            for views, y in prefetch(jobs, labels, self._pool):
                if views:
                    g, c, yt = to_tensors(views, y, self.device)
                    with self._autocast():
                        logits, _ = self.model(g, c)
                    logits = logits.float()
                    loss_sum += float(self.val_criterion(logits, yt))
                    probs.extend(torch.softmax(logits, 1)[:, 1].cpu().tolist())
                    ys.extend(y)
                if bar:
                    bar.advance(task)
        if self.world > 1:
            gathered = self.procs.gather((probs, ys, loss_sum))
            probs = [p for g in gathered for p in g[0]]
            ys = [y for g in gathered for y in g[1]]
            loss_sum = sum(g[2] for g in gathered)
        if not ys:
            raise TrainError(f"{self.config.data}: no readable validation images")
        out = binary_metrics(ys, probs, 0.5)
        out["loss"] = loss_sum / len(ys)
        return out

    # ------------------------------------------------------------------ files

    def _write_epoch(self, result: EpochResult) -> None:
        if result.best:
            checkpoint.save(self.model, self.model_config, self.dir / "best")
        checkpoint.save(self.model, self.model_config, self.dir / "last")
        write_metrics(self.dir, self.history, title=f"{self.config.name}: {self.model_config.describe()}")
        save_state(
            self.dir, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler, device=self.device,
            progress=RunProgress(self.epoch, self.best_score, self.history), config=self.config, model_config=self.model_config,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.procs.close()

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

