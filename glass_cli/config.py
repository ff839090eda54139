"""The model's description: everything needed to rebuild it and to prepare its inputs.

A ``ModelConfig`` travels with every checkpoint (and, later, every ONNX export), so scan
never has to guess the architecture, the crop size or the normalisation a model was trained
with.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from glass_cli import __version__

Architecture = Literal["glass", "baseline"]
ARCHITECTURES: tuple[str, ...] = ("glass", "baseline")
LOCAL_INPUTS: tuple[str, ...] = ("rgb", "npr")
"""What GLASS's local backbone is fed: the crop's pixels (rgb), or its neighbouring-pixel
residual (npr: the crop minus its 2x-nearest down-then-up-sampled copy, scaled; computed
inside the model, ``models.glass.npr_residual``)."""
PLACEMENTS: tuple[str, ...] = ("uniform", "texture")
"""Where a crop goes inside its stratum: a uniform draw, or the most textured of a few draws
(``preprocess.sampling``)."""
CLASSES: tuple[str, str] = ("real", "ai")
"""Class order of the model's two logits: index 1 is P(AI-generated)."""


@dataclass(frozen=True)
class Normalization:
    """How a backbone wants its pixels: per-channel mean/std on [0, 1] values, and the
    resampling filter for resizing (timm's pretrained config)."""

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        return cls(
            mean=tuple(float(x) for x in d["mean"]),
            std=tuple(float(x) for x in d["std"]),
            interpolation=str(d.get("interpolation", "bicubic")),
        )


