"""The glass ONNX file: what an export promises and how scan reads it back, without torch.

An export is one self-contained ``.onnx`` file (weights inside, no ``.data`` sidecar). Its
graph has fixed names:

- inputs  ``global`` float32 [B, 3, S, S] and, for GLASS, ``crops`` float32 [B, K, 3, S, S];
- outputs ``p_ai`` float32 [B] (softmax probability of class "ai") and, for GLASS,
  ``attention`` float32 [B, K] (rows sum to 1).

B and K are symbolic, so one file serves any batch size and any number of crops. An fp16
export keeps float32 inputs and outputs and casts inside the graph, so callers never care.

The file's ``metadata_props`` carry everything scan needs to prepare inputs and interpret
outputs. ``glass_config`` (the full ``ModelConfig`` JSON) is the only key glass reads back;
the other keys repeat a few facts for people and for model viewers such as Netron.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glass_cli import __version__
from glass_cli.config import ModelConfig
from glass_cli.errors import GlassError, one_line
from glass_cli.io import digest

FORMAT = "glass-onnx/1"
SUFFIX = ".onnx"

INPUT_GLOBAL = "global"
INPUT_CROPS = "crops"
OUTPUT_P_AI = "p_ai"
OUTPUT_ATTENTION = "attention"

META_FORMAT = "glass_format"
META_CONFIG = "glass_config"
META_VERSION = "glass_version"
META_MODEL = "glass_model"
META_PRECISION = "precision"
META_SOURCE_SHA256 = "source_sha256"
META_EXPORTER = "exporter"
META_INPUTS = "inputs"
META_OUTPUTS = "outputs"
META_CLASSES = "classes"
META_THRESHOLD = "threshold"


class OnnxModelError(GlassError):
    """An ONNX file glass cannot use; one-line reason naming the file."""


def is_onnx_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == SUFFIX


def input_names(config: ModelConfig) -> list[str]:
    return [INPUT_GLOBAL, INPUT_CROPS] if config.uses_crops else [INPUT_GLOBAL]


def output_names(config: ModelConfig) -> list[str]:
    return [OUTPUT_P_AI, OUTPUT_ATTENTION] if config.uses_crops else [OUTPUT_P_AI]


def metadata_for(
    config: ModelConfig, *, precision: str, source_sha256: str | None, exporter: str
) -> dict[str, str]:
    """The metadata_props an export writes (string keys and values, as ONNX requires)."""
    s = config.crop_size
    inputs = f"{INPUT_GLOBAL}: float32 [B,3,{s},{s}]"
    outputs = f"{OUTPUT_P_AI}: float32 [B] = P({config.classes[1]})"
    if config.uses_crops:
        per_scale = "" if len(config.crop_scales) == 1 else f", {config.num_crops} per scale at scales {','.join(map(str, config.crop_scales))}"
        inputs += f"; {INPUT_CROPS}: float32 [B,K,3,{s},{s}] (trained with K={config.crops_per_image}{per_scale})"
        outputs += f"; {OUTPUT_ATTENTION}: float32 [B,K]"
    meta = {
        META_FORMAT: FORMAT,
        META_CONFIG: config.to_json(),
        META_VERSION: __version__,
        META_MODEL: config.describe(),
        META_PRECISION: precision,
        META_EXPORTER: exporter,
        META_INPUTS: inputs,
        META_OUTPUTS: outputs,
        META_CLASSES: ",".join(config.classes),
        META_THRESHOLD: f"{config.threshold:g}",
    }
    if source_sha256:
        meta[META_SOURCE_SHA256] = source_sha256
    return meta


def config_from_metadata(meta: dict[str, str], path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig stored in an export's metadata, or a one-line OnnxModelError."""
    if META_CONFIG not in meta:
        raise OnnxModelError(f"{path}: not a glass ONNX export (no {META_CONFIG} in its metadata; make one with glass export --onnx)")
    fmt = meta.get(META_FORMAT, FORMAT)
    if fmt != FORMAT:
        raise OnnxModelError(f"{path}: unsupported glass ONNX format {fmt!r} (this glass reads {FORMAT})")
    try:
        return ModelConfig.from_json(meta[META_CONFIG])
    except (ValueError, TypeError, KeyError) as exc:
        raise OnnxModelError(f"{path}: invalid glass model config in the ONNX metadata ({exc})") from None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """An ONNX file's metadata_props as a dict (parses the whole file; no session)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise OnnxModelError(f"{p}: no such ONNX model")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        raise OnnxModelError(f"{p}: not a readable ONNX model ({one_line(exc)})") from None
    return {prop.key: prop.value for prop in model.metadata_props}


def read_config(path: str | os.PathLike) -> ModelConfig:
    return config_from_metadata(read_metadata(path), path)


def model_id(meta: dict[str, str], sha: str) -> str:
    """The id of the model in an export: the id of the checkpoint it was exported from (so a
    record says the same model whichever engine ran it), with ``/fp16`` or ``/int8`` for a
    half-precision or integer export, whose scores differ; the file's own id when the source is not recorded."""
    source = meta.get(META_SOURCE_SHA256)
    if not source:
        return digest.model_id(sha)
    return digest.model_id(source) + {"fp16": "/fp16", "int8": "/int8"}.get(meta.get(META_PRECISION, "fp32"), "")


def describe_file(path: str | os.PathLike, meta: dict[str, str] | None = None, sha: str | None = None) -> dict:
    """Summary for scan reports, shaped like ``checkpoint.describe_file`` plus format/precision."""
    meta = read_metadata(path) if meta is None else meta
    config = config_from_metadata(meta, path)
    sha = sha or digest.file_sha256(path)
    return {
        "id": model_id(meta, sha),
        "weights": str(path),
        "sha256": sha,
        "source_sha256": meta.get(META_SOURCE_SHA256),
        "config": digest.portable(json.loads(config.to_json())),
        "format": "onnx",
        "precision": meta.get(META_PRECISION, "fp32"),
    }
