import json

import pytest
import torch

from glass_cli.models import checkpoint, new_model
from glass_cli.models.checkpoint import CheckpointError

from .conftest import TINY


def test_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model, cfg = new_model("glass", "test_efficientnet", "test_resnet", **TINY)
    path = checkpoint.save(model, cfg, tmp_path / "m")
    assert path == tmp_path / "m.safetensors" and (tmp_path / "m.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temp files left
    for given in (path, tmp_path / "m.json", tmp_path / "m"):
        loaded, cfg2 = checkpoint.load(given)
        assert cfg2 == cfg and not loaded.training
        for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), k


def test_config_embedded_in_weights_file(tmp_path):
    model, cfg = new_model("baseline", "test_resnet", **TINY)
    path = checkpoint.save(model, cfg, tmp_path / "b.safetensors")
    (tmp_path / "b.json").unlink()
    assert checkpoint.read_config(path) == cfg
    _, cfg2 = checkpoint.load(path)
    assert cfg2 == cfg


def test_json_beside_weights_wins(tmp_path):
    model, cfg = new_model("baseline", "test_resnet", **TINY)
    path = checkpoint.save(model, cfg, tmp_path / "b")
    data = json.loads((tmp_path / "b.json").read_text())
    data["threshold"] = 0.8
    (tmp_path / "b.json").write_text(json.dumps(data))
    assert checkpoint.load(path)[1].threshold == 0.8


def test_half_storage_loads_as_float(tmp_path):
    torch.manual_seed(0)
    model, cfg = new_model("baseline", "test_resnet", **TINY)
    path = checkpoint.save(model, cfg, tmp_path / "h", half=True)
    loaded, _ = checkpoint.load(path)
    w = next(loaded.parameters())
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, next(model.parameters()), atol=1e-3, rtol=1e-3)


def test_errors_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "missing.safetensors")
    pt = tmp_path / "model.pt"
    torch.save({"x": torch.zeros(1)}, pt)
    with pytest.raises(CheckpointError, match="glass never unpickles"):
        checkpoint.load(pt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        checkpoint.load(junk)
    # config says one architecture, weights are another
    model, cfg = new_model("baseline", "test_resnet", **TINY)
    checkpoint.save(model, cfg, tmp_path / "x")
    (tmp_path / "x.json").write_text(cfg.replace(arch="glass").to_json())
    with pytest.raises(CheckpointError, match="weights do not match the glass test_resnet K=3 S=32"):
        checkpoint.load(tmp_path / "x.safetensors")
