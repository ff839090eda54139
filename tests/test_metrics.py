"""Metrics against values worked out by hand."""

from __future__ import annotations

import pytest

from glass_cli.metrics import binary_metrics, expected_calibration_error, group_metrics, tpr_at_fpr


def test_perfect_and_inverted_separation():
    y = [0, 0, 1, 1]
    m = binary_metrics(y, [0.1, 0.2, 0.8, 0.9])
    assert (m["accuracy"], m["balanced_accuracy"], m["auroc"], m["average_precision"]) == (1.0, 1.0, 1.0, 1.0)
    assert m["tpr_at_fpr_1"] == 1.0
    inv = binary_metrics(y, [0.9, 0.8, 0.2, 0.1])
    assert (inv["accuracy"], inv["auroc"], inv["tpr_at_fpr_5"]) == (0.0, 0.0, 0.0)


def test_ece_by_hand():
    # confidences 0.9, 0.9 (both right) and 0.6, 0.6 (one right): bins 0.9 and 0.6
    y = [1, 1, 1, 0]
    p = [0.9, 0.9, 0.6, 0.6]
    # bin 0.9: |1.0 - 0.9| * 2/4 ; bin 0.6: |0.5 - 0.6| * 2/4
    assert expected_calibration_error(y, p) == pytest.approx(0.05 + 0.05)
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == pytest.approx(0.0)


def test_tpr_at_fpr_by_hand():
    y = [0] * 10 + [1] * 4
    p = [0.1] * 9 + [0.7] + [0.95, 0.8, 0.6, 0.5]
    assert tpr_at_fpr(y, p, 0.0) == 0.5  # above 0.7 without any real
    assert tpr_at_fpr(y, p, 0.1) == 1.0  # the real at 0.7 may pass: threshold drops to just above 0.1
    assert tpr_at_fpr([1, 1], [0.2, 0.3], 0.05) is None


def test_one_class_sets_give_none_not_numbers():
    m = binary_metrics([1, 1, 1], [0.9, 0.4, 0.8])
    assert m["auroc"] is None and m["balanced_accuracy"] is None and m["fpr"] is None
    assert m["accuracy"] == pytest.approx(2 / 3) and m["tpr"] == pytest.approx(2 / 3)


def test_groups_compare_against_the_other_class():
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.6, 0.9, 0.3, 0.8]
    groups = ["cam", "cam", "sdxl", "flux", "sdxl"]
    g = group_metrics(y, p, groups)
    assert g["sdxl"] == {"n": 2, "label": "ai", "accuracy": 1.0, "mean_p_ai": pytest.approx(0.85), "auroc": 1.0}
    assert g["flux"]["auroc"] == 0.5  # 0.3 beats 0.1, loses to 0.6
    assert g["cam"]["label"] == "real" and g["cam"]["accuracy"] == 0.5
