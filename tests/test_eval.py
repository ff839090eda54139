"""glass eval: metrics on generated data, scan's exact scores, robustness options, errors."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from glass_cli.cli import app
from glass_cli.io.digest import file_sha256

REPORTED = {
    "n", "n_real", "n_ai", "accuracy", "balanced_accuracy", "auroc", "average_precision", "ece",
    "tpr_at_fpr_1", "tpr_at_fpr_5", "tpr", "fpr",
}


@pytest.fixture(scope="module")
def weights(trained):
    run, result = trained
    assert result.exit_code == 0, result.output
    return run / "best.safetensors"


def run_json(runner, args):
    result = runner.invoke(app, [*args, "--json", "-"])
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def test_eval_reports_every_metric(runner, tiny_data, weights):
    result, doc = run_json(runner, ["eval", str(tiny_data), "--weights", str(weights), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert set(doc["overall"]) == REPORTED
    n_val = doc["overall"]["n"]
    assert 0 < n_val < 32 and len(doc["files"]) == n_val
    assert doc["split"] == "val" and doc["perturbation"] == {"jpeg": None, "webp": None, "downscale": None, "long_side": None}
    assert doc["overall"]["auroc"] >= 0.9  # the tint is easy; a trained model separates it
    assert doc["errors"] == [] and "by_generator" not in doc
    table = runner.invoke(app, ["eval", str(tiny_data), "--weights", str(weights), "--split", "val"])
    assert table.exit_code == 0
    for label in ("accuracy", "balanced accuracy", "AUROC", "average precision", "ECE (15 bins)", "TPR at 1% FPR", "TPR at 5% FPR"):
        assert label in table.stdout


def test_eval_scores_equal_scan_scores(runner, tiny_data, weights):
    """eval scores in fp32, the plain (ONNX) scan's arithmetic, also on a CPU where the torch
    engine's auto precision would be bf16: its thresholds must hold for scan's verdicts."""
    _, ev = run_json(runner, ["eval", str(tiny_data), "--weights", str(weights), "--batch-size", "1"])
    _, sc = run_json(runner, ["scan", str(tiny_data), "--weights", str(weights), "--batch-size", "1", "--min-side", "1",
                              "--engine", "torch", "--precision", "fp32"])
    scan_scores = {f["path"]: f["p_ai"] for f in sc["files"]}
    assert len(ev["files"]) == len(scan_scores) == 32
    assert all(f["p_ai"] == scan_scores[f["path"]] for f in ev["files"])


def test_jpeg_option_equals_scanning_the_reencoded_file(runner, tiny_data, weights, tmp_path):
    _, ev = run_json(runner, ["eval", str(tiny_data), "--weights", str(weights), "--jpeg", "70", "--batch-size", "1"])
    assert ev["perturbation"] == {"jpeg": 70, "webp": None, "downscale": None, "long_side": None}
    one = ev["files"][0]
    saved = tmp_path / "resaved.jpg"
    buf = io.BytesIO()
    Image.open(one["path"]).convert("RGB").save(buf, format="JPEG", quality=70)
    saved.write_bytes(buf.getvalue())
    _, sc = run_json(runner, ["scan", str(saved), "--weights", str(weights), "--min-side", "1", "--precision", "fp32"])
    assert sc["files"][0]["p_ai"] == one["p_ai"]


def test_downscale_and_groups_from_a_manifest(runner, tiny_data, weights, tmp_path):
    data = tmp_path / "m"
    shutil.copytree(tiny_data, data)
    rows = ["path,label,split,generator,family"]
    for i, p in enumerate(sorted(data.rglob("*.png"))):
        gen, fam = ("camera:A", "cam") if p.parent.name == "real" else (("sdxl", "sd") if i % 2 else ("flux-dev", "flux"))
        if p.name == "fake000.png":
            gen, fam = "rare-gen", "rare-family"  # one image: too few for a per-group line
        rows.append(f"{p.relative_to(data)},{p.parent.name},val,{gen},{fam}")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    result, doc = run_json(runner, ["eval", str(data), "--weights", str(weights), "--downscale", "0.5", "--split", "val"])
    assert result.exit_code == 0, result.output
    assert set(doc["by_generator"]) == {"camera:A", "sdxl", "flux-dev", "rare-gen"}
    assert set(doc["by_family"]) == {"cam", "sd", "flux", "rare-family"}
    assert doc["by_family"]["cam"]["label"] == "real" and doc["by_family"]["rare-family"]["n"] == 1
    tables = " ".join(result.stderr.split())  # with --json - the tables go to stderr
    assert "rare-gen" not in tables and "rare-family" not in tables
    assert "1 generator group(s) of fewer than 5 images not listed (--min-group 1 lists all; --json has every group)" in tables
    everything = runner.invoke(app, ["eval", str(data), "--weights", str(weights), "--split", "val", "--min-group", "1"])
    assert "rare-gen" in everything.stdout and "not listed" not in everything.stdout


def test_unreadable_files_are_listed_and_exit_3(runner, tiny_data, weights, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(tiny_data, data)
    (data / "fake" / "empty.png").write_bytes(b"")
    result, doc = run_json(runner, ["eval", str(data), "--weights", str(weights)])
    assert result.exit_code == 3
    assert doc["errors"] == [{"path": str(data / "fake" / "empty.png"), "error": "empty file (0 bytes)"}]
    assert doc["overall"]["n"] == 32


@pytest.mark.parametrize(
    "args, message",
    [
        (["--split", "test"], "{data}: no images in split 'test' (splits: train, val)"),
        (["--downscale", "1.5"], "--downscale must be a factor in (0, 1], got 1.5"),
        (["--weights", "/nonexistent/w.safetensors"], "/nonexistent/w.safetensors: no such checkpoint (shipped models: default, baseline, glass)"),
    ],
)
def test_eval_errors(runner, tiny_data, weights, args, message):
    base = ["eval", str(tiny_data), "--weights", str(weights)]
    result = runner.invoke(app, [*base, *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == "glass: error: " + message.format(data=tiny_data)


def test_calibrate_writes_a_copy_with_the_threshold(runner, tiny_data, weights, tmp_path):
    from glass_cli.models import checkpoint

    out = tmp_path / "calibrated"
    _, ev = run_json(runner, ["eval", str(tiny_data), "--weights", str(weights)])
    real = sorted((f["p_ai"] for f in ev["files"] if f["label"] == "real"), reverse=True)
    result = runner.invoke(app, ["eval", str(tiny_data), "--weights", str(weights), "--calibrate", "--target-fpr", "0.125", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cfg = checkpoint.read_config(out.with_suffix(".safetensors"))
    original = checkpoint.read_config(weights)
    # 16 reals, 12.5% -> 2 may be flagged: the threshold sits just above the third-highest real
    assert real[2] < cfg.threshold <= real[2] + 1e-6 and cfg.threshold <= real[1]
    assert cfg.calibration["fpr"] == 2 / 16 and cfg.calibration["target_fpr"] == 0.125 and cfg.calibration["real"] == 16
    assert cfg.replace(threshold=original.threshold, calibration=None) == original  # nothing else changed
    assert checkpoint.read_config(weights).threshold == original.threshold  # the original is untouched
    assert f"calibrated threshold {cfg.threshold:.6g}: FPR 0.125 on 16 real images (target 0.125)" in result.stdout
    _, sc = run_json(runner, ["scan", str(tiny_data / "real"), "--weights", str(out.with_suffix(".safetensors")), "--min-side", "1", "--precision", "fp32"])
    assert sc["threshold"] == cfg.threshold and sc["summary"]["flagged"] == 2
    bad = runner.invoke(app, ["eval", str(tiny_data), "--weights", str(weights), "--calibrate", "--target-fpr", "1.5"])
    assert bad.exit_code == 2 and bad.stderr.strip() == "glass: error: --target-fpr must lie in [0, 1), got 1.5"


def test_long_side_shrinks_large_pictures_and_never_enlarges():
    from glass_cli.evaluation.evaluate import EvalError, Perturbation

    cap = Perturbation(long_side=1024)
    wide, tall, small = Image.new("RGB", (2000, 1000)), Image.new("RGB", (600, 3000)), Image.new("RGB", (800, 600))
    assert cap.apply(wide, "w.png")[0].size == (1024, 512)
    assert cap.apply(tall, "t.png")[0].size == (205, 1024)
    assert cap.changes(wide) and not cap.changes(small) and not cap.changes(Image.new("RGB", (1024, 700)))
    assert cap.apply(small, "s.png")[0].size == (800, 600)  # applied anyway: still never enlarged
    assert Perturbation(downscale=0.5, long_side=400).apply(wide, "w.png")[0].size == (400, 200)
    assert cap.describe() == "long side <= 1024" and cap.to_dict() == {"jpeg": None, "webp": None, "downscale": None, "long_side": 1024}
    with pytest.raises(EvalError, match="--long-side must be at least 8 pixels, got 4"):
        Perturbation(long_side=4)


def test_long_side_keeps_small_files_as_stored(runner, tiny_data, weights):
    _, native = run_json(runner, ["eval", str(tiny_data), "--weights", str(weights)])
    result, capped = run_json(runner, ["eval", str(tiny_data), "--weights", str(weights), "--long-side", "60"])
    assert result.exit_code == 0, result.output
    assert capped["perturbation"] == {"jpeg": None, "webp": None, "downscale": None, "long_side": 60}
    before = {f["path"]: f["p_ai"] for f in native["files"]}
    sizes = {f["path"]: Image.open(f["path"]).size for f in capped["files"]}
    kept = [f for f in capped["files"] if max(sizes[f["path"]]) <= 60]
    shrunk = [f for f in capped["files"] if max(sizes[f["path"]]) > 60]
    assert kept and shrunk
    assert all(f["p_ai"] == before[f["path"]] for f in kept)
    assert any(f["p_ai"] != before[f["path"]] for f in shrunk)


def test_run_from_python_selects_the_split_and_calibrates(runner, tiny_data, weights, tmp_path):
    from glass_cli.evaluation import evaluate
    from glass_cli.models import checkpoint

    _, ev = run_json(runner, ["eval", str(tiny_data), "--weights", str(weights), "--split", "val"])
    seen = []
    settings = evaluate.EvalSettings(weights=weights, split="val", calibrate_fpr=0.25, calibrated_out=tmp_path / "cal")
    run = evaluate.run(tiny_data, settings, on_start=seen.append, on_progress=lambda n: seen.append(-n))
    assert seen[0] == len(run.records) == ev["overall"]["n"] and seen[1:] == [-1] * len(run.records)
    assert {r.path: r.p_ai for r in run.records} == {f["path"]: f["p_ai"] for f in ev["files"]}
    assert run.calibrated == tmp_path / "cal.safetensors"
    assert checkpoint.read_config(run.calibrated).threshold == run.calibration["threshold"]
    assert run.calibration["split"] == "val" and run.calibration["source"] == {"name": Path(weights).name, "sha256": file_sha256(weights)}
    with pytest.raises(evaluate.EvalError, match="no images in split 'nope'"):
        evaluate.run(tiny_data, evaluate.EvalSettings(weights=weights, split="nope"))
