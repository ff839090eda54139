"""The shipped default model (weights/) on the example images, through the README's command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glass_cli.cli import app
from glass_cli.inference import onnxfile
from glass_cli.io import digest
from glass_cli.models import checkpoint
from glass_cli.preprocess.sampling import grid_size

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def truth() -> dict[str, str]:
    """file name -> 'real' or 'fake', from examples/SOURCES.md."""
    rows = [line.split("|") for line in (EXAMPLES / "SOURCES.md").read_text().splitlines() if line.startswith("| ")]
    return {r[1].strip(): r[2].strip() for r in rows[1:]}


WEIGHTS = ROOT / "weights"
BASELINE = WEIGHTS / "baseline-lite0.safetensors"
GLASS = WEIGHTS / "glass-lite0.safetensors"


def test_default_weights_are_the_baseline_found_and_described():
    """Issue 38: the resize-only baseline ranks unseen sources better than GLASS trained
    alike, so it is the default; GLASS ships beside it as `--weights glass`."""
    path = checkpoint.default_weights("torch")
    assert path is not None and path.resolve() == BASELINE.resolve()
    assert checkpoint.default_weights().resolve() == (WEIGHTS / "baseline-lite0.onnx").resolve()
    for shipped, described in ((BASELINE, "baseline tf_efficientnet_lite0 S=224"), (GLASS, "glass tf_efficientnet_lite0 K=4 S=224")):
        config = checkpoint.read_config(shipped)
        assert config.describe() == described
        assert config.calibration["method"] == "leave-source-out cross-validation" and config.threshold == config.calibration["threshold"]
        assert shipped.stat().st_size + shipped.with_suffix(".json").stat().st_size < 60 * 2**20
    assert (WEIGHTS / "MODEL_CARD.md").is_file() and (WEIGHTS / "NOTICE").is_file()


def scan_examples(tmp_path, *options: str, columns: str = "80"):
    out = tmp_path / "examples.json"
    result = CliRunner(env={"COLUMNS": columns}).invoke(app, ["scan", str(EXAMPLES), "--all", "--json", str(out), *options])
    assert result.exit_code == 1, result.output  # the AI examples are flagged
    return result, json.loads(out.read_text())


def assert_right_on_the_examples(doc: dict) -> None:
    expected = truth()
    assert len(expected) == 8 and {Path(f["path"]).name for f in doc["files"]} == set(expected)
    for f in doc["files"]:
        want = "ai" if expected[Path(f["path"]).name] == "fake" else "real"
        assert f["verdict"] == want, (f["path"], f["p_ai"])


@pytest.mark.slow
def test_readme_command_scans_the_examples(tmp_path, monkeypatch):
    """The README's first command: the default (the baseline) from its ONNX export, right on
    all eight examples; a resize-only model shows no crops."""
    monkeypatch.delenv("GLASS_WEIGHTS", raising=False)
    result, doc = scan_examples(tmp_path)
    assert doc["model"]["id"] == digest.model_id(checkpoint.weights_sha256(BASELINE))  # the ONNX file names its source
    assert doc["model"]["format"] == "onnx" and {f["engine"] for f in doc["files"]} == {"onnx"}
    assert_right_on_the_examples(doc)
    assert all(f["crops"] == [] and f["sampling"] is None for f in doc["files"])
    threshold = checkpoint.read_config(BASELINE).threshold
    assert doc["files"][0]["threshold"] == threshold
    lines = result.stdout.splitlines()
    assert f"8 scanned, 4 flagged as AI (P(AI) >= {threshold:.6g}), 4 real, 0 not scanned" in lines
    assert not any(line.startswith("(crops:") for line in lines)
    assert f"model: baseline tf_efficientnet_lite0 S=224 ({doc['model']['id']})" in lines


@pytest.mark.slow
def test_scan_with_glass_by_name(tmp_path, monkeypatch):
    """`--weights glass`: the GLASS model, also right on the examples, with its four crops."""
    monkeypatch.delenv("GLASS_WEIGHTS", raising=False)
    result, doc = scan_examples(tmp_path, "--weights", "glass")
    assert doc["model"]["id"] == digest.model_id(checkpoint.weights_sha256(GLASS)) and doc["model"]["format"] == "onnx"
    assert_right_on_the_examples(doc)
    config = checkpoint.read_config(GLASS)
    for f in doc["files"]:
        grids = [grid_size(f["width"], f["height"], config.crop_size * m) for m in config.crop_scales]
        stratified = min(grids) ** 2 >= config.num_crops
        assert f["sampling"] == ("stratified" if stratified else "fallback")
        assert len(f["crops"]) == config.num_crops * len(config.crop_scales) == 4
    assert f"8 scanned, 4 flagged as AI (P(AI) >= {config.threshold:.6g}), 4 real, 0 not scanned" in result.stdout


@pytest.mark.parametrize("stem", ["baseline-lite0", "glass-lite0"])
def test_each_shipped_onnx_file_is_an_export_of_its_checkpoint(stem):
    """Fails when a checkpoint (weights or config, threshold included) changes without a new
    export: `glass export --onnx --weights weights/STEM.safetensors -o weights/STEM.onnx`."""
    meta = onnxfile.read_metadata(WEIGHTS / f"{stem}.onnx")
    shipped = WEIGHTS / f"{stem}.safetensors"
    assert meta[onnxfile.META_SOURCE_SHA256] == checkpoint.weights_sha256(shipped)
    assert onnxfile.config_from_metadata(meta, "x").to_dict() == checkpoint.read_config(shipped).to_dict()
    assert meta[onnxfile.META_PRECISION] == "fp32"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["default", "glass"])
def test_onnx_and_torch_engines_agree_on_the_examples(tmp_path, monkeypatch, name):
    monkeypatch.delenv("GLASS_WEIGHTS", raising=False)
    scores = {}
    for engine in ("onnx", "torch"):
        out = tmp_path / f"{engine}.json"
        # fp32 on both: on a CPU with bfloat16 the torch engine's auto would be bf16
        result = CliRunner().invoke(app, ["scan", str(EXAMPLES), "--weights", name, "--engine", engine, "--precision", "fp32", "--json", str(out)])
        assert result.exit_code == 1, result.output
        doc = json.loads(out.read_text())
        scores[engine] = {f["path"]: (f["p_ai"], {tuple(c["box"]): c["weight"] for c in f["crops"]}, f["model_id"]) for f in doc["files"]}
    assert scores["onnx"].keys() == scores["torch"].keys()
    for path, (p, weights, model_id) in scores["onnx"].items():
        tp, tweights, tid = scores["torch"][path]
        assert abs(p - tp) < 1e-4 and weights.keys() == tweights.keys(), path
        assert max((abs(weights[b] - tweights[b]) for b in weights), default=0.0) < 1e-4, path
        assert model_id == tid
    assert all(weights for _, weights, _ in scores["onnx"].values()) == (name == "glass")


# ---------------------------------------------------------------------------- the shipped models, by name


def test_shipped_names_resolve_to_the_shipped_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert checkpoint.resolve_weights("baseline").resolve() == (WEIGHTS / "baseline-lite0.onnx").resolve()
    assert checkpoint.resolve_weights("baseline", "torch").resolve() == BASELINE.resolve()
    assert checkpoint.resolve_weights(Path("default"), "torch").resolve() == BASELINE.resolve()
    assert checkpoint.resolve_weights("glass").resolve() == (WEIGHTS / "glass-lite0.onnx").resolve()
    assert checkpoint.resolve_weights("glass", "torch").resolve() == GLASS.resolve()
    monkeypatch.setenv("GLASS_WEIGHTS", str(GLASS))  # "default" names the shipped default, not $GLASS_WEIGHTS
    assert checkpoint.resolve_weights("default").resolve() == (WEIGHTS / "baseline-lite0.onnx").resolve()
    (tmp_path / "glass").mkdir()  # a folder of that name (a clone of glass seen from its parent) is no model
    assert checkpoint.resolve_weights("glass").resolve() == (WEIGHTS / "glass-lite0.onnx").resolve()
    (tmp_path / "baseline.safetensors").write_bytes(b"mine")  # a checkpoint of that name here wins
    assert checkpoint.resolve_weights("baseline") == Path("baseline")
    with pytest.raises(checkpoint.CheckpointError, match="baseline-lite0: no model by that name; did you mean baseline"):
        checkpoint.resolve_weights("baseline-lite0")  # only the names are special; a typo is told so


def test_a_shipped_name_missing_from_the_install_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("glass_cli.models.checkpoint._shipped", lambda name: None)
    photo = tmp_path / "in"
    photo.mkdir()
    result = CliRunner().invoke(app, ["scan", str(photo), "--weights", "baseline"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "glass: error: baseline: the shipped baseline model (weights/baseline-lite0.*) is not in this install\n"


@pytest.mark.parametrize("name", ["baseline-lite0.onnx", "baseline-lite0.safetensors", "glass-lite0.onnx", "glass-lite0.safetensors"])
def test_records_name_no_folder_of_the_machine_that_made_the_model(name):
    """The shipped models were calibrated on another machine; what a record says of the model
    names its data and source by file name, not by that machine's folders."""
    path = WEIGHTS / name
    described = onnxfile.describe_file(path) if name.endswith(".onnx") else checkpoint.describe_file(path)
    calibration = described["config"].get("calibration") or {}
    for key in ("data", "source", "cv"):
        value = calibration.get(key)
        assert not (isinstance(value, str) and Path(value).is_absolute()), (key, value)
