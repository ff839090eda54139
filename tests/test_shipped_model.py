"""The shipped default model (weights/) on the example images, through the README's command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glass_cli.cli import app
from glass_cli.io import digest
from glass_cli.models import checkpoint
from glass_cli.preprocess.sampling import grid_size

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def truth() -> dict[str, str]:
    """file name -> 'real' or 'fake', from examples/SOURCES.md."""
    rows = [line.split("|") for line in (EXAMPLES / "SOURCES.md").read_text().splitlines() if line.startswith("| ")]
    return {r[1].strip(): r[2].strip() for r in rows[1:]}


def test_default_weights_are_found_and_described():
    path = checkpoint.default_weights()
    assert path is not None and path.resolve() == (ROOT / "weights" / "glass-default.safetensors").resolve()
    config = checkpoint.read_config(path)
    assert config.describe() == "glass tf_efficientnet_lite0 K=2 S=224 scales 1,2"
    assert config.calibration["method"] == "leave-source-out cross-validation" and config.threshold == config.calibration["threshold"]
    assert path.stat().st_size + path.with_suffix(".json").stat().st_size < 60 * 2**20
    assert (ROOT / "weights" / "MODEL_CARD.md").is_file() and (ROOT / "weights" / "NOTICE").is_file()


@pytest.mark.slow
def test_readme_command_scans_the_examples(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASS_WEIGHTS", raising=False)
    out = tmp_path / "examples.json"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["scan", str(EXAMPLES), "--all", "--json", str(out)])
    assert result.exit_code == 1, result.output  # the AI examples are flagged
    doc = json.loads(out.read_text())
    assert doc["model"]["id"] == digest.model_id(checkpoint.weights_sha256(checkpoint.default_weights()))
    expected = truth()
    assert len(expected) == 8 and {Path(f["path"]).name for f in doc["files"]} == set(expected)
    for f in doc["files"]:
        want = "ai" if expected[Path(f["path"]).name] == "fake" else "real"
        assert f["verdict"] == want, (f["path"], f["p_ai"])
        grids = [grid_size(f["width"], f["height"], 224 * m) for m in (1, 2)]
        assert f["sampling"] == ("stratified" if min(grids) ** 2 >= 2 else "fallback") and len(f["crops"]) == 4
    threshold = checkpoint.load(checkpoint.default_weights())[1].threshold
    assert doc["files"][0]["threshold"] == threshold
    assert f"8 scanned, 4 flagged as AI (P(AI) >= {threshold:.6g}), 4 real, 0 not scanned" in result.stdout
