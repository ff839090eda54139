"""Views built with torch (the GPU decode path) equal the Pillow views of ``build_views``
bit for bit, checked here on the CPU: the resampling, the box reduction and the crops."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from glass_cli.config import ModelConfig
from glass_cli.preprocess.views import build_views

torch = pytest.importorskip("torch")

from glass_cli.preprocess.device import device_views, reduce, resize_like_pillow  # noqa: E402

SIZES = [(64, 64), (65, 64), (100, 37), (37, 100), (229, 1001), (1001, 229), (700, 700), (673, 671), (2048, 1536),
         (1536, 2048), (3000, 200), (200, 3000), (4000, 3000), (1201, 903)]


def _picture(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 7 + 2, width // 7 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR), dtype=np.int16)
    noisy = smooth + rng.integers(-40, 41, (height, width, 3), dtype=np.int16)  # edges and clipping both happen
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _tensor(image: Image.Image):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1)))


@pytest.mark.parametrize("size", SIZES)
def test_resize_equals_pillow(size):
    image = _picture(*size, seed=sum(size))
    for target in (224, 64):
        expected = np.asarray(image.resize((target, target), Image.Resampling.BICUBIC, reducing_gap=3.0))
        got = resize_like_pillow(_tensor(image), target).numpy().transpose(1, 2, 0).astype(np.uint8)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("factors", [(2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (2, 1), (1, 3), (4, 7), (13, 9)])
def test_reduce_equals_pillow(factors):
    image = _picture(97, 61, seed=factors[0] * 10 + factors[1])
    expected = np.asarray(image.reduce(factors))
    got = reduce(_tensor(image), *factors).numpy().transpose(1, 2, 0).astype(np.uint8)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("scales", [(1,), (1, 2)])
@pytest.mark.parametrize("size", [(640, 480), (300, 500), (100, 80), (50, 300), (1201, 903)])
@pytest.mark.parametrize("arch", ["glass", "baseline"])
def test_device_views_equal_build_views(size, scales, arch):
    image = _picture(*size, seed=size[0])
    config = ModelConfig(arch=arch, num_crops=3, crop_size=96, crop_scales=scales)
    expected = build_views(image, config, 11)
    g, c, views = device_views(_tensor(image), config, 11)
    np.testing.assert_array_equal(g.numpy(), expected.global_view)
    assert views.image_size == expected.image_size and views.plan == expected.plan
    if arch == "baseline":
        assert c is None and expected.crops is None
    else:
        np.testing.assert_array_equal(c.numpy(), expected.crops)


def test_device_views_refuses_other_pixels():
    with pytest.raises(ValueError, match="uint8"):
        device_views(torch.zeros((3, 8, 8), dtype=torch.float32), ModelConfig(), 0)
