"""glass cv: fold assignment, a tiny 2-fold cross-validation end to end, resumption, errors."""

from __future__ import annotations

import csv
import json
import random
import shutil

import pytest

from glass_cli.cli import app
from glass_cli.data.datasets import Sample
from glass_cli.evaluation.cv.folds import assign_folds
from glass_cli.evaluation.cv.options import CvError, CvOptions
from glass_cli.evaluation.cv.run import run_cv
from glass_cli.io.digest import file_sha256
from glass_cli.metrics import auroc

from .conftest import FAKE_FAMILIES, REAL_FAMILIES, TINY_TRAIN

CV_ARGS = ["--folds", "2", "--epochs", "1", "--real-sizes", "64,48", "--group-by", "family", "--webp", "0", *TINY_TRAIN]


def samples_of(sizes: dict[str, tuple[int, int]]) -> list[Sample]:
    out = []
    for family, (real, fake) in sizes.items():
        out += [Sample(f"/x/{family}/r{i}.png", 0, family=family) for i in range(real)]
        out += [Sample(f"/x/{family}/f{i}.png", 1, family=family) for i in range(fake)]
    return out


SIZES = {
    "urban": (100, 0), "canon": (47, 0), "fuji": (24, 0), "nikon": (17, 0), "kodak": (14, 0), "olympus": (9, 0), "hp": (2, 0),
    "sdxl-ft": (0, 99), "flux-d": (0, 72), "hunyuan": (0, 36), "flux1": (0, 27), "kandinsky": (0, 27), "sana": (0, 18),
    "sd3": (0, 18), "kolors": (0, 9), "mixed": (5, 5),
}


@pytest.mark.parametrize("n", [2, 3, 4])
def test_every_family_in_exactly_one_fold_balanced_and_order_free(n):
    samples = samples_of(SIZES)
    folds = assign_folds(samples, n)
    assert [f.index for f in folds] == list(range(1, n + 1))
    placed = [fam for f in folds for fam in f.families]
    assert sorted(placed) == sorted(SIZES)  # each family once, none left out
    for cls in (0, 1):
        per_fold = [sum(SIZES[fam][cls] for fam in f.families if not (SIZES[fam][0] and SIZES[fam][1])) for f in folds]
        largest = max(SIZES[fam][cls] for fam in SIZES if not (SIZES[fam][0] and SIZES[fam][1]))
        assert max(per_fold) - min(per_fold) <= largest
    assert sum(f.real for f in folds) == sum(r for r, _ in SIZES.values())
    assert sum(f.fake for f in folds) == sum(f for _, f in SIZES.values())
    shuffled = samples[:]
    random.Random(7).shuffle(shuffled)
    assert assign_folds(shuffled, n) == folds


def test_largest_families_spread_first():
    folds = assign_folds(samples_of(SIZES), 3)
    # reals: urban 100 | canon 47 | fuji 24 + nikon 17 + ... ; fakes: sdxl-ft | flux-d | hunyuan ...
    assert {"urban", "sdxl-ft"} <= set(folds[0].families)
    assert {"canon", "flux-d"} <= set(folds[1].families)
    assert {"fuji", "hunyuan"} <= set(folds[2].families)


def test_fold_errors():
    with pytest.raises(CvError, match=r"^data: 9 folds need at least 9 real and 9 fake groups \(family\); found 8 real and 9 fake$"):
        assign_folds(samples_of(SIZES), 9)  # "mixed" counts on both sides
    small = samples_of({"a": (3, 0), "b": (0, 3), "c": (0, 2)})
    with pytest.raises(CvError, match=r"^m.csv: 2 folds need at least 2 real and 2 fake groups \(family\); found 1 real and 2 fake$"):
        assign_folds(small, 2, "m.csv")
    with pytest.raises(CvError, match="^m.csv: 1 of 9 images have an empty 'family'; every image needs one$"):
        assign_folds([*small, Sample("/x/y.png", 0)], 2, "m.csv")
    with pytest.raises(CvError, match="--folds must be at least 2, got 1"):
        CvOptions(folds=1)


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory, family_data, runner):
    runs = tmp_path_factory.mktemp("cvruns")
    result = runner.invoke(app, ["cv", str(family_data / "manifest.csv"), "--name", "tiny", "--runs-dir", str(runs), *CV_ARGS])
    return runs / "cv" / "tiny", result


