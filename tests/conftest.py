"""Shared fixtures: tiny random-init models, generated images, small generated data sets
whose classes differ learnably, and one short training run that several tests reuse."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

# Tests never reach a model hub, and converted weights go to a throw-away cache.
os.environ["HF_HUB_OFFLINE"] = "1"

TINY_TRAIN = [
    "--backbone", "test_efficientnet", "--crop-size", "32", "-k", "2", "--no-pretrained",
    "--batch-size", "8", "--lr-global", "1e-3", "--lr-local", "1e-3", "--lr-head", "1e-3",
    "--workers", "2",
]
"""Options for a fast run: timm's tiny test network on 32-pixel views."""


def make_images(root: Path, per_class: int, seed: int = 0, fmt: str = "PNG") -> Path:
    """real/ and fake/ folders of 40-80 px noise pictures: fakes tinted red, reals blue.

    The tint survives every augmentation, so a tiny network can learn it in two epochs."""
    rng = np.random.default_rng(seed)
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = (int(x) for x in rng.integers(40, 80, size=2))
            pixels = rng.integers(0, 256, size=(h, w, 3)).astype(np.float32) * 0.3 + 90
            warm, cool = (0, 2) if label == "fake" else (2, 0)
            pixels[..., warm] += 70
            pixels[..., cool] -= 40
            ext = "png" if fmt == "PNG" else "jpg"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / label / f"{label}{i:03d}.{ext}", format=fmt)
    return root


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("tiny") / "data", per_class=16)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_data, runner):
    """A finished 2-epoch run: (run folder, CliRunner result)."""
    from glass_cli.cli import app

    runs = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["train", str(tiny_data), "--name", "tiny", "--runs-dir", str(runs), "--epochs", "2", *TINY_TRAIN])
    return runs / "tiny", result


REAL_FAMILIES = ("cam-a", "cam-b", "cam-c")
FAKE_FAMILIES = ("gen-a", "gen-b", "gen-c", "gen-d")


@pytest.fixture(scope="session")
def family_data(tmp_path_factory):
    """12 reals from 3 'camera makes' and 12 fakes from 4 'generator families', with a manifest."""
    root = make_images(tmp_path_factory.mktemp("cv") / "data", per_class=12, seed=3)
    rows = ["path,label,split,generator,family"]
    for label, families in (("real", REAL_FAMILIES), ("fake", FAKE_FAMILIES)):
        for i, p in enumerate(sorted((root / label).glob("*.png"))):
            family = families[i % len(families)]
            rows.append(f"{label}/{p.name},{label},train,{family}-model,{family}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(autouse=True)
def _glass_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GLASS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "glass-cache"))


TINY = dict(num_crops=3, crop_size=32)


def noise_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    return img if mode == "RGB" else img.convert(mode)


@pytest.fixture(scope="session")
def tiny_glass(tmp_path_factory):
    """A saved tiny GLASS checkpoint (two different timm test backbones, K=3, S=32)."""
    import torch

    from glass_cli.models import checkpoint, new_model

    torch.manual_seed(0)
    model, config = new_model("glass", "test_efficientnet", "test_resnet", **TINY)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-glass"
    return checkpoint.save(model.eval(), config, path)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory, tiny_glass):
    """The tiny GLASS checkpoint exported to ONNX: the engine whose scores do not depend on
    how files are batched, so the records of two scans can be compared byte for byte."""
    from glass_cli.inference.export import export

    out = tmp_path_factory.mktemp("onnx") / "tiny-glass.onnx"
    export(tiny_glass, out)
    return out


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory):
    import torch

    from glass_cli.models import checkpoint, new_model

    torch.manual_seed(1)
    model, config = new_model("baseline", "test_efficientnet", **TINY)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-baseline"
    return checkpoint.save(model.eval(), config, path)


@pytest.fixture
def photo_dir(tmp_path):
    """A folder of generated images in several sizes, modes and formats."""
    d = tmp_path / "photos"
    d.mkdir()
    noise_image(640, 480, 1).save(d / "wide.jpg", quality=90)
    noise_image(300, 500, 2).save(d / "tall.png")
    noise_image(100, 80, 3).convert("L").save(d / "grey.png")
    noise_image(20, 12, 4).save(d / "small.webp")
    sub = d / "sub"
    sub.mkdir()
    noise_image(256, 256, 5).save(sub / "square.bmp")
    return d


HEAVY_FIXTURES = frozenset({"trained", "cv_run", "study", "models"})
"""Fixtures that train, cross-validate, tune or export a model (``models``: test_onnx's exports)."""


def pytest_collection_modifyitems(config, items):
    """Tests that use a heavy fixture are ``heavy`` too, so ``-m "not heavy and not slow"`` is
    the quick subset; tests that train or export on their own carry the mark themselves."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)
