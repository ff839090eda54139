"""Inference engines: prepared views in, P(AI) and attention weights out.

Engines never decode files and never build views; they receive the numpy batches that
``views.collate`` makes. Every engine has the same small interface, ``Engine``:

    engine.predict(global_batch, crops_batch) -> (p_ai [B], attention [B, K] or None)
    engine.device        where it runs, in words ("cpu", "cuda:0 (NVIDIA H100)")
    engine.device_name   where it runs, as torch names it ("cpu", "cuda", "cuda:1")
    engine.config        the ModelConfig it serves
    engine.kind          "torch" or "onnx", as records name it
    engine.model_id      the weights' ``sha256:`` id
    engine.weights_sha256  the full hash of the model file, None for an in-memory model

``TorchEngine`` runs a checkpoint in eager PyTorch; ``OnnxEngine`` runs a ``glass export
--onnx`` file in ONNX Runtime without importing torch. ``open_engine`` picks one for a model
file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from glass_cli.config import ModelConfig
from glass_cli.errors import GlassError, one_line
from glass_cli.io import digest


class EngineError(GlassError):
    """The engine cannot run as asked (e.g. CUDA requested but absent); one-line reason."""


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise EngineError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


@dataclass
class Prediction:
    p_ai: np.ndarray
    """float [B]"""
    attention: np.ndarray | None
    """float [B, K], rows sum to 1; None for the baseline."""


class Engine(Protocol):
    """What scan, eval and cross-validation need of an engine (see the module docstring)."""

    kind: str
    config: ModelConfig
    model_id: str
    weights_sha256: str | None
    device_name: str

    @property
    def device(self) -> str: ...

    def predict(self, global_batch, crops_batch) -> Prediction: ...


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_bf16_supported() -> bool:
    """Whether torch's CPU kernels (oneDNN) have native bfloat16 here: avx512_bf16 or AMX.
    Without them bf16 autocast is emulated and slower than fp32, so glass refuses it."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class TorchEngine:
    """Eager PyTorch under inference_mode, channels_last, on CPU or one GPU.

    Precision: ``auto`` is bf16 on CPUs with bfloat16 instructions (``cpu_bf16_supported``)
    and fp32 elsewhere. ``bf16`` runs the model under autocast on CUDA and on such CPUs;
    ``fp16`` on CUDA only.
    On an H100 bf16 gained only 4% on EfficientNet-Lite0 at batch 64 and moved scores by up
    to 7e-4 (bench/results/gpu_check-h100-2026-11-27.txt), and a GPU scan is decode-bound
    long before the model matters, so it is opt-in there. On the CPU its effect on verdicts is
    measured by bench/precision_compare.py and its speed by bench/scan_process.py. A reduced
    precision is part of the model id (``sha256:.../bf16``), so the cache and ``--resume``
    never mix its scores with fp32's.
    On CUDA, host batches are pinned and copied without blocking.

    The engine leaves torch's process-wide settings (its CPU thread count) as it finds them;
    set them in the program that owns the process.
    """

    kind = "torch"
    """The engine's name in records (``--engine``)."""

    def __init__(
        self,
        model,
        config: ModelConfig,
        device: str = "auto",
        model_id: str | None = None,
        precision: str = "auto",
    ):
        import torch

        self.model_id = model_id or config.describe()
        """Names the model in every result record: the weights' ``sha256:`` id when opened from a file."""
        self.weights_sha256: str | None = None
        """Full SHA-256 of the weights file, when the engine was opened from one."""
        self.device_name = resolve_device(device)
        cuda = self.device_name.startswith("cuda")
        if precision not in PRECISIONS:
            raise EngineError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
        if precision == "fp16" and not cuda:
            raise EngineError("--precision fp16 needs CUDA; the CPU engine runs in fp32 or bf16 (or use an ONNX export)")
        if precision == "bf16" and not cuda and not cpu_bf16_supported():
            raise EngineError("--precision bf16 needs CUDA or a CPU with bfloat16 instructions (avx512_bf16 or AMX); this one has neither")
        if precision == "auto":
            # bf16 where it was measured faster and not to change verdicts: CPUs with native
            # bfloat16 (whole scan 1.20x, 0.76% of held-out verdicts flipped, AUROC -0.01
            # points; README "bf16 on the CPU"). CUDA stays fp32 (4% faster on an H100).
            precision = "bf16" if not cuda and cpu_bf16_supported() else "fp32"
        self.precision = precision
        if self.precision != "fp32":
            self.model_id = f"{self.model_id}/{self.precision}"
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.torch = torch
        self.config = config
        self.model = model.to(self.device_name).eval().to(memory_format=torch.channels_last)
        self._autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", model_id: str | None = None, precision: str = "auto") -> TorchEngine:
        from glass_cli.models import checkpoint

        model, config = checkpoint.load(path)
        sha = checkpoint.weights_sha256(path)
        engine = cls(model, config, device, model_id=model_id or digest.model_id(sha), precision=precision)
        engine.weights_sha256 = sha
        return engine

    @property
    def device(self) -> str:
        if self.device_name.startswith("cuda"):
            return f"{self.device_name} ({self.torch.cuda.get_device_name(self.device_name)}, {self.precision})"
        return "cpu" if self.precision == "fp32" else f"cpu ({self.precision})"

    def _tensor(self, array):
        """A batch on the model's device: numpy from the CPU views (pinned and copied
        without blocking on CUDA), or a tensor already there (``--decode gpu``)."""
        if isinstance(array, self.torch.Tensor):
            t = array.to(self.device_name)
        else:
            t = self.torch.from_numpy(array)
            if self.device_name != "cpu":
                t = t.pin_memory().to(self.device_name, non_blocking=True)
        if t.dim() == 4:
            t = t.contiguous(memory_format=self.torch.channels_last)
        return t

    def predict(self, global_batch: np.ndarray, crops_batch: np.ndarray | None) -> Prediction:
        torch = self.torch
        with torch.inference_mode(), torch.autocast(
            "cuda" if self.device_name.startswith("cuda") else "cpu",
            dtype=self._autocast or torch.float32,
            enabled=self._autocast is not None,
        ):
            g = self._tensor(global_batch)
            c = self._tensor(crops_batch) if crops_batch is not None else None
            logits, attn = self.model(g, c)
            p = torch.softmax(logits.float(), dim=1)[:, 1]
            return Prediction(
                p.cpu().numpy().astype(np.float64),
                None if attn is None else attn.float().cpu().numpy().astype(np.float64),
            )


