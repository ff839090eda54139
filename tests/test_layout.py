"""Names other modules import from the places they always have: the split-up modules re-export
them, and each is the very object its new home defines."""

from __future__ import annotations

import importlib

import pytest

MOVED = {
    "glass_cli.training.trainer": {
        "glass_cli.training.errors": ["TrainError"],
        "glass_cli.training.state": ["check_resume_options", "load_run_config", "run_state", "STATE_FILE"],
        "glass_cli.training.schedule": ["lr_factor"],
        "glass_cli.training.runfiles": ["EpochResult", "run_dir"],
        "glass_cli.training.inputs": ["read_splits", "build_model"],
    },
    "glass_cli.evaluation.cv": {
        "glass_cli.evaluation.cv.run": ["run_cv", "CvResult", "FoldResult", "cv_root"],
        "glass_cli.evaluation.cv.options": ["CvOptions", "CvError", "FIGURE_FILE", "RESULT_FILE"],
        "glass_cli.evaluation.cv.calibration": ["calibrate_checkpoint", "calibration"],
        "glass_cli.evaluation.cv.folds": ["assign_folds", "group_of", "cap_per_group", "fold_samples", "write_manifest"],
        "glass_cli.evaluation.cv.scoring": ["conditions", "score_fold", "fold_numbers", "format_numbers", "size_keys"],
    },
    "glass_cli.tuning.study": {
        "glass_cli.tuning.options": ["METRIC_NAMES", "TuneError", "TuneOptions"],
        "glass_cli.tuning.objective": ["Objective"],
    },
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_import_paths_still_work(old):
    module = importlib.import_module(old)
    for new, names in MOVED[old].items():
        home = importlib.import_module(new)
        for name in names:
            assert getattr(module, name) is getattr(home, name), f"{old}.{name}"


def test_the_tune_table_keeps_its_old_entry_point():
    from glass_cli.tuning.study import best_table, run_study, summary_line

    assert callable(best_table) and callable(run_study) and callable(summary_line)
