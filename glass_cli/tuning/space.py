"""Search spaces for ``glass tune``: the paper's two spaces and user files (JSON, or YAML when
PyYAML is installed).

A space file is an object that maps training options (TrainConfig field names) to one of:

- ``{"choices": [16, 32, 64]}``: a categorical choice;
- ``{"low": 1e-6, "high": 1e-4, "log": true}``: a range (``step`` optional, not with ``log``);
  integers for integer options (num_crops, batch_size), floats otherwise;
- a plain value (``"dropout": 0.1``): fixed for every trial, not searched.

The file replaces the default space as a whole; what it leaves out keeps glass train's
default (or the value a ``glass tune`` flag fixes).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glass_cli.config import TrainConfig
from glass_cli.errors import GlassError

PAPER_SPACES: dict[str, dict[str, Any]] = {
    "glass": {
        "batch_size": {"choices": [16, 32, 64]},
        "dropout": {"choices": [0.0, 0.1, 0.2, 0.3]},
        "lr_global": {"low": 1e-6, "high": 1e-4, "log": True},
        "lr_local": {"low": 1e-6, "high": 1e-4, "log": True},
        "lr_atten_class": {"low": 5e-6, "high": 1e-3, "log": True},
        "wd_global": {"low": 1e-7, "high": 1e-3, "log": True},
        "wd_local": {"low": 1e-7, "high": 1e-3, "log": True},
        "num_crops": {"choices": [2, 4, 6, 8, 10]},
    },
    "baseline": {
        "batch_size": {"choices": [32, 64, 128]},
        "dropout": {"choices": [0.0, 0.1, 0.2, 0.3]},
        "lr_global": {"low": 1e-6, "high": 1e-4, "log": True},
        "wd_global": {"low": 1e-7, "high": 1e-3, "log": True},
    },
}
"""The GLASS paper's hyperparameter search: the baseline has one learning rate and weight decay,
which glass keeps in lr_global and wd_global."""

NOT_IN_SPACE: dict[str, str] = {
    "data": "the DATA argument",
    "name": "glass tune (one run per trial)",
    "runs_dir": "--runs-dir",
    "arch": "--baseline",
    "global_backbone": "--backbone",
    "epochs": "--epochs (the pruner's budget)",
    "select_metric": "--metric",
    "device": "--device",
    "workers": "--workers",
    "cache_images": "glass tune",
    "quiet": "glass tune",
}
"""Options a space file may not set, and what sets them instead."""

RANGE_KEYS = frozenset({"low", "high", "log", "step"})


class SpaceError(GlassError, ValueError):
    """A search space that cannot be used; one line naming the file and the reason."""


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class Param:
    """One searched option: ``choices``, or a ``low``..``high`` range of ``kind`` int/float."""

    name: str
    kind: str
    choices: tuple | None = None
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)

    def values_to_check(self) -> list:
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(format(c, "g") if _number(c) else str(c) for c in self.choices) + "}"
        text = f"[{self.low:g}, {self.high:g}]"
        if self.log:
            text = "log " + text
        if self.step is not None:
            text += f" step {self.step:g}"
        return text

    def to_spec(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        spec: dict[str, Any] = {"low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            spec["step"] = self.step
        return spec


@dataclass(frozen=True)
class Space:
    params: dict[str, Param]
    fixed: dict[str, Any]
    source: str = "the paper's space"

    @classmethod
    def paper(cls, arch: str) -> Space:
        return cls.from_dict(PAPER_SPACES[arch], source=f"the paper's {arch} space")

    @classmethod
    def load(cls, path: str | Path) -> Space:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpaceError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise SpaceError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write the space as JSON") from None
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                where = getattr(exc, "problem_mark", None)
                at = f" at line {where.line + 1}" if where is not None else ""
                raise SpaceError(f"{path}: not valid YAML{at} ({getattr(exc, 'problem', None) or exc})") from None
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpaceError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Space:
        def bad(message: str) -> SpaceError:
            return SpaceError(f"{source}: {message}")

        if not isinstance(data, dict):
            raise bad("a search space must be an object of option: spec")
        fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
        defaults = TrainConfig()
        params: dict[str, Param] = {}
        fixed: dict[str, Any] = {}
        for name, spec in data.items():
            if name not in fields:
                raise bad(f"unknown training option {name!r}")
            if name in NOT_IN_SPACE:
                raise bad(f"{name} is set by {NOT_IN_SPACE[name]}, not by the search space")
            kind = type(getattr(defaults, name)).__name__
            if not isinstance(spec, dict):
                fixed[name] = spec
                continue
            if "choices" in spec:
                extra = sorted(set(spec) - {"choices"})
                if extra:
                    raise bad(f"{name}: 'choices' cannot be combined with {', '.join(extra)}")
                choices = spec["choices"]
                if not isinstance(choices, list) or not choices:
                    raise bad(f"{name}: choices must be a non-empty list")
                if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
                    raise bad(f"{name}: choices must be numbers, strings or booleans")
                params[name] = Param(name, kind, choices=tuple(choices))
                continue
            unknown = sorted(set(spec) - RANGE_KEYS)
            if unknown:
                raise bad(f"{name}: unknown key {unknown[0]!r} (expected 'choices', or 'low' and 'high' with optional 'log' and 'step')")
            if kind not in ("int", "float"):
                raise bad(f"{name} is a {kind} option: give it 'choices', not a range")
            low, high = spec.get("low"), spec.get("high")
            if not (_number(low) and _number(high)):
                raise bad(f"{name}: a range needs numeric 'low' and 'high'")
            if low >= high:
                raise bad(f"{name}: low ({low:g}) must be below high ({high:g})")
            log = spec.get("log", False)
            if not isinstance(log, bool):
                raise bad(f"{name}: 'log' must be true or false")
            step = spec.get("step")
            if step is not None and (not _number(step) or step <= 0):
                raise bad(f"{name}: 'step' must be a positive number")
            if log and step is not None:
                raise bad(f"{name}: 'step' and 'log' cannot be combined")
            if log and low <= 0:
                raise bad(f"{name}: a log range needs low > 0")
            if kind == "int" and not all(isinstance(x, int) or float(x).is_integer() for x in (low, high, step or 1)):
                raise bad(f"{name} is an integer option: 'low', 'high' and 'step' must be whole numbers")
            if kind == "int":
                low, high, step = int(low), int(high), (None if step is None else int(step))
            params[name] = Param(name, kind, low=low, high=high, log=log, step=step)
        if not params:
            raise bad("nothing to search: give at least one option 'choices' or a 'low'/'high' range")
        return cls(params, fixed, source)

    def without(self, names) -> Space:
        """This space minus the options in ``names`` (fixed elsewhere, e.g. by a flag)."""
        return Space({k: v for k, v in self.params.items() if k not in names}, {k: v for k, v in self.fixed.items() if k not in names}, self.source)

    def check(self, base: TrainConfig) -> None:
        """Every fixed value, choice and range end must make a valid TrainConfig on ``base``."""
        for name, value in self.fixed.items():
            self._check_value(base, name, value)
        for name, p in self.params.items():
            for value in p.values_to_check():
                self._check_value(base, name, value)

    def _check_value(self, base: TrainConfig, name: str, value: Any) -> None:
        try:
            TrainConfig.from_dict({name: value}, base)
        except ValueError as exc:
            raise SpaceError(f"{self.source}: {name}: {value!r} is not a valid value ({exc})") from None

    def suggest(self, trial) -> dict[str, Any]:
        return {name: p.suggest(trial) for name, p in self.params.items()}

    def to_dict(self) -> dict[str, Any]:
        """The space in file form (what a space file holding it would say)."""
        return {**self.fixed, **{name: p.to_spec() for name, p in self.params.items()}}