# ---------------------------------------------------------------------------- ONNX Runtime

_CUDA_EP = "CUDAExecutionProvider"
_CPU_EP = "CPUExecutionProvider"


def cuda_gpus() -> list[str]:
    """Names of the CUDA GPUs the NVIDIA driver exposes (after CUDA_VISIBLE_DEVICES), asked
    of the driver library directly so that the ONNX engine needs no torch; [] without one."""
    import ctypes
    import sys

    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return []
    try:
        if lib.cuInit(0) != 0:
            return []
        count = ctypes.c_int(0)
        if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return []
        gpus = []
        for i in range(count.value):
            dev, buf = ctypes.c_int(0), ctypes.create_string_buffer(256)
            ok = lib.cuDeviceGet(ctypes.byref(dev), i) == 0 and lib.cuDeviceGetName(buf, 256, dev) == 0
            gpus.append(buf.value.decode("utf-8", "replace") if ok else f"GPU {i}")
        return gpus
    except (AttributeError, OSError):
        return []


def _cuda_index(device: str) -> int:
    if device in ("cuda", "auto"):
        return 0
    try:
        return int(device.split(":", 1)[1])
    except (IndexError, ValueError):
        raise EngineError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None


class OnnxEngine:
    """ONNX Runtime on an export made by ``glass export --onnx``; no torch needed.

    Providers: CUDA first when it can work (the build has the CUDA provider and the driver
    shows a GPU), then CPU. ``device='cuda'`` insists: if ORT does not actually put the model
    on CUDA the engine refuses with an EngineError instead of running quietly on the CPU.
    """

    kind = "onnx"
    """The engine's name in records (``--engine``)."""

    def __init__(self, path, device: str = "auto", threads: int | None = None, spinning: bool = False):
        """``spinning``: whether ONNX Runtime's CPU threads busy-wait for work between calls
        (ONNX Runtime's own default). Off by default here: in a scan the decode threads share
        the cores with the model, and spinning threads took their time. On the 2-core CPU,
        idle, 48 generated 12 MP JPEGs, two runs in opposite order (bench/scan.py --engines
        onnx,onnx-spin): 17.0 and 15.9 images/s spinning, 19.3 and 18.0 without."""
        import onnxruntime as ort

        from glass_cli.inference import onnxfile

        self.path = Path(path)
        if not self.path.is_file():
            raise EngineError(f"{self.path}: no such ONNX model")
        if device != "auto" and device != "cpu" and not device.startswith("cuda"):
            raise EngineError(f"unknown device {device!r}; use auto, cpu or cuda")
        index = _cuda_index(device) if device != "cpu" else 0
        want_cuda = device.startswith("cuda")
        providers: list = [_CPU_EP]
        gpus: list[str] = []
        if device != "cpu":
            has_ep = _CUDA_EP in ort.get_available_providers()
            gpus = cuda_gpus() if has_ep or want_cuda else []
            if want_cuda and not has_ep:
                raise EngineError(
                    f"--device cuda was asked for, but this onnxruntime {ort.__version__} has no CUDA provider "
                    "(install onnxruntime-gpu, and not the CPU-only onnxruntime package beside it)"
                )
            if want_cuda and index >= len(gpus):
                raise EngineError(
                    f"--device {device} was asked for, but the NVIDIA driver shows "
                    f"{len(gpus) or 'no'} CUDA GPU{'' if len(gpus) == 1 else 's'} on this machine"
                )
            if has_ep and index < len(gpus):
                _preload_cuda_libraries(ort)
                providers = [(_CUDA_EP, {"device_id": index}), _CPU_EP]

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no per-node placement warnings
        if threads is None and providers[0] == _CPU_EP:
            threads = digest.usable_cores()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:
            raise EngineError(f"{self.path}: not a readable ONNX model ({one_line(exc)})") from None

        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.weights_sha256 = digest.file_sha256(self.path)
        self.model_id = onnxfile.model_id(self.metadata, self.weights_sha256)
        try:
            self.config = onnxfile.config_from_metadata(self.metadata, self.path)
        except onnxfile.OnnxModelError as exc:
            raise EngineError(str(exc)) from None
        inputs = [i.name for i in self.session.get_inputs()]
        expected = onnxfile.input_names(self.config)
        if inputs != expected:
            raise EngineError(
                f"{self.path}: graph inputs {inputs} do not match a {self.config.arch} export (expected {expected})"
            )
        self._input_types = {i.name: i.type for i in self.session.get_inputs()}
        self.outputs = onnxfile.output_names(self.config)

        self.provider = self.session.get_providers()[0]
        if want_cuda and self.provider != _CUDA_EP:
            raise EngineError(
                f"--device cuda was asked for, but onnxruntime could not start its CUDA provider and would run "
                f"on {self.provider} (are the CUDA and cuDNN libraries onnxruntime-gpu {ort.__version__} needs installed?)"
            )
        self.gpu_name = gpus[index] if self.provider == _CUDA_EP and index < len(gpus) else None
        self.device_index = index
        self.device_name = f"cuda:{index}" if self.provider == _CUDA_EP else "cpu"

    @property
    def device(self) -> str:
        if self.provider == _CUDA_EP:
            return f"cuda:{self.device_index} ({self.gpu_name}) via onnxruntime {self.provider}"
        return f"cpu via onnxruntime {self.provider}"

    def _feed(self, name: str, array: np.ndarray) -> np.ndarray:
        dtype = np.float16 if self._input_types[name] == "tensor(float16)" else np.float32
        return np.ascontiguousarray(array, dtype=dtype)

    def predict(self, global_batch: np.ndarray, crops_batch: np.ndarray | None) -> Prediction:
        from glass_cli.inference import onnxfile

        feeds = {onnxfile.INPUT_GLOBAL: self._feed(onnxfile.INPUT_GLOBAL, global_batch)}
        if self.config.uses_crops:
            if crops_batch is None:
                raise EngineError(f"{self.path}: this GLASS model needs crops, got none")
            feeds[onnxfile.INPUT_CROPS] = self._feed(onnxfile.INPUT_CROPS, crops_batch)
        got = self.session.run(self.outputs, feeds)
        p_ai = np.asarray(got[0], dtype=np.float64)
        attention = np.asarray(got[1], dtype=np.float64) if len(got) > 1 else None
        return Prediction(p_ai, attention)


