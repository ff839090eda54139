"""Every decode path gives the model the same views: a JPEG decoded into a shared RGBX
buffer and the same file decoded to a plain RGB picture, across JPEG variants."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from glass_cli.config import ModelConfig
from glass_cli.io.image import decode_image
from glass_cli.preprocess.views import build_views
from tests.conftest import noise_image


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("scales", [(1,), (1, 2)])
@pytest.mark.parametrize("size", [(600, 450), (229, 1001), (150, 90)])
@pytest.mark.parametrize("kw", [{}, {"subsampling": 0}, {"progressive": True}])
def test_shared_buffer_views_equal_rgb_views(size, kw, scales):
    data = _jpeg(noise_image(*size, seed=3), **kw)
    shared, _ = decode_image(data, shared=True)
    plain, _ = decode_image(data)
    assert (shared.mode, plain.mode) == ("RGBX", "RGB")
    config = ModelConfig(num_crops=3, crop_size=64, crop_scales=scales)
    a, b = build_views(shared, config, 7), build_views(plain, config, 7)
    np.testing.assert_array_equal(a.global_view, b.global_view)
    np.testing.assert_array_equal(a.crops, b.crops)
    assert a.plan == b.plan
