"""Checkpoints: weights in safetensors, the ModelConfig as JSON, never a pickle.

``save`` writes ``NAME.safetensors`` (the config also embedded in its metadata, so the file
stands alone) and ``NAME.json`` beside it (the same config, for people and for tools that
adjust the threshold). ``load`` accepts either path; when both exist the JSON beside the
weights is the one read, so an edited threshold there takes effect. Architecture mismatches
between config and weights are caught by a strict state-dict load.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from glass_cli.config import ModelConfig
from glass_cli.errors import GlassError
from glass_cli.io import atomic, digest

FORMAT = "glass-checkpoint/1"
_META_CONFIG = "glass_config"
_META_FORMAT = "format"
DEFAULT_WEIGHTS_NAME = "baseline-lite0.safetensors"
SHIPPED_MODELS = {"default": "baseline-lite0", "baseline": "baseline-lite0", "glass": "glass-lite0"}
"""Names that ``--weights`` accepts for the models shipped in weights/ (see its MODEL_CARD.md).
The default is the resize-only baseline, which ranks sources it never saw better than GLASS
trained alike (issue 38, docs/experiments/train-v3.md); ``glass`` names the GLASS model."""


class CheckpointError(GlassError):
    """A checkpoint that cannot be used, with a one-line reason."""


def paths_for(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights.safetensors, config.json) for a path given as either one or as a bare stem."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save(model, config: ModelConfig, path: str | os.PathLike, *, half: bool = False) -> Path:
    """Write weights + config atomically; returns the .safetensors path.

    ``half=True`` stores floating-point tensors as fp16 (loading casts them back to fp32).
    """
    from safetensors.torch import save as to_bytes

    weights, cfg_path = paths_for(path)
    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu")
        if half and t.is_floating_point():
            t = t.half()
        tensors[name] = t.contiguous().clone()  # own storage: safetensors refuses shared tensors
    meta = {_META_FORMAT: FORMAT, _META_CONFIG: config.to_json()}
    atomic.write_bytes(weights, to_bytes(tensors, metadata=meta))
    atomic.write_text(cfg_path, config.to_json() + "\n")
    return weights


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The config of a checkpoint, without touching torch."""
    weights, cfg_path = paths_for(path)
    if cfg_path.is_file():
        try:
            return ModelConfig.from_json(cfg_path.read_text(encoding="utf-8"))
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{cfg_path}: invalid glass model config ({exc})") from None
    if not weights.is_file():
        raise CheckpointError(f"{weights}: no such checkpoint")
    meta = _read_metadata(weights)
    if _META_CONFIG not in meta:
        raise CheckpointError(f"{weights}: safetensors file without a glass config (no {cfg_path.name} beside it either)")
    try:
        return ModelConfig.from_json(meta[_META_CONFIG])
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{weights}: invalid glass model config ({exc})") from None


def _read_metadata(weights: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:
        hint = " (glass never unpickles .pt/.pth files)" if weights.suffix in (".pt", ".pth") else ""
        raise CheckpointError(f"{weights}: not a readable safetensors file{hint}: {exc}") from None


def load(path: str | os.PathLike, device: str = "cpu"):
    """Rebuild the model a checkpoint describes and load its weights; returns (model, config).

    The model comes back in eval mode, on ``device``, in fp32.
    """
    from safetensors.torch import load_file

    from glass_cli.models import build_model

    p = Path(path)
    if p.suffix not in ("", ".safetensors", ".json"):
        raise CheckpointError(f"{p}: expected a .safetensors checkpoint (glass never unpickles .pt/.pth files)")
    config = read_config(p)
    weights, _ = paths_for(p)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file missing")
    _read_metadata(weights)  # a clear error for a file that is not safetensors
    model = build_model(config)
    state = load_file(str(weights), device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        detail = (missing or unexpected)[0]
        raise CheckpointError(
            f"{weights}: weights do not match the {config.describe()} architecture "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors, e.g. {detail})"
        )
    return model.float().to(device).eval(), config


def _shipped(name: str) -> Path | None:
    candidates = []
    try:
        candidates.append(Path(str(resources.files("glass_cli") / "weights" / name)))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "weights" / name)
    return next((c for c in candidates if c.is_file()), None)


def shipped_weights(stem: str, engine: str = "auto") -> Path | None:
    """A shipped model's file by stem (``SHIPPED_MODELS``' values): ``auto`` and ``onnx`` take
    its ONNX export, which scans without torch; ``torch`` takes the checkpoint it was exported
    from. None when this install lacks it."""
    names = [f"{stem}.safetensors"] if engine == "torch" else [f"{stem}.onnx", f"{stem}.safetensors"]
    return next((found for found in map(_shipped, names) if found is not None), None)


def default_weights(engine: str = "auto") -> Path | None:
    """The shipped default model: $GLASS_WEIGHTS, else the shipped files (package data, then a
    checkout's weights/), the ONNX export first unless ``engine`` is ``torch``."""
    env = os.environ.get("GLASS_WEIGHTS")
    if env:
        return Path(env)
    return shipped_weights(SHIPPED_MODELS["default"], engine)


def resolve_weights(path: str | os.PathLike | None, engine: str = "auto") -> Path:
    """The weights a command should use: ``path`` if given, else the default model for
    ``engine`` (``default_weights``); a one-line CheckpointError when there is none.

    A bare shipped model's name (``default``, ``baseline``, ``glass``) that is not a file here stands
    for that shipped model, so an installed glass can use the baseline without a path."""
    if path is not None:
        name = os.fspath(path)
        exists = any(p.is_file() for p in (Path(name), *paths_for(name)))  # a folder "glass" (a clone) is no model
        if name in SHIPPED_MODELS and not exists:
            found = shipped_weights(SHIPPED_MODELS[name], engine)
            if found is None:
                raise CheckpointError(f"{name}: the shipped {name} model (weights/{SHIPPED_MODELS[name]}.*) is not in this install")
            return found
        if not exists:
            raise CheckpointError(f"{name}: {_no_model(name)}")
        return Path(path)
    found = default_weights(engine)
    if found is None:
        raise CheckpointError(
            f"no model weights: the default model (weights/{DEFAULT_WEIGHTS_NAME}) is not in this install; "
            "pass --weights FILE.safetensors (see `glass train`) or set GLASS_WEIGHTS"
        )
    return found


def _no_model(name: str) -> str:
    """Why ``name`` names no model: a path that is not there, or a name that is no shipped
    model's (with the one it resembles)."""
    import difflib

    shipped = f"shipped models: {', '.join(SHIPPED_MODELS)}"
    path = Path(name)
    if path.suffix.lower() == ".onnx":
        return f"no such ONNX model ({shipped})"
    if path.suffix or len(path.parts) > 1:
        return f"no such checkpoint ({shipped})"
    close = difflib.get_close_matches(name, list(SHIPPED_MODELS), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"no model by that name; {hint}{shipped} (or give a .safetensors checkpoint or an .onnx export)"


def weights_sha256(path: str | os.PathLike) -> str:
    return digest.file_sha256(paths_for(path)[0])


def describe_file(path: str | os.PathLike, sha: str | None = None) -> dict:
    """Summary for reports: path, sha256 of the weights file (``sha`` when already known),
    and the config."""
    weights, _ = paths_for(path)
    sha = sha or weights_sha256(path)
    return {"id": digest.model_id(sha), "weights": str(weights), "sha256": sha,
            "config": digest.portable(read_config(path).to_dict())}
