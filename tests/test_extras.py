"""The plain install scans without torch; commands that need the training extra say so in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glass_cli import extras
from glass_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner(env={"COLUMNS": "200", "GLASS_WEIGHTS": ""})
HINT = "pip install 'glass-cli[train]' (in a checkout: pip install -e '.[train]')"


def without(monkeypatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled to glass's extra checks."""
    monkeypatch.setattr(extras, "missing", lambda names: [m for m in names if m in modules])


@pytest.mark.parametrize("argv,message", [
    (["train", "data/"], "glass train needs the training extra, which this install lacks (torch, timm not found): "),
    (["eval", "data/"], "glass eval needs the training extra, which this install lacks (torch, timm not found): "),
    (["cv", "data/"], "glass cv needs the training extra, which this install lacks (torch, timm not found): "),
    (["export", "--onnx"], "glass export needs the training extra, which this install lacks (torch, timm not found): "),
    (["tune", "data/", "--n-trials", "1"], "glass tune needs the training extra, which this install lacks (torch, timm not found): "),
])
def test_training_commands_name_the_missing_extra(monkeypatch, argv, message):
    without(monkeypatch, "torch", "timm")
    result = runner.invoke(app, argv)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"glass: error: {message}{HINT}\n"


def test_scan_with_the_torch_engine_names_the_extra(monkeypatch, tmp_path):
    without(monkeypatch, "torch")
    result = runner.invoke(app, ["scan", str(ROOT / "examples"), "--engine", "torch"])
    assert result.exit_code == 2
    assert result.stderr == f"glass: error: scanning with the torch engine (--engine torch, --decode gpu) needs the training extra, which this install lacks (torch not found): {HINT}\n"


def test_default_scan_runs_where_torch_cannot_be_imported(tmp_path):
    """A real process in which `import torch` fails: the shipped ONNX model still scans."""
    out = tmp_path / "scan.json"
    code = (
        "import sys; sys.modules.update(torch=None, timm=None, torchvision=None)\n"
        "from glass_cli.cli import main; sys.argv = ['glass', 'scan', sys.argv[1], '--json', sys.argv[2]]; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "ai-kolors.jpg"), str(out)],
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "COLUMNS": "120"})
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(out.read_text())
    assert doc["model"]["format"] == "onnx" and doc["files"][0]["engine"] == "onnx" and doc["files"][0]["p_ai"] is not None
