"""Options declared once and shared by the commands.

Choice types are built from the library's own tuples, so a new balance mode or precision
appears on the command line without touching this file. The training options (``glass
train``, ``glass cv`` and, fixed for every trial, ``glass tune``) are declared here once as
``Spec``s; ``with_options`` adds them to a command's signature and hands their values to the
command as one dict, and ``training_options`` turns that dict into TrainConfig fields
through a map derived from TrainConfig itself.

Only light modules are imported here (no torch, timm or optuna): ``glass --help`` builds
every command.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
import os
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer

from glass_cli.config import BALANCE_MODES, LOCAL_INPUTS, PLACEMENTS, REENCODE_MODES, TrainConfig
from glass_cli.evaluation.cv.options import GROUP_BY
from glass_cli.inference.engines import ENGINES, PRECISIONS
from glass_cli.inference.processes import POOLS
from glass_cli.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from glass_cli.scan.settings import DEFAULT_FILE_TIMEOUT, DEFAULT_MIN_SIDE
from glass_cli.tuning.options import TUNE_METRICS

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def choices(name: str, values: Sequence[str]) -> type[Enum]:
    """A str Enum whose members are ``values`` (what Typer turns into a choice)."""
    return Enum(name, {value: value for value in values}, type=str)


Device = choices("Device", DEVICES)
Precision = choices("Precision", PRECISIONS)
Engine = choices("Engine", ENGINES)
Pool = choices("Pool", POOLS)
Decode = choices("Decode", ("cpu", "gpu"))
Balance = choices("Balance", BALANCE_MODES)
Reencode = choices("Reencode", REENCODE_MODES)
LocalInput = choices("LocalInput", LOCAL_INPUTS)
Placement = choices("Placement", PLACEMENTS)
GroupBy = choices("GroupBy", GROUP_BY)
Metric = choices("Metric", TUNE_METRICS)

MAX_PIXELS = DEFAULT_MAX_PIXELS
MAX_BYTES = f"{DEFAULT_MAX_BYTES >> 30}G"
FILE_TIMEOUT = DEFAULT_FILE_TIMEOUT
MIN_SIDE = DEFAULT_MIN_SIDE

# Options that several commands declare the same way.
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks for fatal errors.")]
DeviceOption = Annotated[Device, typer.Option(help="Where the model runs.")]
CalibratedOut = Annotated[
    Path | None, typer.Option("--output", "-o", help="Where --calibrate writes the copy. Default: WEIGHTS-calibrated.safetensors beside the original.")
]


def sizes(text: str) -> tuple[int, ...]:
    """'1024,512' -> (1024, 512), for --real-sizes and --cv-real-sizes."""
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"expected long sides in pixels such as 1024,512, got {text!r}") from None
    if not values:
        raise typer.BadParameter("name at least one long side, e.g. 1024,512")
    return values


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """'512M' -> 536870912 (K, M, G, T are powers of 1024; a bare number is bytes), for --max-bytes."""
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (cleaned[:-1], cleaned[-1]) if cleaned and cleaned[-1] in _UNITS else (cleaned, "")
    try:
        value = int(float(number) * _UNITS[unit])
    except ValueError:
        raise typer.BadParameter(f"expected a size such as 512M or 2G, got {text!r}") from None
    if value < 1:
        raise typer.BadParameter(f"must be at least 1 byte, got {text!r}")
    return value


def band(text: str | None) -> tuple[float, float] | float | None:
    """--uncertain: 'LOW:HIGH' -> (low, high); 'WIDTH' -> width (the threshold plus or minus it)."""
    if text is None:
        return None
    try:
        if ":" not in text:
            width = float(text)
            if not 0.0 < width < 1.0:
                raise ValueError
            return width
        low, high = (float(x) for x in text.split(":"))
    except ValueError:
        raise typer.BadParameter(f"expected WIDTH (such as 0.05) or LOW:HIGH (such as 0.7:0.85), got {text!r}") from None
    return low, high


@dataclasses.dataclass(frozen=True)
class Spec:
    """One shared option: the command parameter ``name`` with its Typer annotation, and the
    TrainConfig field it sets (default: the field of the same name). ``value`` turns a given
    flag into the field's value (default: the flag's value, enums by value, paths as text)."""

    name: str
    annotation: Any
    default: Any = None
    field: str | None = None
    value: Callable[[Any], Any] | None = None

    @property
    def target(self) -> str:
        return self.name if self.field is None else self.field


def _opt(help: str, *decls: str, **kw) -> typer.models.OptionInfo:
    return typer.Option(*decls, help=help, show_default=kw.pop("show_default", False), **kw)


def panel(name: str, *specs: Spec) -> tuple[Spec, ...]:
    """``specs`` shown under a panel headed ``name`` in ``--help``."""
    for spec in specs:
        get_args(spec.annotation)[1].rich_help_panel = name
    return specs


CONFIG_FILE = Spec("config_file", Annotated[Path | None, typer.Option("--config", help="JSON file of training options (names as in a run's config.json).")], field="")
RUNS_DIR = Spec("runs_dir", Annotated[str | None, _opt("Folder that holds the runs. Default: runs.")])
BACKBONE = Spec("backbone", Annotated[str | None, _opt("timm model name (global backbone). Default: tf_efficientnet_lite0.")], field="global_backbone")
EPOCHS = Spec("epochs", Annotated[int | None, _opt("Training epochs (of each fold in glass cv). Default: 10.", min=1)])

MODEL = panel(
    "Model",
    Spec("local_backbone", Annotated[str | None, _opt("timm model for the crops. Default: same as --backbone.")]),
    Spec("backbone_weights", Annotated[Path | None, _opt("timm-format weights (.safetensors/.pth) for the global backbone.", show_default=True)], field="global_weights"),
    Spec("local_backbone_weights", Annotated[Path | None, _opt("timm-format weights for the local backbone.", show_default=True)], field="local_weights"),
    Spec("no_pretrained", Annotated[bool, _opt("Start both backbones from random weights.", "--no-pretrained", show_default=True)], False,
         field="pretrained", value=lambda _: False),
    Spec("num_crops", Annotated[int | None, _opt("K, native-resolution crops per image. Default: 4.", "--crops", "-k", min=1)]),
    Spec("crop_size", Annotated[int | None, _opt("S, side of the global view and of each crop. Default: 224.", min=8)]),
    Spec("crop_scales", Annotated[str | None, _opt("GLASS scales: K crops of M*S native pixels, shrunk to S. Default: 1.", metavar="M,M,...")]),
    Spec("dropout", Annotated[float | None, _opt("Dropout before the classifier. Default: 0.1.")]),
    Spec("local_input", Annotated[LocalInput | None, _opt("GLASS crops as pixels or NPR residual. Default: rgb.")]),
    Spec("placement", Annotated[Placement | None, _opt("GLASS crop placement in a stratum. Default: uniform.")]),
)
OPTIMISATION = panel(
    "Optimisation",
    Spec("batch_size", Annotated[int | None, _opt("Images per training step (per process; glass cv also scores with it). Default: 16.", min=1)]),
    Spec("lr_global", Annotated[float | None, _opt("Global backbone learning rate (the baseline's only one). Default: 2e-5.")]),
    Spec("lr_local", Annotated[float | None, _opt("Local backbone learning rate. Default: 1e-4.")]),
    Spec("lr_head", Annotated[float | None, _opt("Attention + classifier learning rate (lr_atten_class). Default: 1e-4.")], field="lr_atten_class"),
    Spec("aux_weight", Annotated[float | None, _opt("GLASS deep supervision: loss weight of a global-only and a crops-only head. Default: 0.", min=0.0)]),
    Spec("wd_global", Annotated[float | None, _opt("Global backbone weight decay. Default: 1e-5.")]),
    Spec("wd_local", Annotated[float | None, _opt("Local backbone weight decay. Default: 1e-5.")]),
    Spec("warmup_epochs", Annotated[float | None, _opt("Linear warm-up before the cosine decay. Default: 0.5.")]),
    Spec("seed", Annotated[int | None, _opt("Training seed. Default: 0.")]),
)
DATA = panel(
    "Data and augmentation",
    Spec("augment", Annotated[bool | None, _opt("Training augmentation: JPEG re-encode, downscale, blur, crop, flip. Default: augment.", "--augment/--no-augment")]),
    Spec("size_aug", Annotated[float | None, _opt("Probability of the size-aware rescale of both classes (replaces the factor downscale): long side log-uniform in [--size-aug-min, --size-aug-max]. Default: 0 (off).", min=0.0, max=1.0)]),
    Spec("size_aug_min", Annotated[int | None, _opt("Smallest long side of the size-aware rescale. Default: 384.", min=8)]),
    Spec("size_aug_max", Annotated[int | None, _opt("Largest long side of the size-aware rescale (never enlarges). Default: 1024.", min=8)]),
    Spec("local_native", Annotated[float | None, _opt("GLASS: share of crops cut before rescaling. Default: 0.", min=0.0, max=1.0)]),
    Spec("balance", Annotated[Balance | None, _opt("Class balance: weighted sampler, per-source sampler, loss weights, or none. Default: sampler.")]),
    Spec("source_power", Annotated[float | None, _opt("With --balance source, a source's share of its class grows as its size to this power (0: all alike). Default: 0.5.", min=0.0, max=1.0)]),
    Spec("epoch_size", Annotated[int | None, _opt("Images drawn per epoch. Default: the training set's size.", min=1)]),
    Spec("reencode", Annotated[Reencode | None, _opt("Re-encode augmentation of both classes: jpeg (JPEG q60-100) or mixed (JPEG or WebP, sometimes twice). Default: jpeg.")]),
    Spec("limit_train", Annotated[int | None, _opt("Train on a class-stratified slice of N images.", min=1, show_default=True)]),
    Spec("limit_val", Annotated[int | None, _opt("Validate on a class-stratified slice of N images (glass cv: the held-out images the trainer monitors; scoring uses all).", min=1, show_default=True)]),
)
VAL_FRACTION = Spec("val_fraction", Annotated[float | None, _opt("Held-out share for data without a split. Default: 0.2.")])
RUNTIME = panel(
    "Runtime",
    Spec("amp", Annotated[bool | None, _opt("Mixed precision on CUDA. Default: amp.", "--amp/--no-amp")]),
    Spec("cache", Annotated[bool | None, _opt("Keep decoded training images in memory (small data sets). Default: no-cache.", "--cache/--no-cache")], field="cache_images"),
    Spec("device", Annotated[Device | None, _opt("Where training runs. Default: auto.")]),
    Spec("workers", Annotated[int | None, _opt("Image preparation threads. Default: 2.", min=0)]),
)

panel("Run", CONFIG_FILE, RUNS_DIR, BACKBONE, EPOCHS)
panel("Data and augmentation", VAL_FRACTION)

TRAIN = (CONFIG_FILE, RUNS_DIR, BACKBONE, *MODEL, EPOCHS, *OPTIMISATION, *DATA, VAL_FRACTION, *RUNTIME)
"""glass train's training options (its own: data, --name, --baseline, --resume)."""
CV = (CONFIG_FILE, RUNS_DIR, BACKBONE, *MODEL, EPOCHS, *OPTIMISATION, *DATA, *RUNTIME)
"""glass cv's: the folds decide what is held out, so no --val-fraction."""
TUNE = (*MODEL, *OPTIMISATION, *DATA, VAL_FRACTION, *RUNTIME)
"""Options glass tune fixes for every trial (it has its own --backbone, --epochs and --runs-dir)."""

