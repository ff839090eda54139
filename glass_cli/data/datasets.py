"""Labelled image sets for training and evaluation: reading, splits, class and source balance.

Two ways to describe a data set:

- a folder with ``real/`` and ``fake/`` sub-folders (``ai/`` is accepted for ``fake/``), or
  ``train/`` and ``val/`` folders that each hold ``real/`` and ``fake/``;
- a manifest CSV (or a folder holding ``manifest.csv``, which then wins over the layout) with a
  header and the columns ``path,label`` and optionally ``split``, ``generator``, ``family``,
  ``source`` (more columns are ignored). Paths are relative to the CSV's folder; labels are
  ``real``/``fake`` (``ai``, ``0``/``1`` also accepted). ``source`` names the gallery,
  repository or pipeline an image came from: leave-source-out validation holds sources out
  whole and ``balance="source"`` samples per source.

Several data sets are used at once by joining them with ``os.pathsep`` (``a.csv:b/``); their
samples are concatenated in the order given (a path listed twice is kept once). A folder data
set's source is its folder's name.

A folder without train/val sub-folders has no split of its own: ``assign_split`` then holds
out a fixed fraction of files, chosen from a hash of each file's relative path, so the same
files are "val" for ``glass train`` and for ``glass eval --split val``.

An epoch's order (``epoch_order``) comes from a generator seeded by (run seed, epoch), so it
does not depend on what ran before: a resumed run sees the same samples in the same order.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from glass_cli.config import TrainConfig
from glass_cli.errors import GlassError

LABELS = {"real": 0, "0": 0, "fake": 1, "ai": 1, "1": 1}
CLASS_NAMES = ("real", "fake")


class DataError(GlassError, ValueError):
    """A data set that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    """0 real, 1 AI-generated."""
    split: str | None = None
    generator: str | None = None
    family: str | None = None
    source: str | None = None
    """Gallery, repository or pipeline the image came from (the manifest's ``source``)."""


# ---------------------------------------------------------------------------- reading


def _image_files(folder: Path) -> list[Path]:
    from glass_cli.io.image import image_extensions

    exts = image_extensions()
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def _class_folders(root: Path) -> dict[int, Path]:
    found = {}
    for name in ("real", "fake", "ai"):
        if (root / name).is_dir():
            label = LABELS[name]
            if label in found:
                raise DataError(f"{root}: has both fake/ and ai/; keep one")
            found[label] = root / name
    return found


def _read_folder(root: Path) -> list[Sample]:
    splits = [s for s in ("train", "val", "test") if (root / s).is_dir() and _class_folders(root / s)]
    groups = [(s, root / s) for s in splits] if splits else [(None, root)]
    samples: list[Sample] = []
    for split, folder in groups:
        classes = _class_folders(folder)
        if set(classes) != {0, 1}:
            raise DataError(f"{folder}: needs both real/ and fake/ sub-folders (or a manifest .csv)")
        for label, sub in sorted(classes.items()):
            samples.extend(Sample(str(p), label, split, source=root.name) for p in _image_files(sub))
    if not samples:
        raise DataError(f"{root}: no image files under real/ and fake/")
    return samples


def _read_manifest(path: Path) -> list[Sample]:
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in ("path", "label") if c not in header]
            if missing:
                raise DataError(f"{path}: manifest needs the columns path,label (missing: {', '.join(missing)})")
            samples = []
            for line, row in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                label = LABELS.get(row["label"].lower())
                if label is None:
                    raise DataError(f"{path}: line {line}: unknown label {row['label']!r} (use real or fake)")
                if not row["path"]:
                    raise DataError(f"{path}: line {line}: empty path")
                file = Path(row["path"])
                file = file if file.is_absolute() else base / file
                samples.append(
                    Sample(
                        str(file),
                        label,
                        row.get("split") or None,
                        row.get("generator") or None,
                        row.get("family") or None,
                        row.get("source") or None,
                    )
                )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read manifest ({exc})") from None
    if not samples:
        raise DataError(f"{path}: manifest has no rows")
    return samples


def read_dataset(source: str | os.PathLike) -> list[Sample]:
    """Every labelled sample a folder or manifest describes, in a stable order; several data
    sets joined with ``os.pathsep`` are read one after the other."""
    text = os.fspath(source)
    parts = [x for x in text.split(os.pathsep) if x] if os.pathsep in text and not Path(text).exists() else [text]
    if len(parts) > 1:
        seen: set[str] = set()
        merged: list[Sample] = []
        for part in parts:
            for s in _read_one(part):
                if s.path not in seen:
                    seen.add(s.path)
                    merged.append(s)
        return merged
    return _read_one(text)


