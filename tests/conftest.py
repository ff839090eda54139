"""Shared fixtures: tiny random-init models and generated images, so tests run in seconds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

TINY = dict(num_crops=3, crop_size=32)


def noise_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    return img if mode == "RGB" else img.convert(mode)


@pytest.fixture(scope="session")
def tiny_glass(tmp_path_factory):
    """A saved tiny GLASS checkpoint (two different timm test backbones, K=3, S=32)."""
    import torch

    from glass_cli import checkpoint
    from glass_cli.models import new_model

    torch.manual_seed(0)
    model, config = new_model("glass", "test_efficientnet", "test_resnet", **TINY)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-glass"
    return checkpoint.save(model.eval(), config, path)


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory):
    import torch

    from glass_cli import checkpoint
    from glass_cli.models import new_model

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
