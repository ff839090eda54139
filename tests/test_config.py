"""ModelConfig and TrainConfig check the model fields they share in one place, and a run's
config file keeps its JSON form."""

from __future__ import annotations

import json

import pytest

from glass_cli.config import ModelConfig, TrainConfig, recipe_of


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("arch", "cnn", "arch must be one of ('glass', 'baseline'), got 'cnn'"),
        ("num_crops", 0, "need num_crops >= 1 and crop_size >= 8, got 0, 224"),
        ("crop_size", 4, "need num_crops >= 1 and crop_size >= 8, got 4, 4"),
        ("dropout", 1.5, "dropout must lie in [0, 1), got 1.5"),
    ],
)
def test_both_configs_refuse_a_bad_model_field_with_the_same_message(field, value, message):
    for cls in (ModelConfig, TrainConfig):
        with pytest.raises(ValueError) as caught:
            cls(**{field: value})
        assert str(caught.value) == message


def test_crop_scales_are_text_in_a_run_and_a_tuple_in_the_model():
    assert str(_error(ModelConfig, crop_scales=(1, 1))) == "crop_scales must be distinct integers >= 1 such as 1,2; got '1,1'"
    for text in ("1,1", "0", "", "1,x"):
        assert str(_error(TrainConfig, crop_scales=text)) == f"crop_scales must be distinct integers >= 1 such as 1,2; got {text!r}"
    config = TrainConfig.from_json(json.dumps({"crop_scales": "1,2", "num_crops": 3}))
    assert config.crop_scales == "1,2" and json.loads(config.to_json())["crop_scales"] == "1,2"
    assert config.model_options()["crop_scales"] == (1, 2)
    assert TrainConfig(arch="baseline", crop_scales="1,2").model_options()["crop_scales"] == (1,)


def _error(cls, **fields) -> ValueError:
    with pytest.raises(ValueError) as caught:
        cls(**fields)
    return caught.value


def test_aux_weight_is_in_the_recipe_only_when_on():
    """Plans and records kept before deep supervision existed still match a run at its
    default (aux_weight 0); a run with it on is another recipe. It builds aux heads for GLASS only."""
    plain, ds = TrainConfig(), TrainConfig(aux_weight=0.5)
    assert "aux_weight" not in recipe_of(plain.to_dict()) and recipe_of(ds.to_dict())["aux_weight"] == 0.5
    assert TrainConfig.from_json(ds.to_json()) == ds
    assert ds.model_options()["aux_heads"] and not plain.model_options()["aux_heads"]
    assert not ds.replace(arch="baseline").model_options()["aux_heads"]
    with pytest.raises(ValueError, match="aux_weight must be >= 0"):
        TrainConfig(aux_weight=-1.0)


def test_local_input_and_native_crops_are_in_the_recipe_only_when_on():
    plain = TrainConfig()
    assert "local_input" not in recipe_of(plain.to_dict()) and "local_native" not in recipe_of(plain.to_dict())
    npr = TrainConfig(local_input="npr", local_native=0.5)
    assert recipe_of(npr.to_dict())["local_input"] == "npr" and recipe_of(npr.to_dict())["local_native"] == 0.5
    assert npr.model_options()["local_input"] == "npr"
    assert npr.replace(arch="baseline").model_options()["local_input"] == "rgb"
    with pytest.raises(ValueError, match="local_native must lie in"):
        TrainConfig(local_native=1.5)
    with pytest.raises(ValueError, match="local_input must be one of"):
        TrainConfig(local_input="srm")
