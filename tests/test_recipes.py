"""The recipes in recipes/ are valid `glass train --config` files and describe the shipped models."""

import json
from pathlib import Path

import pytest

from glass_cli.config import TrainConfig
from glass_cli.models import checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"glass-lite0.json": "glass-lite0", "baseline-lite0.json": "baseline-lite0"}


@pytest.mark.parametrize("recipe,weights", sorted(SHIPPED.items()))
def test_recipe_matches_the_shipped_model(recipe, weights):
    config = TrainConfig.from_dict(json.loads((ROOT / "recipes" / recipe).read_text(encoding="utf-8")))
    shipped = checkpoint.read_config(ROOT / "weights" / f"{weights}.safetensors")
    options = config.model_options()
    assert (config.arch, config.global_backbone, config.local_name) == (shipped.arch, shipped.global_backbone, shipped.local_backbone)
    assert options["crop_size"] == shipped.crop_size
    if shipped.arch == "glass":  # the baseline has no crops
        assert (options["num_crops"], tuple(options["crop_scales"])) == (shipped.num_crops, tuple(shipped.crop_scales))


def test_every_recipe_is_listed():
    assert sorted(p.name for p in (ROOT / "recipes").glob("*.json")) == sorted(SHIPPED)


@pytest.mark.parametrize("recipe,weights", sorted(SHIPPED.items()))
def test_recipe_is_the_cross_validated_one(recipe, weights):
    """A shipped model whose threshold comes from a cross-validation record kept in the
    repository (glass cv --record --calibrate) must ship with that record's recipe."""
    from glass_cli.config import recipe_of
    from glass_cli.evaluation.cv.calibration import read_record
    from glass_cli.io.digest import file_sha256

    shipped = checkpoint.read_config(ROOT / "weights" / f"{weights}.safetensors")
    cv = (shipped.calibration or {}).get("cv")
    if isinstance(cv, dict):  # named by file name and SHA-256: find the kept record with that digest
        kept = [p for p in (ROOT / "docs" / "experiments").rglob(cv["name"]) if file_sha256(p) == cv["sha256"]]
        assert kept, f"{weights}: no record under docs/experiments has the SHA-256 its calibration names"
        record = kept[0]
    else:  # older calibrations named the record by its path in the repository
        record = ROOT / str(cv or "")
    if not record.is_file():
        pytest.skip(f"{weights}: calibrated from fold runs outside the repository")
    config = TrainConfig.from_dict(json.loads((ROOT / "recipes" / recipe).read_text(encoding="utf-8")))
    doc = read_record(record)
    assert recipe_of(config.to_dict(), validation=False) == recipe_of(doc["config"], validation=False)
    assert shipped.threshold == doc["calibration"]["threshold"]
