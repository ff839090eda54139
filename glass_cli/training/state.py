"""A run's resumable state: ``config.json`` and ``resume.safetensors``.

``resume.safetensors`` holds the model, optimiser and RNG tensors, with the epoch counter,
scheduler, history and config as JSON in the file's metadata. It is written last after each
epoch, in one atomic rename, so a run killed at any moment resumes from its last completed
epoch with exactly the state it had then.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from glass_cli.config import RUNTIME_KEYS, ModelConfig, TrainConfig
from glass_cli.io import atomic
from glass_cli.training.errors import TrainError
from glass_cli.training.runfiles import EpochResult

STATE_FORMAT = "glass-train-state/1"
STATE_FILE = "resume.safetensors"
CONFIG_FILE = "config.json"
KEPT_ON_RESUME = (*RUNTIME_KEYS, "name", "runs_dir")
"""Options a resumed run takes from the command that resumes it, not from the saved run."""


@dataclass
class RunProgress:
    """Where a run stands: what the state file keeps besides tensors."""

    epoch: int = 0
    best_score: float = -math.inf
    history: list[EpochResult] | None = None


def check_run_dir(folder: Path, config: TrainConfig, resume: bool, is_main: bool) -> TrainConfig | None:
    """The saved config when resuming (TrainError when there is nothing to resume); None for
    a new run, whose folder must not hold anything yet."""
    state = folder / STATE_FILE
    if resume:
        if not state.is_file():
            raise TrainError(f"{state}: nothing to resume (no state file; the run never finished an epoch)")
        return load_run_config(config.runs_dir, config.name)
    if is_main and folder.exists() and any(folder.iterdir()):
        raise TrainError(f"{folder}: run folder exists; pass --resume to continue it, or choose another --name")
    return None


def resumed_config(saved: TrainConfig, current: TrainConfig) -> TrainConfig:
    """The run's own settings with this invocation's runtime options (the folder may have
    been moved or renamed)."""
    return saved.replace(**{k: getattr(current, k) for k in KEPT_ON_RESUME})


def write_config(folder: Path, config: TrainConfig) -> None:
    atomic.write_text(folder / CONFIG_FILE, config.to_json() + "\n")


def save_state(
    folder: Path, *, model, optimizer, scheduler, scaler, device: str, progress: RunProgress, config: TrainConfig, model_config: ModelConfig
) -> None:
    """Write ``resume.safetensors`` atomically."""
    import torch
    from safetensors.torch import save as to_bytes

    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, slots in opt["state"].items():
        for key, value in slots.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{idx}.{key}"] = t.detach().cpu().contiguous().clone()
    tensors["rng.torch"] = torch.get_rng_state()
    if device.startswith("cuda"):
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    meta = {
        "format": STATE_FORMAT,
        "epoch": progress.epoch,
        "best_score": progress.best_score if math.isfinite(progress.best_score) else None,
        "param_groups": opt["param_groups"],
        "scheduler": sched,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": [asdict(r) for r in progress.history or []],
        "config": config.to_dict(),
        "model_config": model_config.to_dict(),
    }
    atomic.write_bytes(folder / STATE_FILE, to_bytes(tensors, metadata={"state": json.dumps(meta)}))


def load_state(folder: Path, *, model, model_config: ModelConfig, optimizer, scheduler, scaler, device: str) -> RunProgress:
    """Put the saved tensors back into ``model``, ``optimizer``, ``scheduler``, ``scaler`` and
    torch's generators; returns where the run stood."""
    import torch
    from safetensors import safe_open

    path = folder / STATE_FILE
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise TrainError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != STATE_FORMAT:
        raise TrainError(f"{path}: not a {STATE_FORMAT} file")
    saved_model = ModelConfig.from_dict(meta["model_config"])
    if saved_model.replace(glass_version=model_config.glass_version) != model_config:
        raise TrainError(f"{path}: saved model ({saved_model.describe()}) differs from this run's ({model_config.describe()})")
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(model_state, strict=True)
    slots: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, key = k.split(".", 2)
            slots.setdefault(int(idx), {})[key] = v
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    sched = scheduler.state_dict()
    sched.update(meta["scheduler"])
    scheduler.load_state_dict(sched)
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and device.startswith("cuda"):
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    return RunProgress(
        epoch=int(meta["epoch"]),
        best_score=-math.inf if meta["best_score"] is None else float(meta["best_score"]),
        history=[EpochResult(**r) for r in meta["history"]],
    )


def run_state(run: str | os.PathLike) -> dict[str, Any] | None:
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
        if key in KEPT_ON_RESUME:
            continue
        if getattr(saved, key) != value:
            raise TrainError(
                f"run {saved.name} was started with {key}={getattr(saved, key)!r}; --resume cannot change it to {value!r}"
            )
