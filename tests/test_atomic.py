"""Atomic writes: whole files or nothing, with the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from glass_cli.io import atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions only")
def test_new_file_follows_umask_and_replacement_keeps_mode(tmp_path, umask_022):
    target = tmp_path / "deep" / "model.onnx"
    atomic.write_bytes(target, b"one")
    assert target.read_bytes() == b"one" and mode(target) == 0o644
    target.chmod(0o600)
    atomic.write_text(target, "two")
    assert target.read_text() == "two" and mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.json"
    atomic.write_text(target, "old")
    with pytest.raises(TypeError):
        atomic.write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
