"""Training and validating by source: several data sets, per-source sampling, leave-source-out
folds, capped held-out scoring, WebP conditions and re-encodes (issue 13)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from glass_cli.cli import app
from glass_cli.data.augment import augment_for
from glass_cli.data.datasets import Sample, epoch_order, read_dataset, source_weights
from glass_cli.evaluation.cv.folds import assign_folds, cap_per_group, fold_samples
from glass_cli.evaluation.cv.options import CvOptions
from glass_cli.evaluation.cv.scoring import conditions, format_numbers
from glass_cli.evaluation.evaluate import Perturbation

from .conftest import TINY_TRAIN, make_images, noise_image


def _manifest(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "source"])
        w.writerows(rows)
    return path


def test_several_data_sets_are_read_together_with_their_sources(tmp_path):
    a = _manifest(tmp_path / "a" / "manifest.csv", [("x.png", "real", "cams"), ("y.png", "fake", "gallery")])
    b = make_images(tmp_path / "b", per_class=2)
    samples = read_dataset(os.pathsep.join([str(a), str(b), str(a)]))  # a listed twice: kept once
    assert [(Path(s.path).name, s.label, s.source) for s in samples] == [
        ("x.png", 0, "cams"), ("y.png", 1, "gallery"),
        ("real000.png", 0, "b"), ("real001.png", 0, "b"), ("fake000.png", 1, "b"), ("fake001.png", 1, "b"),
    ]
    assert samples[0].path == str(tmp_path / "a" / "x.png")


def test_source_weights_give_each_class_half_and_sources_the_square_root_of_their_size():
    samples = [Sample(f"r{i}", 0, source="big") for i in range(100)] + [Sample("r-small", 0, source="small")]
    samples += [Sample(f"f{i}", 1, source="gen") for i in range(3)]
    p = source_weights(samples)
    assert math.isclose(p.sum(), 1.0)
    real = p[:101]
    assert math.isclose(real.sum(), 0.5) and math.isclose(p[101:].sum(), 0.5)
    big, small = real[:100].sum(), real[100]
    assert math.isclose(big / small, math.sqrt(100))  # 100x the images, 10x the draws


def test_epoch_size_draws_that_many_and_is_reproducible():
    samples = [Sample(f"s{i}", i % 2, source=f"src{i % 3}") for i in range(10)]
    for balance in ("sampler", "source", "none"):
        order = epoch_order(samples, seed=1, epoch=2, balance=balance, size=25)
        assert len(order) == 25 and order.max() < 10
        assert np.array_equal(order, epoch_order(samples, seed=1, epoch=2, balance=balance, size=25))
    assert sorted(epoch_order(samples, 1, 0, "none")) == list(range(10))  # one plain pass by default


def test_leave_source_out_folds_keep_sources_whole_and_mix_small_ones_with_the_huge_one():
    sizes = {"huge": (0, 400), "g1": (0, 9), "g2": (0, 9), "g3": (0, 4), "r-big": (100, 0), "r1": (16, 0), "r2": (9, 0), "r3": (4, 0)}
    samples = [Sample(f"/{src}/{c}{i}", c, source=src) for src, n in sizes.items() for c in (0, 1) for i in range(n[c])]
    folds = assign_folds(samples, 2, "data", "source")
    held = [set(f.families) for f in folds]
    assert held[0] | held[1] == set(sizes) and not held[0] & held[1]
    fake_groups = [sorted(g for g in h if sizes[g][1]) for h in held]
    assert fake_groups == [["huge"], ["g1", "g2", "g3"]]  # by square root: 20 against 3 + 3 + 2
    labelled = fold_samples(samples, folds[0], "source")
    assert {s.split for s in labelled if s.source in held[0]} == {"heldout"}
    assert {s.split for s in labelled if s.source not in held[0]} == {"train"}
    assert all(s.source for s in labelled)  # the fold manifest keeps the source for per-source sampling


def test_heldout_cap_takes_a_fixed_choice_per_source_and_class():
    samples = [Sample(f"/d/{src}-{c}-{i}.png", c, source=src) for src in ("a", "b") for c in (0, 1) for i in range(30)]
    capped = cap_per_group(samples, 5, "source")
    assert len(capped) == 20
    assert cap_per_group(list(reversed(samples)), 5, "source") == list(reversed(capped))
    assert cap_per_group(samples, 0, "source") == samples


def test_webp_condition_and_per_format_rates():
    keys = [c.key for c in conditions(CvOptions(webp=80))]
    assert "webp80" in keys and "webp80" not in [c.key for c in conditions(CvOptions(webp=0))]
    files = [
        {"label": 0, "format": "png", "p_ai": {"native": 0.9}}, {"label": 0, "format": "jpg", "p_ai": {"native": 0.1}},
        {"label": 1, "format": "png", "p_ai": {"native": 0.8}}, {"label": 1, "format": "webp", "p_ai": {"native": 0.2}},
    ]
    assert format_numbers(files, 0.5) == {
        "fpr_fmt_jpg": 0.0, "tpr_fmt_jpg": None, "fpr_fmt_png": 1.0, "tpr_fmt_png": 1.0, "fpr_fmt_webp": None, "tpr_fmt_webp": 0.0,
    }


def test_webp_perturbation_stands_for_a_webp_file():
    image = noise_image(96, 64, seed=3)
    changed, data = Perturbation(webp=80).apply(image, "x.png")
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and changed.size == image.size
    assert Perturbation(webp=80).describe() == "WebP q80"


def test_mixed_reencode_uses_webp_and_jpeg_and_repeats_exactly():
    image = noise_image(96, 64, seed=4)
    aug = augment_for("mixed")
    assert aug.webp_share > 0 and aug.chain_p > 0 and augment_for("jpeg").webp_share == 0
    first = [np.asarray(aug.apply(image, np.random.default_rng(i))) for i in range(12)]
    again = [np.asarray(aug.apply(image, np.random.default_rng(i))) for i in range(12)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_cv_without_a_source_column_says_so(runner, tmp_path):
    data = make_images(tmp_path / "d", per_class=3)
    manifest = _manifest(tmp_path / "m.csv", [(str(p), p.parent.name, "") for p in sorted(data.rglob("*.png"))])
    result = runner.invoke(app, ["cv", str(manifest), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"glass: error: {manifest}: no 'source' column (leave-source-out cross-validation needs a manifest .csv "
        "naming each image's source, e.g. sd-samples, imagenet-sample)"
    )
    assert not (tmp_path / "runs" / "cv").exists()


def test_train_refuses_an_unknown_reencode(runner, tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path), "--reencode", "magic"])
    assert result.exit_code == 2 and "Invalid value for '--reencode'" in result.output and "'mixed'" in result.output


def test_source_power_zero_draws_every_source_of_a_class_alike_and_one_follows_sizes():
    samples = [Sample(f"r{i}", 0, source="big") for i in range(90)] + [Sample(f"s{i}", 0, source="small") for i in range(10)]
    samples += [Sample(f"f{i}", 1, source="gen") for i in range(4)]
    even = source_weights(samples, 0.0)
    assert math.isclose(even[:90].sum(), 0.25) and math.isclose(even[90:100].sum(), 0.25)
    sized = source_weights(samples, 1.0)
    assert math.isclose(sized[:90].sum(), 0.45) and math.isclose(sized[90:100].sum(), 0.05)
    drawn = np.concatenate([epoch_order(samples, 0, e, "source", 200, source_power=0.0) for e in range(20)])
    assert abs((drawn < 90).mean() - 0.25) < 0.03  # 4,000 draws: a quarter from the big source, not 45%


def test_train_source_power_is_recorded_and_checked(runner, tmp_path, tiny_data):
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(tiny_data), "--name", "p0", "--runs-dir", str(runs), "--epochs", "1",
                                 "--balance", "source", "--source-power", "0", *TINY_TRAIN])
    assert result.exit_code == 0, result.output
    config = json.loads((runs / "p0" / "config.json").read_text())
    assert (config["balance"], config["source_power"]) == ("source", 0.0)
    bad = runner.invoke(app, ["train", str(tiny_data), "--source-power", "1.5", "--runs-dir", str(runs)])
    assert bad.exit_code == 2 and "Invalid value for '--source-power'" in bad.output and sorted(p.name for p in runs.iterdir()) == ["p0"]  # no run started