def _read_one(source: str | os.PathLike) -> list[Sample]:
    p = Path(source)
    if p.is_dir():
        manifest = p / "manifest.csv"
        if manifest.is_file():  # a manifest describes its folder better than its layout
            return _read_manifest(manifest)
        return _read_folder(p)
    if p.is_file():
        if p.suffix.lower() != ".csv":
            raise DataError(f"{p}: expected a folder with real/ and fake/, or a manifest .csv")
        return _read_manifest(p)
    raise DataError(f"{p}: no such folder or manifest")


def holdout_split(path: str, fraction: float) -> str:
    """'val' for a fixed ``fraction`` of paths (by hash of the file name and its class folder),
    else 'train'."""
    key = "/".join(Path(path).parts[-2:]).encode()
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "little") / 2**64
    return "val" if bucket < fraction else "train"


def assign_split(samples: Sequence[Sample], val_fraction: float) -> list[Sample]:
    """Give split-less samples a deterministic train/val assignment; keep existing splits."""
    if all(s.split for s in samples):
        return list(samples)
    return [s if s.split else replace(s, split=holdout_split(s.path, val_fraction)) for s in samples]


def select(samples: Sequence[Sample], split: str | None) -> list[Sample]:
    return list(samples) if split is None else [s for s in samples if s.split == split]


def class_counts(samples: Sequence[Sample]) -> tuple[int, int]:
    fake = sum(s.label for s in samples)
    return len(samples) - fake, fake


def stratified_slice(samples: Sequence[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most ``limit`` samples, keeping the class proportions, chosen by ``seed``."""
    if limit is None or limit >= len(samples):
        return list(samples)
    rng = np.random.default_rng([seed, 0x511CE])
    real = [s for s in samples if s.label == 0]
    fake = [s for s in samples if s.label == 1]
    n_fake = round(limit * len(fake) / len(samples))
    n_fake = min(max(n_fake, 1 if fake and limit > 1 else 0), len(fake))
    n_real = min(limit - n_fake, len(real))
    picked = [real[i] for i in rng.permutation(len(real))[:n_real]] + [fake[i] for i in rng.permutation(len(fake))[:n_fake]]
    order = {id(s): i for i, s in enumerate(samples)}
    return sorted(picked, key=lambda s: order[id(s)])


# ---------------------------------------------------------------------------- balance


def class_weights(samples: Sequence[Sample]) -> tuple[float, float]:
    """Inverse-frequency weights (real, fake) that average to 1 over the samples."""
    real, fake = class_counts(samples)
    if not real or not fake:
        return 1.0, 1.0
    n = real + fake
    return n / (2 * real), n / (2 * fake)


SOURCE_POWER: float = TrainConfig.source_power
"""With ``balance="source"`` a source's share of its class grows as (its images) ** this
(the training default, 0.5): a source 100 times larger is drawn 10 times as often, not 100."""


def source_weights(samples: Sequence[Sample], power: float = SOURCE_POWER) -> np.ndarray:
    """Per-sample draw probabilities: each class half, and within a class each source's share
    proportional to its size ** ``power`` (samples without a source form one source)."""
    sizes: dict[tuple[int, str], int] = {}
    for s in samples:
        key = (s.label, s.source or "")
        sizes[key] = sizes.get(key, 0) + 1
    mass = {k: n**power for k, n in sizes.items()}
    class_mass = [sum(m for (label, _), m in mass.items() if label == c) for c in (0, 1)]
    classes = sum(1 for m in class_mass if m > 0)
    p = np.array(
        [mass[(s.label, s.source or "")] / sizes[(s.label, s.source or "")] / class_mass[s.label] / classes for s in samples],
        dtype=np.float64,
    )
    return p / p.sum()


def epoch_order(samples: Sequence[Sample], seed: int, epoch: int, balance: str, size: int = 0,
                source_power: float = SOURCE_POWER) -> np.ndarray:
    """Sample indices for one epoch (``size`` of them; 0 means ``len(samples)``).

    ``balance="sampler"`` draws with replacement so both classes are equally likely;
    ``"source"`` also evens out sources within each class (``source_weights`` with
    ``source_power``: 0 draws every source of a class equally often, 1 as often as its
    size, which is ``"sampler"``); otherwise a
    plain permutation (repeated, then cut, when ``size`` asks for more than one pass).
    """
    rng = np.random.default_rng([seed, epoch, 0x0DE2])
    n = len(samples)
    size = size or n
    if balance == "sampler":
        w_real, w_fake = class_weights(samples)
        p = np.array([w_fake if s.label else w_real for s in samples], dtype=np.float64)
        return rng.choice(n, size=size, replace=True, p=p / p.sum())
    if balance == "source":
        return rng.choice(n, size=size, replace=True, p=source_weights(samples, source_power))
    passes = -(-size // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[:size]
