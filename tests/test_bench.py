"""Every bench script still starts: ``--help`` exits 0 and prints its usage, so a renamed or
removed library name breaks the suite rather than a measurement weeks later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


def test_there_are_bench_scripts():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_bench_script_help(script):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: "), out.stdout[:200]


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_bench_script_uses_public_library_names_that_exist(script):
    """The imports inside functions run only in a real measurement; check them here."""
    import ast
    import importlib

    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glass_cli"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert not alias.name.startswith("_"), f"{script.name}: imports the private {node.module}.{alias.name}"
                if not hasattr(module, alias.name):  # a submodule, e.g. glass_cli.models.checkpoint
                    importlib.import_module(f"{node.module}.{alias.name}")
