"""glass train: a short run learns, writes its files, resumes exactly, and refuses bad input."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from glass_cli.cli import app
from glass_cli.config import TrainConfig
from glass_cli.models import checkpoint
from glass_cli.training.schedule import lr_factor
from glass_cli.training.trainer import Trainer

from .conftest import TINY_TRAIN as TINY

METRIC_COLUMNS = [
    "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc", "val_auroc", "val_ece",
    "seconds", "best", "lr_global", "lr_local", "lr_atten_class",
]


def read_metrics(run):
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_two_epochs_learn_and_write_the_run_folder(trained):
    run, result = trained
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"run folder: {run}"
    assert result.stdout.splitlines()[1].startswith("best: epoch ")
    names = {p.name for p in run.iterdir()}
    assert names == {
        "config.json", "metrics.csv", "curves.png", "best.safetensors", "best.json",
        "last.safetensors", "last.json", "resume.safetensors",
    }
    rows = read_metrics(run)
    assert list(rows[0]) == METRIC_COLUMNS
    assert [r["epoch"] for r in rows] == ["1", "2"]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[1] < losses[0] * 0.9, losses  # it learns
    assert float(rows[1]["train_acc"]) >= 0.8
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, config = checkpoint.load(run / "last.safetensors")
    assert config.describe() == "glass test_efficientnet K=2 S=32"
    saved = TrainConfig.from_json((run / "config.json").read_text())
    assert (saved.epochs, saved.num_crops, saved.lr_atten_class, saved.pretrained) == (2, 2, 1e-3, False)


def test_resume_after_a_kill_gives_the_same_weights(trained, tmp_path, runner, tiny_data):
    run, _ = trained
    config = TrainConfig.from_json((run / "config.json").read_text()).replace(name="killed", runs_dir=str(tmp_path))
    first = Trainer(config)
    first.train_epoch()  # epoch 1 written, then the process "dies" before epoch 2
    first.close()
    del first
    result = runner.invoke(app, ["train", "--name", "killed", "--runs-dir", str(tmp_path), "--resume"])
    assert result.exit_code == 0, result.output
    a = load_file(str(run / "last.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    full, resumed = read_metrics(run), read_metrics(tmp_path / "killed")
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(full) == drop(resumed)


def test_resume_refuses_missing_runs_and_changed_options(trained, runner, tmp_path):
    run, _ = trained
    result = runner.invoke(app, ["train", "--name", "nope", "--runs-dir", str(tmp_path), "--resume"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"glass: error: {tmp_path}/nope: no such run to resume (no config.json there)"
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "config.json").write_text((run / "config.json").read_text())  # killed in epoch 1
    result = runner.invoke(app, ["train", "--name", "early", "--runs-dir", str(tmp_path), "--resume"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"glass: error: {tmp_path}/early/resume.safetensors: nothing to resume (no state file; the run never finished an epoch)"
    result = runner.invoke(app, ["train", "--name", "tiny", "--runs-dir", str(run.parent), "--resume", "--lr-local", "0.5"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "glass: error: run tiny was started with lr_local=0.001; --resume cannot change it to 0.5"
    result = runner.invoke(app, ["train", "--resume"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "glass: error: --resume needs the --name of the run to continue"


def test_existing_run_folder_is_not_overwritten(trained, runner, tiny_data):
    run, _ = trained
    result = runner.invoke(app, ["train", str(tiny_data), "--name", "tiny", "--runs-dir", str(run.parent), *TINY])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"glass: error: {run}: run folder exists; pass --resume to continue it, or choose another --name"


def test_config_file_round_trip(trained, runner, tmp_path):
    run, _ = trained
    original = json.loads((run / "config.json").read_text())
    # a run's config.json is itself a valid --config file; flags override it
    result = runner.invoke(
        app, ["train", "--config", str(run / "config.json"), "--name", "again", "--runs-dir", str(tmp_path), "--epochs", "1", "--baseline"]
    )
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert {k for k in original if original[k] != again[k]} == {"name", "runs_dir", "epochs", "arch"}
    assert (again["epochs"], again["arch"]) == (1, "baseline")
    _, config = checkpoint.load(tmp_path / "again" / "best")
    assert config.describe() == "baseline test_efficientnet S=32"
    # what `glass tune` will write: a plain dict of hyperparameters
    tuned = {"lr_global": 3e-5, "lr_local": 2e-4, "lr_atten_class": 1e-4, "wd_global": 1e-6, "wd_local": 1e-7, "num_crops": 6, "batch_size": 32, "dropout": 0.2}
    assert TrainConfig.from_dict(tuned).to_dict() | tuned == TrainConfig.from_dict(tuned).to_dict()
    assert TrainConfig.from_json(TrainConfig.from_dict(tuned).to_json()) == TrainConfig.from_dict(tuned)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"lr_globl": 1e-4}', "unknown training option(s): lr_globl"),
        ('{"epochs": "ten"}', "option epochs expects int, got 'ten'"),
        ('{"balance": "magic"}', "balance must be one of ('sampler', 'source', 'loss', 'none'), got 'magic'"),
        ("[1, 2]", "expected a JSON object of option: value"),
        ("{oops", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ],
)
def test_bad_config_files(runner, tmp_path, tiny_data, content, message):
    cfg = tmp_path / "bad.json"
    cfg.write_text(content)
    result = runner.invoke(app, ["train", str(tiny_data), "--config", str(cfg), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"glass: error: {cfg}: {message}"


def test_offline_pretrained_hub_backbone_is_a_clear_error(runner, tmp_path, tiny_data):
    result = runner.invoke(app, ["train", str(tiny_data), "--backbone", "test_resnet", "--runs-dir", str(tmp_path), "--name", "x"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "glass: error: no pretrained weights for test_resnet offline (timm's hub is unreachable and nothing is cached); "
        "pass --backbone-weights FILE (timm .safetensors/.pth) or --no-pretrained to train from random init"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_backbone(runner, tmp_path, tiny_data):
    result = runner.invoke(app, ["train", str(tiny_data), "--backbone", "resnet_nope", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("glass: error: timm has no model named 'resnet_nope'")


def test_data_errors(runner, tmp_path):
    missing = tmp_path / "missing"
    result = runner.invoke(app, ["train", str(missing), "--runs-dir", str(tmp_path)])
    assert (result.exit_code, result.stderr.strip()) == (2, f"glass: error: {missing}: no such folder or manifest")
    (tmp_path / "half" / "real").mkdir(parents=True)
    result = runner.invoke(app, ["train", str(tmp_path / "half"), "--runs-dir", str(tmp_path)])
    assert (result.exit_code, result.stderr.strip()) == (
        2, f"glass: error: {tmp_path / 'half'}: needs both real/ and fake/ sub-folders (or a manifest .csv)"
    )
    result = runner.invoke(app, ["train", "--runs-dir", str(tmp_path)])
    assert (result.exit_code, result.stderr.strip()) == (
        2, "glass: error: no training data given (a folder with real/ and fake/, or a manifest .csv)"
    )


@pytest.mark.heavy
def test_unreadable_training_images_are_skipped_with_a_warning(runner, tmp_path, tiny_data):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "fake" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    # pin the broken file into the train split with a manifest
    rows = ["path,label,split"] + [
        f"{p.relative_to(data)},{p.parent.name},{'val' if i % 4 == 0 else 'train'}"
        for i, p in enumerate(sorted(data.rglob("*.png")))
        if p.name != "broken.png"
    ] + ["fake/broken.png,fake,train"]
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["train", str(data), "--name", "b", "--runs-dir", str(tmp_path), "--epochs", "1", *TINY])
    assert result.exit_code == 0, result.output
    assert f"skipping unreadable training image {data}/fake/broken.png: " in result.stderr


@pytest.mark.heavy
def test_size_aug_and_crop_scales_train_and_scan(runner, tmp_path, tiny_data):
    args = ["train", str(tiny_data), "--name", "aux", "--runs-dir", str(tmp_path), "--epochs", "2", *TINY]
    result = runner.invoke(app, [*args, "--size-aug", "0.8", "--size-aug-min", "32", "--size-aug-max", "64", "--crop-scales", "1,2"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "aux"
    saved = TrainConfig.from_json((run / "config.json").read_text())
    assert (saved.size_aug, saved.size_aug_min, saved.size_aug_max, saved.crop_scales) == (0.8, 32, 64, "1,2")
    model, config = checkpoint.load(run / "last.safetensors")
    assert config.describe() == "glass test_efficientnet K=2 S=32 scales 1,2" and config.crop_scales == (1, 2)
    scanned = runner.invoke(app, ["scan", str(tiny_data / "real"), "--weights", str(run / "last.safetensors"), "--json", "-", "--min-side", "1"])
    files = json.loads(scanned.stdout)["files"]
    assert scanned.exit_code in (0, 1) and len(files) == 16
    assert all(len(f["crops"]) == 4 and {c["box"][2] - c["box"][0] for c in f["crops"]} == {32, 64} for f in files)
    losses = [float(r["train_loss"]) for r in read_metrics(run)]
    assert losses[1] < losses[0], losses
    bad = runner.invoke(app, ["train", str(tiny_data), "--name", "bad", "--runs-dir", str(tmp_path), *TINY, "--size-aug-min", "900", "--size-aug-max", "100"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1] == "glass: error: need 8 <= size_aug_min <= size_aug_max, got 900, 100"


def test_deep_supervision_trains_scans_and_exports(runner, tmp_path, tiny_data):
    """--aux-weight: auxiliary heads train beside the fused head (in the head's parameter
    group), the checkpoint keeps them, and scan and ONNX export use the fused output only."""
    run = tmp_path / "ds"
    args = ["train", str(tiny_data), "--name", "ds", "--runs-dir", str(tmp_path), "--epochs", "2", *TINY]
    result = runner.invoke(app, [*args, "--aux-weight", "0.5"])
    assert result.exit_code == 0, result.output
    saved = TrainConfig.from_json((run / "config.json").read_text())
    assert saved.aux_weight == 0.5
    model, config = checkpoint.load(run / "last.safetensors")
    assert config.aux_heads and hasattr(model, "aux_global") and hasattr(model, "aux_local")
    losses = [float(r["train_loss"]) for r in read_metrics(run)]
    assert losses[1] < losses[0], losses
    t = Trainer(saved.replace(name="ds-groups", runs_dir=str(tmp_path)))
    try:
        assert t.aux_weight == 0.5
        groups = {g["name"]: len(g["params"]) for g in t.optimizer.param_groups}
        heads = [t.model.attention, t.model.head, t.model.aux_global, t.model.aux_local]
        assert groups["atten_class"] == sum(len(list(m.parameters())) for m in heads)
    finally:
        t.close()
    scanned = runner.invoke(app, ["scan", str(tiny_data / "real"), "--weights", str(run / "last.safetensors"), "--json", "-", "--min-side", "1"])
    assert scanned.exit_code in (0, 1), scanned.output
    assert len(json.loads(scanned.stdout)["files"]) == 16
    exported = runner.invoke(app, ["export", "--onnx", "--weights", str(run / "last.safetensors"), "-o", str(tmp_path / "ds.onnx")])
    assert exported.exit_code == 0, exported.output
    # the baseline ignores the option (it has no branches to supervise)
    base = runner.invoke(app, ["train", str(tiny_data), "--name", "ds-base", "--runs-dir", str(tmp_path), "--epochs", "1",
                               "--baseline", *TINY, "--aux-weight", "0.5"])
    assert base.exit_code == 0, base.output
    assert not checkpoint.load(tmp_path / "ds-base" / "last.safetensors")[1].aux_heads


def test_npr_local_input_and_native_crops_train_scan_and_export(runner, tmp_path, tiny_data):
    """--local-input npr puts the residual inside the model (checkpoint and ONNX carry it);
    --local-native cuts the training crops before the rescale; --placement texture is kept in
    the model and used by scan. All are in the recipe only when on; the baseline ignores them."""
    run = tmp_path / "npr"
    args = ["train", str(tiny_data), "--name", "npr", "--runs-dir", str(tmp_path), "--epochs", "2", *TINY]
    result = runner.invoke(app, [*args, "--local-input", "npr", "--local-native", "1", "--size-aug", "1", "--size-aug-min", "16",
                                 "--size-aug-max", "24", "--placement", "texture"])
    assert result.exit_code == 0, result.output
    saved = TrainConfig.from_json((run / "config.json").read_text())
    assert (saved.local_input, saved.local_native, saved.placement) == ("npr", 1.0, "texture")
    model, config = checkpoint.load(run / "last.safetensors")
    assert (config.local_input, config.placement) == ("npr", "texture")
    assert config.describe().endswith("local=npr placement=texture")
    losses = [float(r["train_loss"]) for r in read_metrics(run)]
    assert all(0 < x < 2 for x in losses), losses
    # the trainer cuts the crops from the picture before the rescale (40-80 px pictures, the
    # random crop keeping >= 60% of a side), while the global view sees the 16-24 px copy
    sizes = {}
    for native in (1.0, 0.0):
        t = Trainer(saved.replace(name=f"npr-items-{native}", runs_dir=str(tmp_path), local_native=native))
        try:
            sizes[native] = [max(t._train_item(sample, 0, i).image_size) for i, sample in enumerate(t.train_set[:12])]
        finally:
            t.close()
    assert min(sizes[1.0]) >= 24 and max(sizes[1.0]) > 24 and max(sizes[0.0]) <= 24, sizes
    scanned = runner.invoke(app, ["scan", str(tiny_data / "real"), "--weights", str(run / "last.safetensors"), "--json", "-", "--min-side", "1",
                                  "--precision", "fp32"])
    assert scanned.exit_code in (0, 1), scanned.output
    assert len(json.loads(scanned.stdout)["files"]) == 16
    exported = runner.invoke(app, ["export", "--onnx", "--weights", str(run / "last.safetensors"), "-o", str(tmp_path / "npr.onnx")])
    assert exported.exit_code == 0, exported.output
    onnx_scan = runner.invoke(app, ["scan", str(tiny_data / "real"), "--weights", str(tmp_path / "npr.onnx"), "--json", "-", "--min-side", "1"])
    by_path = {f["path"]: f["p_ai"] for f in json.loads(scanned.stdout)["files"]}
    assert all(abs(f["p_ai"] - by_path[f["path"]]) < 1e-4 for f in json.loads(onnx_scan.stdout)["files"])
    bad = runner.invoke(app, [*args[:4], "bad", *args[5:], "--local-input", "srm"])
    assert bad.exit_code == 2 and "'srm' is not one of 'rgb', 'npr'" in bad.output
    base = runner.invoke(app, ["train", str(tiny_data), "--name", "npr-base", "--runs-dir", str(tmp_path), "--epochs", "1",
                               "--baseline", *TINY, "--local-input", "npr", "--local-native", "1", "--placement", "texture"])
    assert base.exit_code == 0, base.output
    base_config = checkpoint.load(tmp_path / "npr-base" / "last.safetensors")[1]
    assert (base_config.local_input, base_config.placement) == ("rgb", "uniform")


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    total, warmup, floor = 100, 10, 0.01
    factors = [lr_factor(s, total, warmup, floor) for s in range(total + 1)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(floor)


def test_three_param_groups(trained):
    run, _ = trained
    config = TrainConfig.from_json((run / "config.json").read_text()).replace(name="groups", runs_dir=str(run.parent))
    t = Trainer(config)
    try:
        groups = {g["name"]: (g["initial_lr"], g["weight_decay"], len(g["params"])) for g in t.optimizer.param_groups}
        assert list(groups) == ["global", "local", "atten_class"]
        assert groups["atten_class"][:2] == (1e-3, 0.0)
        n_att = len(list(t.model.attention.parameters())) + len(list(t.model.head.parameters()))
        assert groups["atten_class"][2] == n_att
        assert groups["global"][2] == len(list(t.model.global_net.parameters()))
    finally:
        t.close()


@pytest.mark.slow
def test_torchrun_two_processes_with_the_same_command_line(tiny_data, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    glass = shutil.which("glass", path=os.path.dirname(sys.executable))
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    cmd = [torchrun, "--nproc_per_node", "2", glass, "train", str(tiny_data), "--name", "ddp", "--runs-dir", str(tmp_path), "--epochs", "1", *TINY]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == f"run folder: {tmp_path / 'ddp'}"  # printed once, by rank 0
    assert "2 processes" in done.stderr
    rows = read_metrics(tmp_path / "ddp")
    assert len(rows) == 1
    _, config = checkpoint.load(tmp_path / "ddp" / "last")
    assert config.describe() == "glass test_efficientnet K=2 S=32"


def test_off_switches_are_kept(runner, tmp_path, tiny_data):
    """--no-augment and --no-amp are choices, not unset flags; they reach the run's config."""
    args = ["train", str(tiny_data), "--name", "off", "--runs-dir", str(tmp_path), "--epochs", "1", *TINY, "--no-augment", "--no-amp"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = TrainConfig.from_json((tmp_path / "off" / "config.json").read_text())
    assert (saved.augment, saved.amp, saved.pretrained) == (False, False, False)
