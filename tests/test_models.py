import pytest
import torch

from glass_cli.config import ModelConfig
from glass_cli.models import build_model, new_model
from glass_cli.models.backbones import BackboneError

from .conftest import TINY


def test_glass_shapes_and_attention_rows_sum_to_one():
    torch.manual_seed(0)
    model, cfg = new_model("glass", "test_efficientnet", "test_resnet", **TINY)
    model.eval()
    assert cfg.global_norm != cfg.local_norm  # each branch keeps its backbone's own normalisation
    for b, k in [(1, 1), (2, 3), (3, 5)]:
        logits, attn = model(torch.randn(b, 3, 32, 32), torch.randn(b, k, 3, 32, 32))
        assert logits.shape == (b, 2) and attn.shape == (b, k)
        torch.testing.assert_close(attn.sum(1), torch.ones(b))


def test_crop_chunking_does_not_change_outputs():
    torch.manual_seed(0)
    model, _ = new_model("glass", "test_resnet", **TINY)
    model.eval()
    g, c = torch.randn(4, 3, 32, 32), torch.randn(4, 5, 3, 32, 32)
    with torch.no_grad():
        model.crop_chunk = 3
        a = model(g, c)
        model.crop_chunk = 0
        b = model(g, c)
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a[1], b[1], atol=1e-6, rtol=1e-5)


def test_glass_structure_matches_paper():
    model, cfg = new_model("glass", "test_resnet", **TINY, dropout=0.3)
    d = model.local_net.num_features
    lin1, tanh, drop, lin2 = model.attention.score
    assert (lin1.in_features, lin1.out_features, lin2.out_features) == (d, 128, 1)
    assert isinstance(tanh, torch.nn.Tanh) and drop.p == 0.3
    norm, drop, fc = model.head
    assert norm.normalized_shape == (2 * d,) and fc.out_features == 2 and drop.p == 0.3
    assert model.global_net is not model.local_net


def test_baseline_ignores_crops():
    model, cfg = new_model("baseline", "test_efficientnet", **TINY)
    assert cfg.arch == "baseline" and cfg.local_backbone == cfg.global_backbone
    logits, attn = model.eval()(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 2) and attn is None
    drop, fc = model.head
    assert fc.in_features == model.global_net.num_features


def test_build_from_config_and_unknown_backbone():
    cfg = ModelConfig(global_backbone="test_vit", local_backbone="test_convnext", **TINY)
    model = build_model(cfg)
    assert type(model).__name__ == "GlassModel"
    with pytest.raises(BackboneError, match="timm has no model named 'resnet5000'"):
        new_model("glass", "resnet5000")


def test_config_validation_and_json_round_trip():
    cfg = ModelConfig(global_backbone="a", local_backbone="b", num_crops=6, crop_size=64, threshold=0.7)
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown model config keys: bogus"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="unknown model config keys: crop_head"):
        ModelConfig.from_dict({**cfg.to_dict(), "crop_head": False})
    for bad in (dict(arch="cnn"), dict(threshold=1.5), dict(num_crops=0), dict(classes=("ai", "real"))):
        with pytest.raises(ValueError):
            ModelConfig(**bad)


def test_aux_heads_are_for_training_only():
    """Deep supervision: forward still gives (logits, attention); with_aux adds the logits of
    the global-only and the pooled-crops-only heads, and the fused logits do not change."""
    torch.manual_seed(0)
    model, cfg = new_model("glass", "test_efficientnet", **TINY, aux_heads=True)
    model.eval()
    g, c = torch.randn(3, 3, 32, 32), torch.randn(3, 2, 3, 32, 32)
    with torch.no_grad():
        plain = model(g, c)
        logits, attn, (aux_g, aux_l) = model(g, c, with_aux=True)
    assert len(plain) == 2 and aux_g.shape == aux_l.shape == (3, 2)
    torch.testing.assert_close(plain[0], logits)
    torch.testing.assert_close(plain[1], attn)
    assert model.aux_global[-1].in_features == model.global_net.num_features
    assert model.aux_local[-1].in_features == model.local_net.num_features
    # the fused model is the same network plus two heads
    bare = build_model(cfg.replace(aux_heads=False))
    extra = set(model.state_dict()) - set(bare.state_dict())
    assert extra and all(k.startswith(("aux_global.", "aux_local.")) for k in extra)
    assert set(bare.state_dict()) < set(model.state_dict())
    with pytest.raises(ValueError, match="no auxiliary heads"):
        bare(g, c, with_aux=True)
    # configs without aux heads read and write as before; with them they round-trip
    assert "aux_heads" not in cfg.replace(aux_heads=False).to_dict()
    assert ModelConfig.from_json(cfg.to_json()) == cfg and cfg.to_dict()["aux_heads"] is True


def test_npr_local_input_feeds_the_residual_to_the_local_backbone_only():
    from glass_cli.models.glass import NPR_GAIN, npr_residual

    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    expected = torch.tensor([[0.0, 1, 0, 1], [4, 5, 4, 5], [0, 1, 0, 1], [4, 5, 4, 5]]) * NPR_GAIN
    torch.testing.assert_close(npr_residual(x)[0, 0], expected)
    # a picture made of flat 2x2 blocks (a nearest-neighbour 2x upsampling) has no residual
    blocks = torch.randn(2, 3, 8, 8).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert npr_residual(blocks).abs().max() == 0
    torch.manual_seed(0)
    model, cfg = new_model("glass", "test_efficientnet", **TINY, local_input="npr")
    assert cfg.describe().endswith("local=npr") and cfg.to_dict()["local_input"] == "npr"
    assert "local_input" not in cfg.replace(local_input="rgb").to_dict()
    rgb = build_model(cfg.replace(local_input="rgb"))
    rgb.load_state_dict(model.state_dict())
    model.eval(), rgb.eval()
    g, c = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(g, c)[0], rgb(g, c)[0])
        torch.testing.assert_close(model.embed_crops(c), rgb.embed_crops(npr_residual(c.flatten(0, 1)).unflatten(0, (2, 3))))
        torch.testing.assert_close(model.global_net(g), rgb.global_net(g))
    with pytest.raises(ValueError, match="local_input must be one of"):
        ModelConfig(local_input="srm")
    with pytest.raises(ValueError, match="local_input npr needs an even crop_size, got 33"):
        ModelConfig(crop_size=33, local_input="npr")
