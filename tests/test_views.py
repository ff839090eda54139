import numpy as np
import pytest
from PIL import Image

from glass_cli.config import ModelConfig, Normalization
from glass_cli.preprocess.views import build_views, collate, cut_crop, normalize

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
    for crop, (left, t, r, b) in zip(v.crops, v.plan.boxes):
        expected = normalize(np.asarray(img)[t:b, left:r], CFG.local_norm)
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


def test_multi_scale_crops_cover_larger_windows_box_filtered_to_s():
    from glass_cli.config import ModelConfig
    from glass_cli.preprocess.views import build_views, cut_crop

    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    one = ModelConfig(num_crops=2, crop_size=32)
    two = one.replace(crop_scales=(1, 2))
    a, b = build_views(image, one, seed=9), build_views(image, two, seed=9)
    assert b.crops.shape == (4, 3, 32, 32) and two.crops_per_image == 4
    assert b.plan.boxes[:2] == a.plan.boxes and np.array_equal(b.crops[:2], a.crops)  # scale 1 unchanged
    for box in b.plan.boxes[2:]:
        assert box[2] - box[0] == 64 and box[3] - box[1] == 64
    left, top, right, bottom = b.plan.boxes[2]
    block = np.asarray(image.crop((left, top, right, bottom)), dtype=np.float64)
    means = block.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))  # the box filter: mean of each 2x2 block
    norm = two.local_norm
    want = (means / 255.0 - np.asarray(norm.mean)) / np.asarray(norm.std)
    assert np.abs(b.crops[2].transpose(1, 2, 0) - want).max() < 0.03  # within rounding to uint8
    edge = cut_crop(image, (280, 180, 344, 244), norm, 2)  # runs past the corner: padded with 0
    assert edge.shape == (3, 32, 32) and np.all(edge[:, 10:, :] == 0) and np.all(edge[:, :, 10:] == 0)
    assert a.plan.path == b.plan.path == "stratified"
    narrow = Image.fromarray(rng.integers(0, 256, (100, 300, 3), dtype=np.uint8))  # 3x3 grid of 32 px cells, 1x1 of 64 px
    assert build_views(narrow, one, seed=1).plan.path == "stratified"
    assert build_views(narrow, two, seed=1).plan.path == "fallback"  # any scale that fell back is reported
    assert two.describe() == "glass tf_efficientnet_lite0 K=2 S=32 scales 1,2"
    with pytest.raises(ValueError, match="crop_scales must be distinct integers >= 1"):
        one.replace(crop_scales=(1, 1))


def test_texture_placement_puts_crops_on_texture_and_both_scorers_agree():
    """Every 512-pixel grid cell of this picture is flat on its left half and noisy on its
    right: texture-aware crops keep the uniform plan's cells but cover more noise; the torch
    scorer of the GPU path gives the numpy scorer's numbers exactly."""
    import torch

    from glass_cli.preprocess import device
    from glass_cli.preprocess.views import _pillow_energy, texture_scores

    rng = np.random.default_rng(0)
    pixels = np.full((1024, 2048, 3), 128, dtype=np.uint8)
    noisy = (np.arange(2048) // 256) % 2 == 1
    pixels[:, noisy] = rng.integers(0, 256, (1024, int(noisy.sum()), 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    config = ModelConfig(num_crops=8, placement="texture")

    def noise_share(plan):
        return np.mean([noisy[box[0]:box[2]].mean() for box in plan.boxes])

    textured, uniform = [], []
    for seed in range(6):
        plan = build_views(image, config, seed).plan
        plain = build_views(image, config.replace(placement="uniform"), seed).plan
        assert plan.cells == plain.cells and plan.grid == plain.grid == 4
        textured.append(noise_share(plan))
        uniform.append(noise_share(plain))
    assert np.mean(textured) > 0.8 and np.mean(uniform) < 0.65, (textured, uniform)
    boxes = [(0, 0, 224, 224), (1900, 900, 2124, 1124), (200, 10, 424, 234), (3000, 0, 3224, 224)]
    chw = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
    scores = texture_scores(boxes, image.size, _pillow_energy(image))
    assert scores == texture_scores(boxes, image.size, device._tensor_energy(chw))
    assert scores[0] == 0.0 and scores[3] == 0.0 and scores[1] > scores[2] > 0
    with pytest.raises(ValueError, match="placement must be one of"):
        ModelConfig(placement="edges")