def check_model_fields(
    *, arch: str, num_crops: int, crop_size: int, dropout: float, crop_scales: tuple[int, ...], shown_scales: str | None = None,
    local_input: str = "rgb", placement: str = "uniform",
) -> None:
    """The one check of the model fields that ModelConfig and TrainConfig share (TrainConfig
    holds them flat, ``crop_scales`` as text such as "1,2", shown as given in the message).
    Raises ValueError naming the field."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    if num_crops < 1 or crop_size < 8:
        raise ValueError(f"need num_crops >= 1 and crop_size >= 8, got {num_crops}, {crop_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    if not crop_scales or any(int(m) < 1 for m in crop_scales) or len(set(crop_scales)) != len(crop_scales):
        shown = shown_scales if shown_scales is not None else ",".join(str(m) for m in crop_scales)
        raise ValueError(f"crop_scales must be distinct integers >= 1 such as 1,2; got {shown!r}")
    if local_input not in LOCAL_INPUTS:
        raise ValueError(f"local_input must be one of {LOCAL_INPUTS}, got {local_input!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if local_input == "npr" and crop_size % 2:
        raise ValueError(f"local_input npr needs an even crop_size, got {crop_size}")


@dataclass(frozen=True)
class ModelConfig:
    arch: Architecture = "glass"
    global_backbone: str = "tf_efficientnet_lite0"
    local_backbone: str = "tf_efficientnet_lite0"
    num_crops: int = 4
    """K: native-resolution crops per image (unused by the baseline)."""
    crop_size: int = 224
    """S: side of the global view and of every local crop, in pixels."""
    dropout: float = 0.1
    attn_hidden: int = 128
    crop_scales: tuple[int, ...] = (1,)
    """Scales of the local branch: for each scale m, K crops of (m*S) x (m*S) native pixels
    are placed by stratified sampling on a grid of (m*S)-pixel cells and box-filtered down to
    S x S (m=1: native resolution, as in the paper). All K*len(crop_scales) crops go through
    the one local backbone and one attention pool."""
    global_norm: Normalization = field(default_factory=Normalization)
    local_norm: Normalization = field(default_factory=Normalization)
    classes: tuple[str, str] = CLASSES
    threshold: float = 0.5
    """Decision threshold on P(AI) that scan uses unless told otherwise."""
    calibration: dict[str, Any] | None = None
    """How ``threshold`` was chosen, when ``glass eval --calibrate`` chose it (target FPR,
    data, counts, achieved FPR/TPR)."""
    glass_version: str = __version__
    aux_heads: bool = False
    """GLASS only: two auxiliary heads, one on the global embedding alone and one on the
    attention-pooled crops, trained beside the fused head (deep supervision, TrainConfig
    ``aux_weight``). ``forward`` never uses them: scan and export see the fused output only.
    Left out of ``to_dict`` when off, so configs without them read and write as before."""
    local_input: str = "rgb"
    """GLASS only: what the local backbone sees (``LOCAL_INPUTS``). The views are the same
    either way; the residual is computed inside the model, so the ONNX export carries it.
    Left out of ``to_dict`` at "rgb"."""
    placement: str = "uniform"
    """GLASS only: crop placement inside each stratum (``PLACEMENTS``); "texture" keeps the
    most textured of a few seeded candidates. Left out of ``to_dict`` at "uniform"."""

    def __post_init__(self) -> None:
        check_model_fields(
            arch=self.arch, num_crops=self.num_crops, crop_size=self.crop_size, dropout=self.dropout, crop_scales=tuple(self.crop_scales),
            local_input=self.local_input, placement=self.placement,
        )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")
        if tuple(self.classes) != CLASSES:
            raise ValueError(f"class order must be {CLASSES}, got {tuple(self.classes)}")

    @property
    def uses_crops(self) -> bool:
        return self.arch == "glass"

    def describe(self) -> str:
        if self.arch == "baseline":
            return f"baseline {self.global_backbone} S={self.crop_size}"
        same = self.global_backbone == self.local_backbone
        nets = self.global_backbone if same else f"{self.global_backbone}+{self.local_backbone}"
        scales = "" if tuple(self.crop_scales) == (1,) else " scales " + ",".join(str(m) for m in self.crop_scales)
        residual = "" if self.local_input == "rgb" else f" local={self.local_input}"
        placed = "" if self.placement == "uniform" else f" placement={self.placement}"
        return f"glass {nets} K={self.num_crops} S={self.crop_size}{scales}{residual}{placed}"

    @property
    def crops_per_image(self) -> int:
        """Crops the local branch sees per image: K for every scale."""
        return self.num_crops * len(self.crop_scales) if self.uses_crops else 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not self.aux_heads:
            del d["aux_heads"]
        if self.local_input == "rgb":
            del d["local_input"]
        if self.placement == "uniform":
            del d["placement"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        kw = dict(d)
        for key in ("global_norm", "local_norm"):
            if key in kw:
                kw[key] = Normalization.from_dict(kw[key])
        if "classes" in kw:
            kw["classes"] = tuple(kw["classes"])
        if "crop_scales" in kw:
            kw["crop_scales"] = tuple(int(m) for m in kw["crop_scales"])
        if "aux_heads" in kw:
            kw["aux_heads"] = bool(kw["aux_heads"])
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


BALANCE_MODES: tuple[str, ...] = ("sampler", "source", "loss", "none")
REENCODE_MODES: tuple[str, ...] = ("jpeg", "mixed")
SELECT_METRICS: tuple[str, ...] = ("accuracy", "auroc", "loss")

LATER_OPTIONS: dict[str, Any] = {"aux_weight": 0.0, "local_input": "rgb", "local_native": 0.0, "placement": "uniform"}
"""Recipe options added after cross-validation plans and records were first kept, with the
default that those earlier runs used: left out of ``recipe_of`` at that default, so earlier
plans still resume and earlier records still match their models."""

RUNTIME_KEYS = frozenset({"device", "workers", "cache_images", "quiet"})
"""TrainConfig fields that change how a run executes but not what it computes: they may
differ between a run and its resumption."""


def recipe_of(config: dict[str, Any], *, validation: bool = True) -> dict[str, Any]:
    """A TrainConfig dict without what is not the recipe: runtime settings, the run's name and
    folder, the data path; with ``validation=False`` also which split validates and how much of
    it (a cross-validation fold validates on its held-out sources, a model trained on all the
    data on its val split; neither changes the images trained on)."""
    left_out = {"name", "runs_dir", "data"} | ({"val_split", "limit_val"} if not validation else set())
    return {
        k: v for k, v in config.items()
        if k not in RUNTIME_KEYS and k not in left_out and not (k in LATER_OPTIONS and v == LATER_OPTIONS[k])
    }


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs, flat, so that a dict of hyperparameters (what
    ``glass tune`` writes, or a JSON file passed with ``--config``) maps straight onto it.

    For GLASS, AdamW gets three parameter groups: the global backbone (lr_global, wd_global),
    the local backbone (lr_local, wd_local) and attention + head (lr_atten_class, no weight
    decay). The baseline has a single group with lr_global and wd_global, as in the paper.
    """

    data: str = ""
    name: str = ""
    runs_dir: str = "runs"
    # model
    arch: Architecture = "glass"
    global_backbone: str = "tf_efficientnet_lite0"
    local_backbone: str = ""
    """Empty: the same architecture as the global backbone (separate weights)."""
    num_crops: int = 4
    crop_size: int = 224
    crop_scales: str = "1"
    """Comma-separated scales of the local branch (ModelConfig.crop_scales), e.g. "1,2": text,
    so that config files and saved runs keep writing "1,2"."""
    dropout: float = 0.1
    attn_hidden: int = 128
    local_input: str = "rgb"
    """GLASS's local input: rgb or npr (ModelConfig.local_input)."""
    placement: str = "uniform"
    """GLASS's crop placement inside each stratum: uniform or texture (ModelConfig.placement)."""
    pretrained: bool = True
    global_weights: str = ""
    """A timm-format weights file for the global backbone (offline use of hub models)."""
    local_weights: str = ""
    # data
    train_split: str = "train"
    val_split: str = "val"
    val_fraction: float = 0.2
    """Held-out share for data without a split column or train/val folders."""
    limit_train: int = 0
    """Train on a class-stratified slice of at most this many images (0: all)."""
    limit_val: int = 0
    balance: str = "sampler"
    """sampler: both classes equally likely; source: also each source's share of its class
    grows only as its size ** source_power (the square root by default); loss: class-weighted loss; none."""
    source_power: float = 0.5
    """With balance "source", each source's share of its class grows as its size ** this
    (0: every source equally often; 1: as often as its size)."""
    epoch_size: int = 0
    """Images drawn per epoch (0: as many as the training set holds)."""
    augment: bool = True
    reencode: str = "jpeg"
    """Re-encode augmentation: jpeg (JPEG q60-100) or mixed (JPEG or WebP, sometimes twice)."""
    size_aug: float = 0.0
    """Probability of the size-aware rescale (both classes; replaces the factor downscale
    when above 0): the long side becomes log-uniform in [size_aug_min, size_aug_max]."""
    size_aug_min: int = 384
    size_aug_max: int = 1024
    local_native: float = 0.0
    """GLASS only: probability that a training image's local crops are cut from the picture
    before the downscale or size-aware rescale (random crop, re-encode and flip still apply),
    while the global view sees the rescaled one, as a scan sees a file's native pixels.
    0: both views come from the one augmented picture."""
    # optimisation
    epochs: int = 10
    batch_size: int = 16
    lr_global: float = 2e-5
    lr_local: float = 1e-4
    lr_atten_class: float = 1e-4
    wd_global: float = 1e-5
    wd_local: float = 1e-5
    min_lr: float = 1e-6
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    aux_weight: float = 0.0
    """Deep supervision (GLASS only): above 0, auxiliary heads on the global embedding alone
    and on the pooled crops each add this weight times their own cross-entropy to the fused
    head's loss, so that neither branch can lean on the other. 0: the fused loss only."""
    amp: bool = True
    """Mixed precision on CUDA (bfloat16 where supported); ignored on CPU."""
    seed: int = 0
    select_metric: str = "accuracy"
    """Validation metric that picks the ``best`` checkpoint."""
    # execution
    device: str = "auto"
    workers: int = 2
    """Threads that decode and prepare images while the model trains."""
    cache_images: bool = False
    """Keep decoded training images in memory (decode once). Off by default: decoding runs in
    the worker threads while the model trains, and memory stays flat whatever the data size."""
    quiet: bool = False

    def __post_init__(self) -> None:
        scales = _scales_or_none(self.crop_scales)
        if scales is None:
            raise ValueError(f"crop_scales must be distinct integers >= 1 such as 1,2; got {self.crop_scales!r}")
        check_model_fields(
            arch=self.arch, num_crops=self.num_crops, crop_size=self.crop_size, dropout=self.dropout,
            crop_scales=scales, shown_scales=self.crop_scales, local_input=self.local_input, placement=self.placement,
        )
        checks = [
            (self.balance in BALANCE_MODES, f"balance must be one of {BALANCE_MODES}, got {self.balance!r}"),
            (self.reencode in REENCODE_MODES, f"reencode must be one of {REENCODE_MODES}, got {self.reencode!r}"),
            (0.0 <= self.source_power <= 1.0, f"source_power must lie in [0, 1], got {self.source_power}"),
            (self.epoch_size >= 0, f"epoch_size must be >= 0, got {self.epoch_size}"),
            (self.select_metric in SELECT_METRICS, f"select_metric must be one of {SELECT_METRICS}, got {self.select_metric!r}"),
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (0.0 < self.val_fraction < 1.0, f"val_fraction must lie in (0, 1), got {self.val_fraction}"),
            (0.0 <= self.label_smoothing < 1.0, f"label_smoothing must lie in [0, 1), got {self.label_smoothing}"),
            (self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}"),
            (self.aux_weight >= 0, f"aux_weight must be >= 0, got {self.aux_weight}"),
            (self.limit_train >= 0 and self.limit_val >= 0, "limit_train and limit_val must be >= 0"),
            (0.0 <= self.size_aug <= 1.0, f"size_aug must lie in [0, 1], got {self.size_aug}"),
            (0.0 <= self.local_native <= 1.0, f"local_native must lie in [0, 1], got {self.local_native}"),
            (8 <= self.size_aug_min <= self.size_aug_max, f"need 8 <= size_aug_min <= size_aug_max, got {self.size_aug_min}, {self.size_aug_max}"),
            (self.workers >= 0, f"workers must be >= 0, got {self.workers}"),
        ]
        for key in ("lr_global", "lr_local", "lr_atten_class", "min_lr"):
            checks.append((getattr(self, key) > 0, f"{key} must be positive, got {getattr(self, key)}"))
        for key in ("wd_global", "wd_local"):
            checks.append((getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def local_name(self) -> str:
        return self.local_backbone or self.global_backbone

    def model_options(self) -> dict[str, Any]:
        """The ModelConfig fields this run fixes (backbone names and normalisation aside)."""
        return {
            "num_crops": self.num_crops,
            "crop_size": self.crop_size,
            "dropout": self.dropout,
            "attn_hidden": self.attn_hidden,
            "crop_scales": parse_scales(self.crop_scales) if self.arch == "glass" else (1,),
            "aux_heads": self.arch == "glass" and self.aux_weight > 0,
            "local_input": self.local_input if self.arch == "glass" else "rgb",
            "placement": self.placement if self.arch == "glass" else "uniform",
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (default: the defaults) with the keys of ``d`` replaced; unknown keys and
        values of the wrong type are errors."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        base = base or cls()
        kw = {}
        for key, value in d.items():
            kw[key] = _coerce(key, value, type(getattr(base, key)))
        return dataclasses.replace(base, **kw)

    @classmethod
    def from_json(cls, text: str, base: TrainConfig | None = None) -> TrainConfig:
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("a training config must be a JSON object of option: value")
        return cls.from_dict(d, base)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def parse_scales(text: str) -> tuple[int, ...]:
    """"1,2" -> (1, 2)."""
    return tuple(int(x) for x in str(text).split(",") if x.strip())


def _scales_or_none(text: str) -> tuple[int, ...] | None:
    try:
        return parse_scales(text)
    except ValueError:
        return None


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"option {key} expects {kind.__name__}, got {value!r}")
