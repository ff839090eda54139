import numpy as np
import pytest

from glass_cli.config import ModelConfig, Normalization
from glass_cli.views import build_views, collate, cut_crop, normalize

from .conftest import noise_image

NORM = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear")
CFG = ModelConfig(global_backbone="x", local_backbone="y", num_crops=4, crop_size=32,
                  global_norm=NORM, local_norm=Normalization())


def test_normalize_matches_definition():
    px = np.array([[[0, 128, 255]]], dtype=np.uint8)
    out = normalize(px, Normalization(mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)))
    assert out.shape == (3, 1, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [(0 - 0.5) / 0.25, (128 / 255 - 0.5) / 0.5, 0.5], rtol=1e-6)


def test_crops_are_native_resolution_pixels():
    img = noise_image(200, 150, 7)
    v = build_views(img, CFG, seed=5)
    assert v.global_view.shape == (3, 32, 32) and v.crops.shape == (4, 3, 32, 32)
    assert v.plan.path == "stratified" and v.image_size == (200, 150)
    for crop, (l, t, r, b) in zip(v.crops, v.plan.boxes):
        expected = normalize(np.asarray(img)[t:b, l:r], CFG.local_norm)
        np.testing.assert_array_equal(crop, expected)


def test_padding_is_zero_after_normalisation():
    img = noise_image(10, 20, 1)
    v = build_views(img, CFG, seed=0)
    assert v.plan.path == "fallback"
    crop = v.crops[0]
    assert np.all(crop[:, 20:, :] == 0) and np.all(crop[:, :, 10:] == 0)
    assert np.any(crop[:, :20, :10] != 0)
    assert cut_crop(img, (50, 50, 82, 82), NORM).shape == (3, 32, 32)


def test_same_seed_same_views_and_baseline_has_no_crops():
    img = noise_image(300, 300, 3)
    a, b = build_views(img, CFG, 9), build_views(img, CFG, 9)
    np.testing.assert_array_equal(a.crops, b.crops)
    base = build_views(img, CFG.replace(arch="baseline"), 9)
    assert base.crops is None and base.plan is None
    np.testing.assert_array_equal(base.global_view, a.global_view)


def test_collate_and_mode_check():
    vs = [build_views(noise_image(64, 64, i), CFG, i) for i in range(3)]
    g, c = collate(vs)
    assert g.shape == (3, 3, 32, 32) and c.shape == (3, 4, 3, 32, 32)
    with pytest.raises(ValueError):
        build_views(noise_image(8, 8).convert("L"), CFG, 0)