def _preload_cuda_libraries(ort) -> None:
    """Let ORT find the CUDA/cuDNN libraries of the nvidia-* pip packages; without this a GPU
    machine that has not imported torch would quietly run on the CPU. Prints are kept off
    stdout, which may carry JSON."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        try:
            preload()
        except Exception:  # missing libraries show up as the provider check's clear error
            pass


# ---------------------------------------------------------------------------- choosing


ENGINES: tuple[str, ...] = ("auto", "torch", "onnx")


def engine_kind(path, engine: str = "auto") -> str:
    """'torch' or 'onnx' for a model file: ``auto`` goes by the suffix (.onnx -> onnx)."""
    from glass_cli.inference.onnxfile import is_onnx_path

    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; use auto, torch or onnx")
    onnx = is_onnx_path(path)
    if engine == "auto":
        return "onnx" if onnx else "torch"
    if engine == "onnx" and not onnx:
        raise EngineError(
            f"{path}: --engine onnx needs a .onnx model; make one with: glass export --onnx --weights {path}"
        )
    if engine == "torch" and onnx:
        raise EngineError(f"{path}: an ONNX model runs with --engine onnx (or auto), not torch")
    return engine


def open_engine(path, engine: str = "auto", device: str = "auto", precision: str = "auto", threads: int | None = None):
    """The engine that serves the model file at ``path``: TorchEngine for a checkpoint,
    OnnxEngine for a .onnx export. ``threads``: CPU threads of an ONNX session (default:
    every core this process may run on); the torch engine uses torch's own setting. Errors
    are CheckpointError or EngineError, one line each."""
    if engine_kind(path, engine) == "onnx":
        if precision not in ("auto", "fp32"):
            raise EngineError(f"--precision {precision} applies to the torch engine; for ONNX export with --fp16")
        return OnnxEngine(path, device, threads=threads)
    from glass_cli import extras

    extras.require("torch engine")
    from glass_cli.models.backbones import BackboneError

    try:
        return TorchEngine.from_checkpoint(path, device=device, precision=precision)
    except BackboneError as exc:
        raise EngineError(str(exc)) from None


def describe_model(path, engine: Engine | None = None) -> dict:
    """The model summary scan writes into its JSON, for either kind of model file (an open
    engine lends its metadata and the weights' hash, so the file is not read twice)."""
    from glass_cli.inference import onnxfile
    from glass_cli.models import checkpoint

    sha = engine.weights_sha256 if engine is not None else None
    if onnxfile.is_onnx_path(path):
        return onnxfile.describe_file(path, engine.metadata if isinstance(engine, OnnxEngine) else None, sha=sha)
    described = checkpoint.describe_file(path, sha=sha)
    if isinstance(engine, TorchEngine) and engine.precision != "fp32":
        described.update(id=engine.model_id, precision=engine.precision)
    return described