_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
FLAG_FIELDS: dict[str, str] = {spec.name: spec.target for spec in (*TRAIN, *TUNE) if spec.target}
"""Command parameter -> TrainConfig field, for every shared training option."""
_unknown = sorted(set(FLAG_FIELDS.values()) - _FIELDS)
if _unknown:  # a renamed TrainConfig field must not silently drop a flag
    raise RuntimeError(f"training options without a TrainConfig field: {', '.join(_unknown)}")
_SPECS = {spec.name: spec for spec in (*TRAIN, *TUNE)}


def panels(groups: dict[str, Sequence[str]]) -> Callable:
    """Put a command's options under headed panels in ``--help`` (panel -> parameter names,
    in the order the panels show); options left out stay under "Options". Each option gets
    its own copy of its Typer settings, so an option shared between commands can sit in
    different panels."""
    where = {name: panel for panel, names in groups.items() for name in names}

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        params = []
        for p in signature.parameters.values():
            if p.name in where and get_origin(p.annotation) is Annotated:
                base, info, *rest = get_args(p.annotation)
                info = copy.copy(info)
                info.rich_help_panel = where[p.name]
                p = p.replace(annotation=Annotated[(base, info, *rest)])
            params.append(p)
        func.__signature__ = signature.replace(parameters=params)
        func.__annotations__ = {p.name: p.annotation for p in params}
        return func

    return decorate


