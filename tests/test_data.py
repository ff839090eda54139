"""Data sets: folders and manifests, deterministic splits and slices, balance, augmentation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from glass_cli.data.augment import Augment, sample_rng
from glass_cli.data.datasets import (
    DataError,
    assign_split,
    class_counts,
    epoch_order,
    read_dataset,
    select,
    stratified_slice,
)

from .conftest import make_images


def test_folder_with_real_and_fake(tiny_data):
    samples = read_dataset(tiny_data)
    assert class_counts(samples) == (16, 16)
    assert all(s.split is None for s in samples)
    split = assign_split(samples, 0.25)
    assert assign_split(samples, 0.25) == split  # same files held out every time
    val = select(split, "val")
    assert 0 < len(val) < len(samples)
    assert {s.split for s in split} == {"train", "val"}


def test_train_val_folders(tmp_path):
    make_images(tmp_path / "train", 3)
    make_images(tmp_path / "val", 2, seed=1)
    samples = read_dataset(tmp_path)
    assert [(s.split, s.label) for s in samples].count(("val", 1)) == 2
    assert len(select(samples, "train")) == 6


def test_manifest(tmp_path):
    make_images(tmp_path, 2)
    (tmp_path / "m.csv").write_text(
        "path,label,split,generator,family,width\n"
        "real/real000.png,real,train,camera:X,camera-x,40\n"
        "fake/fake000.png,fake,val,sdxl,sd,40\n"
        f"{tmp_path}/fake/fake001.png,ai,val,,,\n"
    )
    samples = read_dataset(tmp_path / "m.csv")
    assert [(s.label, s.split, s.generator, s.family) for s in samples] == [
        (0, "train", "camera:X", "camera-x"),
        (1, "val", "sdxl", "sd"),
        (1, "val", None, None),
    ]
    assert samples[0].path == str(tmp_path / "real" / "real000.png")


@pytest.mark.parametrize(
    "content, reason",
    [
        ("file,label\na.png,real\n", "manifest needs the columns path,label (missing: path)"),
        ("path,label\na.png,maybe\n", "line 2: unknown label 'maybe' (use real or fake)"),
        ("path,label\n", "manifest has no rows"),
    ],
)
def test_bad_manifests(tmp_path, content, reason):
    m = tmp_path / "m.csv"
    m.write_text(content)
    with pytest.raises(DataError) as exc:
        read_dataset(m)
    assert str(exc.value) == f"{m}: {reason}"


def test_folder_holding_a_manifest_reads_the_manifest(tmp_path):
    make_images(tmp_path, 2)
    (tmp_path / "manifest.csv").write_text("path,label,split\nreal/real000.png,real,val\n")
    assert [s.split for s in read_dataset(tmp_path)] == ["val"]


def test_stratified_slice_keeps_proportions(tiny_data):
    samples = read_dataset(tiny_data)[4:]  # 12 real, 16 fake
    part = stratified_slice(samples, 14, seed=3)
    assert len(part) == 14 and class_counts(part) == (6, 8)
    assert stratified_slice(samples, 14, seed=3) == part


def test_balanced_sampler_evens_out_classes(tiny_data):
    samples = read_dataset(tiny_data)[10:]  # 6 real, 16 fake
    drawn = np.concatenate([epoch_order(samples, 0, e, "sampler") for e in range(200)])
    share = np.mean([samples[i].label for i in drawn])
    assert abs(share - 0.5) < 0.03
    plain = epoch_order(samples, 0, 0, "none")
    assert sorted(plain.tolist()) == list(range(len(samples)))
    assert not np.array_equal(epoch_order(samples, 0, 1, "none"), plain)


def test_augmentation_is_seeded_and_reencodes_jpeg():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    aug = Augment(crop_p=1.0, downscale_p=1.0, blur_p=1.0, jpeg_p=1.0, flip_p=1.0)
    a = aug.apply(image, sample_rng(1, 2, 3))
    b = aug.apply(image, sample_rng(1, 2, 3))
    assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    assert a.mode == "RGB" and a.width < 400 and a.height < 300
    c = aug.apply(image, sample_rng(1, 2, 4))
    assert c.size != a.size or not np.array_equal(np.asarray(a), np.asarray(c))
    assert Augment(crop_p=0, downscale_p=0, blur_p=0, jpeg_p=0, flip_p=0).apply(image, sample_rng(0, 0, 0)) is image


def test_size_aware_rescale_spans_the_range_for_both_classes_and_never_enlarges():
    from glass_cli.data.augment import rescale_long_side

    aug = Augment(crop_p=0, blur_p=0, jpeg_p=0, flip_p=0, size_p=1.0, size_min=64, size_max=256)
    camera = Image.new("RGB", (600, 400), (120, 130, 140))
    fake = Image.new("RGB", (200, 200), (120, 130, 140))
    small = Image.new("RGB", (60, 40), (120, 130, 140))
    camera_sides = [max(aug.apply(camera, sample_rng(0, 0, i)).size) for i in range(200)]
    fake_sides = [max(aug.apply(fake, sample_rng(0, 0, i)).size) for i in range(200)]
    assert 64 <= min(camera_sides) < 80 and 230 < max(camera_sides) <= 256
    assert 64 <= min(fake_sides) < 80 and max(fake_sides) <= 200
    out = aug.apply(camera, sample_rng(0, 0, 7))
    assert abs(out.width / out.height - 1.5) < 0.02  # aspect kept
    assert aug.apply(small, sample_rng(0, 0, 0)) is small  # already below the range: untouched
    assert rescale_long_side(fake, 64, 1000, sample_rng(0, 0, 1)).size[0] <= 200
    # with size_p > 0 the factor downscale is off: size_p=0 keeps the old behaviour
    assert Augment(crop_p=0, blur_p=0, jpeg_p=0, flip_p=0, downscale_p=0, size_p=0.0).apply(camera, sample_rng(0, 0, 0)) is camera
    with pytest.raises(ValueError, match="size augmentation range"):
        Augment(size_min=500, size_max=100)


def test_jpeg_augmentation_replaces_the_quantisation_tables():
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=85)
    fake_like = Image.open(io.BytesIO(buf.getvalue()))
    original = fake_like.quantization
    fake_like = fake_like.convert("RGB")
    aug = Augment(crop_p=0, downscale_p=0, blur_p=0, jpeg_p=1.0, jpeg_min=60, jpeg_max=60, flip_p=0)
    out = aug.apply(fake_like, sample_rng(0, 0, 0))
    from glass_cli.data.augment import jpeg_bytes

    assert Image.open(io.BytesIO(jpeg_bytes(out, 60))).quantization != original


def test_native_split_keeps_the_crop_reencode_and_flip_but_not_the_rescale():
    """TrainConfig.local_native: the crops' picture skips the rescale (and blur) only; the
    plain ``apply`` is the first picture of ``apply_split(native=False)``, draw for draw."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    aug = Augment(crop_p=1.0, blur_p=0.0, jpeg_p=1.0, flip_p=1.0, size_p=1.0, size_min=64, size_max=128, webp_share=0.5, chain_p=0.5)
    for i in range(6):
        plain = aug.apply(image, sample_rng(0, 0, i))
        same, again = aug.apply_split(image, sample_rng(0, 0, i), native=False)
        assert same is again and np.array_equal(np.asarray(plain), np.asarray(same))
        small, native = aug.apply_split(image, sample_rng(0, 0, i))
        assert np.array_equal(np.asarray(plain), np.asarray(small))
        assert max(small.size) <= 128 and 240 <= native.width <= 400 and 180 <= native.height <= 300
        assert abs(native.width / native.height - small.width / small.height) < 0.05
        # the same flip: the native picture shrunk to the small one's size matches it roughly
        back = np.asarray(native.resize(small.size, Image.Resampling.BOX), dtype=np.float32)
        mirrored = back[:, ::-1]
        own = np.asarray(small, dtype=np.float32)
        assert np.abs(back - own).mean() < np.abs(mirrored - own).mean()
    # nothing rescaled (below the range): one picture, no second re-encode
    tiny = image.resize((60, 45))
    a, b = aug.apply_split(tiny, sample_rng(0, 0, 0))
    assert a is b