def test_cv_end_to_end(cv_run, family_data):
    root, result = cv_run
    assert result.exit_code == 0, result.output
    doc = json.loads((root / "cv.json").read_text())
    assert doc["complete"] is True and doc["name"] == "tiny" and len(doc["folds"]) == 2
    assert [c["key"] for c in doc["conditions"]] == ["native", "long64", "long48", "jpeg75", "down0.5"]
    assert (root / "cv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    held = [fam for f in doc["folds"] for fam in f["fold"]["families"]]
    assert sorted(held) == sorted(REAL_FAMILIES + FAKE_FAMILIES)
    assert sorted(fam for f in doc["folds"] for fam in f["real_sources"]) == sorted(REAL_FAMILIES)
    assert sorted(fam for f in doc["folds"] for fam in f["fake_families"]) == sorted(FAKE_FAMILIES)

    objectives = []
    for i in (1, 2):
        fold = json.loads((root / f"fold-{i}" / "heldout.json").read_text())
        rows = list(csv.DictReader(open(root / f"fold-{i}.csv")))
        assert len(rows) == 24 and all(r["path"].startswith("/") for r in rows)
        heldout = {r["path"] for r in rows if r["split"] == "heldout"}
        assert heldout == {r["path"] for r in rows if r["family"] in fold["fold"]["families"]}
        assert {f["path"] for f in fold["files"]} == heldout
        assert fold["train"]["real"] + fold["train"]["fake"] == 24 - len(heldout)
        # every number comes from the per-file scores
        files = fold["files"]
        m = fold["metrics"]
        assert m["auroc_native"] == pytest.approx(auroc([f["label"] for f in files], [f["p_ai"]["native"] for f in files]))
        at48 = [f["p_ai"]["native" if f["label"] else "long48"] for f in files]
        assert m["auroc_long48"] == pytest.approx(auroc([f["label"] for f in files], at48))
        assert m["auroc_sizes_mean"] == pytest.approx((m["auroc_native"] + m["auroc_long64"] + m["auroc_long48"]) / 3)
        assert all("long64" not in f["p_ai"] for f in files if f["label"] == 1)  # fakes only as stored at sizes
        reals = [f for f in files if f["label"] == 0]
        assert m["fpr_native"] == sum(f["p_ai"]["native"] >= 0.5 for f in reals) / len(reals)
        for fam, g in fold["real_sources"].items():
            mine = [f for f in reals if f["family"] == fam]
            assert g["n"] == len(mine) and g["native"] == sum(f["p_ai"]["native"] >= 0.5 for f in mine) / len(mine)
        objectives.append(m["auroc_sizes_mean"])
    assert doc["objective"] == {"name": "auroc_sizes_mean", "value": pytest.approx(sum(objectives) / 2)}
    s = doc["summary"]["auroc_native"]
    assert s["n"] == 2 and s["mean"] == pytest.approx((doc["folds"][0]["metrics"]["auroc_native"] + doc["folds"][1]["metrics"]["auroc_native"]) / 2)
    assert "leave-family-out cross-validation, 2 of 2 folds" in result.stdout
    assert "Held-out real sources" in result.stdout and "Held-out fake families" in result.stdout
    assert f"objective (mean over folds of the AUROC averaged over native, long64, long48): {doc['objective']['value']:.4f}" in result.stdout


def test_leave_family_out_threshold_is_judged_on_folds_it_never_saw():
    from glass_cli.evaluation.cv.calibration import calibration
    from glass_cli.evaluation.cv.folds import Fold, FoldResult

    def fold(index, reals, fakes):
        files = [{"path": f"/r{index}-{i}", "label": 0, "family": fam, "p_ai": {"native": p, "long32": p}} for i, (fam, p) in enumerate(reals)]
        files += [{"path": f"/f{index}-{i}", "label": 1, "family": "gen", "p_ai": {"native": p}} for i, p in enumerate(fakes)]
        return FoldResult(Fold(index, ("x",), len(reals), len(fakes)), {}, {}, {}, 0.5, "m", "c", (0, 0), 0.0, 0.0, files=files)

    a = fold(1, [("cam-a", 0.1), ("cam-a", 0.2), ("cam-b", 0.3), ("cam-b", 0.9)], [0.8, 0.95])
    b = fold(2, [("cam-c", 0.05), ("cam-c", 0.15), ("cam-c", 0.25), ("cam-c", 0.35)], [0.3, 0.6])
    cal = calibration([a, b], CvOptions(folds=2, real_sizes=(32,), target_fpr=0.25))
    # 16 real scores (8 reals x 2 sizes), 4 may be flagged: just above the 5th highest (0.9, 0.9, 0.35, 0.35, 0.3)
    assert cal["reals"] == 16 and 0.3 < cal["threshold"] < 0.3000001
    first, second = cal["nested"]
    assert 0.25 < first["threshold"] < 0.2500001  # fold 2's 8 scores alone, 2 may be flagged: above the 3rd highest
    assert first["metrics"]["fpr_native"] == 0.5 and first["metrics"]["tpr_native"] == 1.0
    assert first["real_sources"]["cam-b"]["native"] == 1.0 and first["real_sources"]["cam-a"]["native"] == 0.0
    assert 0.3 < second["threshold"] < 0.3000001  # fold 1's scores alone
    assert second["metrics"]["fpr_native"] == 0.25 and second["metrics"]["tpr_native"] == 0.5
    assert cal["worst_source"]["native"] == {"source": "cam-b", "n": 2, "fold": 1, "fpr": 1.0}
    assert cal["worst_source_sized"] == {}  # no source holds 5 images
    assert calibration([a], CvOptions(folds=2)) is None


def test_calibrate_writes_a_copy_with_the_leave_family_out_threshold(cv_run, family_data, tiny_data, runner, tmp_path):
    from glass_cli.models import checkpoint

    root, _ = cv_run
    runs = root.parent.parent
    doc = json.loads((root / "cv.json").read_text())
    cal = doc["calibration"]
    assert [n["fold"] for n in cal["nested"]] == [1, 2] and cal["complete"] and cal["target_fpr"] == 0.05
    out = tmp_path / "calibrated"
    args = ["cv", str(family_data / "manifest.csv"), "--name", "tiny", "--runs-dir", str(runs), *CV_ARGS]
    result = runner.invoke(app, [*args, "--calibrate", str(root / "fold-1" / "last.safetensors"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"threshold {cal['threshold']:.6g} (leave-family-out, target FPR 0.05) written to {out}.safetensors"
    assert "Leave-family-out threshold for 0.05 FPR" in result.stdout
    _, config = checkpoint.load(f"{out}.safetensors")
    assert config.threshold == cal["threshold"]
    assert config.calibration["method"] == "leave-family-out cross-validation" and config.calibration["folds"] == 2

    baseline = runner.invoke(app, ["train", str(tiny_data), "--baseline", "--name", "b", "--runs-dir", str(tmp_path), "--epochs", "1", *TINY_TRAIN])
    assert baseline.exit_code == 0, baseline.output
    wrong = runner.invoke(app, [*args, "--calibrate", str(tmp_path / "b" / "last.safetensors")])
    assert wrong.exit_code == 2
    assert wrong.output.strip().splitlines()[-1] == (
        f"glass: error: {tmp_path / 'b' / 'last.safetensors'}: model is baseline test_efficientnet S=32, the cross-validation trained "
        "glass test_efficientnet K=2 S=32; calibrate a model of the same recipe"
    )
    missing = runner.invoke(app, [*args, "--calibrate", str(tmp_path / "none.safetensors")])
    assert missing.exit_code == 2 and "none.safetensors: no such checkpoint (--calibrate)" in missing.output


def test_record_prints_a_saved_cross_validation_and_calibrates_from_it(cv_run, runner, tmp_path):
    """glass cv --record: the tables and threshold of a kept cv.json, no fold runs needed."""
    from glass_cli.models import checkpoint

    root, _ = cv_run
    doc = json.loads((root / "cv.json").read_text())
    record = tmp_path / "kept" / "cv-tiny.json"  # a copy away from the runs, as docs/experiments keeps them
    record.parent.mkdir()
    shutil.copy(root / "cv.json", record)
    weights = tmp_path / "full"
    shutil.copytree(root / "fold-1", weights)  # stands for the model trained on all the data
    out = tmp_path / "calibrated"
    result = runner.invoke(app, ["cv", "--record", str(record), "--calibrate", str(weights / "last.safetensors"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-2] == f"objective (mean over folds of the AUROC averaged over native, long64, long48): {doc['objective']['value']:.4f}"
    assert lines[-1] == f"threshold {doc['calibration']['threshold']:.6g} (leave-family-out, target FPR 0.05) written to {out}.safetensors"
    assert "Leave-family-out threshold for 0.05 FPR" in result.stdout
    _, config = checkpoint.load(f"{out}.safetensors")
    assert config.threshold == doc["calibration"]["threshold"]
    assert config.calibration["cv"] == {"name": "cv-tiny.json", "sha256": file_sha256(record)} and config.calibration["folds"] == 2
    assert str(tmp_path) not in json.dumps(config.calibration)  # names and digests, no folder of this machine
    assert config.calibration["method"] == "leave-family-out cross-validation"

    shown = runner.invoke(app, ["cv", "--record", str(record)])  # tables only, nothing written
    assert shown.exit_code == 0 and shown.stdout.splitlines()[-1] == lines[-2]

    run_config = json.loads((weights / "config.json").read_text())
    (weights / "config.json").write_text(json.dumps({**run_config, "epochs": 3}))
    other = runner.invoke(app, ["cv", "--record", str(record), "--calibrate", str(weights / "last.safetensors"), "-o", str(out)])
    assert other.exit_code == 2
    assert other.stderr == (f"glass: error: {weights / 'last.safetensors'}: trained with epochs=3, the cross-validation with "
                            "epochs=1; calibrate a model of the same recipe\n")


def test_record_errors(cv_run, family_data, runner, tmp_path):
    root, _ = cv_run
    both = runner.invoke(app, ["cv", str(family_data / "manifest.csv"), "--record", str(root / "cv.json")])
    assert both.exit_code == 2 and both.stderr == "glass: error: cv: --record reads a finished cross-validation; give no DATA with it\n"
    neither = runner.invoke(app, ["cv"])
    assert neither.exit_code == 2 and neither.stderr == "glass: error: cv: give the manifests to cross-validate (DATA), or --record CV_JSON\n"
    missing = runner.invoke(app, ["cv", "--record", str(tmp_path / "none.json")])
    assert missing.exit_code == 2
    assert missing.stderr == f"glass: error: {tmp_path / 'none.json'}: cannot read the cross-validation record (No such file or directory)\n"
    plan = runner.invoke(app, ["cv", "--record", str(root / "plan.json")])  # JSON, but not results
    assert plan.exit_code == 2 and plan.stderr == f"glass: error: {root / 'plan.json'}: not a glass cv record (cv.json, format glass-cv/1)\n"
    doc = json.loads((root / "cv.json").read_text())
    part = tmp_path / "part.json"
    part.write_text(json.dumps({**doc, "complete": False, "folds": doc["folds"][:1]}))
    weights = root / "fold-1" / "last.safetensors"
    incomplete = runner.invoke(app, ["cv", "--record", str(part), "--calibrate", str(weights)])
    assert incomplete.exit_code == 2
    assert incomplete.stderr == f"glass: error: {part}: the cross-validation it records is not complete; --calibrate needs every fold scored\n"
    absent = runner.invoke(app, ["cv", "--record", str(root / "cv.json"), "--calibrate", str(tmp_path / "none.safetensors")])
    assert absent.exit_code == 2 and absent.stderr == f"glass: error: {tmp_path / 'none.safetensors'}: no such checkpoint (--calibrate)\n"


def test_scores_equal_scan_scores(cv_run, runner):
    root, _ = cv_run
    fold = json.loads((root / "fold-1" / "heldout.json").read_text())
    picked = fold["files"][:3]
    # cv scores in fp32 (the plain ONNX scan's arithmetic) also where the torch engine's auto is bf16
    result = runner.invoke(app, ["scan", *[f["path"] for f in picked], "--weights", str(root / "fold-1" / "last.safetensors"), "--json", "-",
                                 "--min-side", "1", "--engine", "torch", "--precision", "fp32"])
    scanned = {f["path"]: f["p_ai"] for f in json.loads(result.stdout)["files"]}
    # equal up to float rounding: oneDNN results can depend on how files are batched together
    assert all(scanned[f["path"]] == pytest.approx(f["p_ai"]["native"], abs=1e-6) for f in picked)


def test_rerun_skips_finished_folds_and_rescores_unscored_ones(cv_run, family_data, runner):
    root, first = cv_run
    runs = root.parent.parent
    weights = [root / f"fold-{i}" / "last.safetensors" for i in (1, 2)]
    stamps = [w.stat().st_mtime_ns for w in weights]
    before = json.loads((root / "cv.json").read_text())
    again = runner.invoke(app, ["cv", str(family_data / "manifest.csv"), "--name", "tiny", "--runs-dir", str(runs), *CV_ARGS])
    assert again.exit_code == 0, again.output
    assert f"fold 1/2: already scored ({root / 'fold-1' / 'heldout.json'})" in again.stderr
    assert "fold 2/2: already scored" in again.stderr
    assert json.loads((root / "cv.json").read_text())["summary"] == before["summary"]

    (root / "fold-2" / "heldout.json").unlink()
    seen = []
    config = _tiny_config(family_data, runs)
    result = run_cv(config, CvOptions(folds=2, real_sizes=(64, 48), group_by="family", webp=0), on_fold=seen.append)
    assert [f.fold.index for f in seen] == [1, 2]
    assert [w.stat().st_mtime_ns for w in weights] == stamps  # scored again, never retrained
    assert result.to_dict()["summary"] == before["summary"] and result.objective == before["objective"]["value"]


def _tiny_config(data, runs):
    from glass_cli.config import TrainConfig

    return TrainConfig(
        data=str(data / "manifest.csv"), name="tiny", runs_dir=str(runs), global_backbone="test_efficientnet", crop_size=32,
        num_crops=2, pretrained=False, batch_size=8, lr_global=1e-3, lr_local=1e-3, lr_atten_class=1e-3, epochs=1, quiet=True,
    )


def test_a_changed_recipe_needs_another_name(cv_run, family_data, runner):
    root, _ = cv_run
    result = runner.invoke(
        app, ["cv", str(family_data / "manifest.csv"), "--name", "tiny", "--runs-dir", str(root.parent.parent), *CV_ARGS, "--seed", "5"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"glass: error: {root}: this cross-validation was started with config seed=0; this run asks for 5; "
        "choose another --name to start a new one"
    )


def test_fold_killed_before_its_first_epoch_starts_over(cv_run, family_data):
    root, _ = cv_run
    fold1 = root / "fold-1" / "last.safetensors"
    stamp = fold1.stat().st_mtime_ns
    shutil.rmtree(root / "fold-2")
    (root / "fold-2").mkdir()
    (root / "fold-2" / "config.json").write_text("{}")  # what a run killed during its first epoch leaves
    result = run_cv(_tiny_config(family_data, root.parent.parent), CvOptions(folds=2, real_sizes=(64, 48), group_by="family", webp=0))
    assert result.complete and (root / "fold-2" / "heldout.json").is_file() and (root / "fold-2" / "resume.safetensors").is_file()
    assert fold1.stat().st_mtime_ns == stamp


def test_data_without_families(runner, tiny_data, tmp_path):
    result = runner.invoke(app, ["cv", str(tiny_data), "--runs-dir", str(tmp_path), *CV_ARGS])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"glass: error: {tiny_data}: no 'family' column (leave-family-out cross-validation needs a manifest .csv "
        "naming each image's family, e.g. sdxl, camera-canon)"
    )
    assert not (tmp_path / "cv").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--folds", "4"], "{m}: 4 folds need at least 4 real and 4 fake groups (family); found 3 real and 4 fake"),
        (["--real-sizes", "512,512"], "--real-sizes must be distinct long sides of at least 8 pixels, got [512, 512]"),
        (["--downscale", "1.0"], "--downscale must be a factor in (0, 1), got 1.0"),
    ],
)
def test_cv_option_errors(runner, family_data, tmp_path, args, message):
    m = family_data / "manifest.csv"
    result = runner.invoke(app, ["cv", str(m), "--runs-dir", str(tmp_path), *CV_ARGS, *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == "glass: error: " + message.format(m=m)


def test_cv_compare_recalibrates_a_finished_cross_validation(cv_run, tmp_path):
    """bench/cv_compare.py at another target FPR computes the threshold from the folds' scores."""
    import subprocess
    import sys
    from pathlib import Path

    from glass_cli.evaluation.cv.calibration import calibration
    from glass_cli.evaluation.cv.folds import FoldResult
    from glass_cli.evaluation.cv.options import FOLD_FILE, CvOptions

    root, _ = cv_run
    script = Path(__file__).resolve().parents[1] / "bench" / "cv_compare.py"
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(script), str(root), "--target-fpr", "0.25", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(out.read_text())[0]
    saved = json.loads((root / "cv.json").read_text())
    folds = [FoldResult.from_dict(json.loads((root / f"fold-{f['fold']['index']}" / FOLD_FILE).read_text())) for f in saved["folds"]]
    options = CvOptions(**{**saved["options"], "real_sizes": tuple(saved["options"]["real_sizes"])}, target_fpr=0.25)
    assert row["calibration"] == json.loads(json.dumps(calibration(folds, options)))
    assert row["calibration"]["target_fpr"] == 0.25 and row["summary"] == saved["summary"]


def test_only_fold_runs_some_folds_now_and_joins_folds_scored_elsewhere(cv_run, family_data, runner, tmp_path):
    """A fold scored on another machine is carried by its plan.json and heldout.json alone
    (no checkpoint); --only-fold reports it, trains nothing else, then finishes the rest."""
    root, _ = cv_run
    here = tmp_path / "cv" / "tiny"
    (here / "fold-1").mkdir(parents=True)
    shutil.copy(root / "plan.json", here / "plan.json")
    shutil.copy(root / "fold-1" / "heldout.json", here / "fold-1" / "heldout.json")
    args = ["cv", str(family_data / "manifest.csv"), "--name", "tiny", "--runs-dir", str(tmp_path), *CV_ARGS]

    first = runner.invoke(app, [*args, "--only-fold", "1"])
    assert first.exit_code == 0, first.output
    assert f"fold 1/2: already scored ({here / 'fold-1' / 'heldout.json'})" in first.stderr
    assert "fold 2/2: not scored yet, left for later (--only-fold)" in first.stderr
    assert "1 of 2 folds scored; fold 2 left: run the same command again (without --only-fold, or naming them) to finish" in first.stdout
    assert "leave-family-out cross-validation, 1 of 2 folds" in first.stdout
    assert not (here / "fold-2").exists() and not (here / "fold-2.csv").exists()
    doc = json.loads((here / "cv.json").read_text())
    assert doc["complete"] is False and [f["fold"]["index"] for f in doc["folds"]] == [1] and doc["calibration"] is None
    calibrate = runner.invoke(app, [*args, "--only-fold", "1", "--calibrate", str(root / "fold-1" / "last.safetensors"), "-o", str(tmp_path / "m")])
    assert calibrate.exit_code == 2
    assert calibrate.stderr.strip().endswith(f"glass: error: {here}: --calibrate needs every fold scored (1 of 2 are)")

    second = runner.invoke(app, [*args, "--only-fold", "2"])
    assert second.exit_code == 0, second.output
    assert "fold 1/2: already scored" in second.stderr and "folds scored;" not in second.stdout
    joined, original = json.loads((here / "cv.json").read_text()), json.loads((root / "cv.json").read_text())
    assert joined["complete"] is True and joined["folds"][0]["metrics"] == original["folds"][0]["metrics"]
    assert (here / "fold-2" / "last.safetensors").is_file() and not (here / "fold-1" / "last.safetensors").exists()


def test_only_fold_out_of_range(runner, family_data, tmp_path):
    result = runner.invoke(app, ["cv", str(family_data / "manifest.csv"), "--runs-dir", str(tmp_path), *CV_ARGS, "--only-fold", "3"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "glass: error: --only-fold 3: the folds are numbered 1 to 2"
    assert not (tmp_path / "cv").exists()