def with_options(specs: Sequence[Spec]) -> Callable:
    """Add ``specs`` to a command's parameters (before --debug); the command receives their
    values as one dict in its ``training`` parameter."""

    def decorate(func: Callable) -> Callable:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in inspect.signature(func, eval_str=True).parameters.values()
               if p.name != "training"]
        shared = [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, annotation=s.annotation, default=s.default) for s in specs]
        at = next((i for i, p in enumerate(own) if p.name == "debug"), len(own))
        names = [s.name for s in specs]

        @functools.wraps(func)
        def command(**kwargs):
            training = {name: kwargs.pop(name) for name in names}
            return func(**kwargs, training=training)

        command.__signature__ = inspect.Signature(own[:at] + shared + own[at:])
        command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
        del command.__wrapped__  # Typer must read the new signature, not the function's own
        return command

    return decorate


def _value(spec: Spec, given: Any) -> Any:
    if spec.value is not None:
        return spec.value(given)
    if isinstance(given, Enum):
        return given.value
    if isinstance(given, Path):
        return str(given)
    return given


def _config_file(path: Path) -> dict:
    from glass_cli.training.errors import TrainError

    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrainError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise TrainError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise TrainError(f"{path}: expected a JSON object of option: value")
    try:
        TrainConfig.from_dict(options)
    except ValueError as exc:
        raise TrainError(f"{path}: {exc}") from None
    return options


def training_options(training: dict[str, Any], *, data: Sequence[Path] | Path | None = None, name: str | None = None,
                     baseline: bool = False) -> dict[str, Any]:
    """TrainConfig fields from the defaults, then --config FILE, then the flags given
    (``training``: what ``with_options`` collected). An unset flag is None, or False for a
    plain switch such as --no-pretrained; False from an --X/--no-X pair is a choice."""
    config_file = training.get("config_file")
    options = _config_file(config_file) if config_file is not None else {}
    for flag, given in training.items():
        spec = _SPECS[flag]
        if spec.target and given is not None and not (given is False and spec.default is False):
            options[spec.target] = _value(spec, given)
    if name is not None:
        options["name"] = name
    if data:
        options["data"] = os.pathsep.join(str(d) for d in data) if isinstance(data, (list, tuple)) else str(data)
    if baseline:
        options["arch"] = "baseline"
    return options
