"""glass tune: a tiny study runs end to end, resumes after an interrupt, shares its storage
between processes, writes a config that glass train accepts, and refuses bad input."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from glass_cli.cli import app
from glass_cli.config import TrainConfig
from glass_cli.training import trainer as train_module
from glass_cli.tuning.space import PAPER_SPACES, Space, SpaceError

TINY_TUNE = ["--backbone", "test_efficientnet", "--crop-size", "32", "--no-pretrained", "--batch-size", "8", "--workers", "0"]
"""timm's tiny test network on 32-pixel views; --batch-size fixes an option the space searches."""

SPACE = {
    "lr_global": {"low": 1e-4, "high": 3e-3, "log": True},
    "lr_local": {"low": 1e-4, "high": 3e-3, "log": True},
    "lr_atten_class": {"low": 1e-4, "high": 3e-3, "log": True},
    "dropout": {"choices": [0.0, 0.2]},
    "num_crops": {"choices": [1, 2]},
    "batch_size": {"choices": [4, 8]},
    "warmup_epochs": 0,
}
SEARCHED = ["lr_global", "lr_local", "lr_atten_class", "dropout", "num_crops"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models train fastest on one thread, and stay out of the way of a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps(SPACE))
    return path


def tune_args(data, runs, space_file, *extra):
    return ["tune", str(data), *TINY_TUNE, "--space", str(space_file), "--runs-dir", str(runs), *extra]


def load(runs, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{runs / 'tune' / (name + '.db')}")


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_data, runner, space_file):
    """A finished 3-trial study of 2 epochs per trial: (runs folder, CliRunner result)."""
    runs = tmp_path_factory.mktemp("tune-runs")
    args = tune_args(tiny_data, runs, space_file, "--study", "tiny", "--n-trials", "3", "--epochs", "2", "--min-epochs", "1")
    return runs, runner.invoke(app, args)


def test_tiny_study_completes_and_writes_its_report(study):
    runs, result = study
    assert result.exit_code == 0, result.output
    out = runs / "tune" / "tiny"
    lines = result.stdout.splitlines()
    s = load(runs, "tiny")
    trials = s.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete, "a 3-trial study with 2 epochs each has at least one complete trial"
    for t in trials:
        assert sorted(t.params) == sorted(SEARCHED)  # batch_size fixed by the flag
        steps = sorted(t.intermediate_values)
        assert steps == list(range(1, len(steps) + 1)) and steps  # one report per epoch
        values = [t.intermediate_values[k] for k in steps]
        assert values == sorted(values)  # the best score so far
        assert t.user_attrs["epochs_run"] == len(steps)
    for t in complete:
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.value == max(t.intermediate_values.values())
    n_pruned = len(trials) - len(complete)
    parts = f"{len(complete)} complete" + (f", {n_pruned} pruned" if n_pruned else "")
    assert f"study tiny: 3 trials ({parts}); 3 run by this process" in lines
    assert "stopped: the study has 3 finished trials (target 3)" in lines
    best = s.best_trial
    assert f"best: trial {best.number}, val accuracy {best.value:.4f} (epoch {best.user_attrs['best_epoch']})" in lines
    assert f"best config: {out / 'best-config.json'}  (glass train --config {out / 'best-config.json'})" in lines
    assert "fixed by flags, not searched: batch_size=8" in result.stderr
    assert "best trials of study tiny" in result.stdout

    written = {p.name for p in out.iterdir()}
    expected = {"trials.csv", "best-config.json", "history.png", "trial-0000", "trial-0001", "trial-0002"}
    expected |= {"importance.png"} if len(complete) >= 2 else set()
    assert written == expected
    for png in expected & {"history.png", "importance.png"}:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if len(complete) < 2:
        assert f"importance plot skipped: it needs at least 2 completed trials (the study has {len(complete)})" in lines
    for t in trials:  # trial folders keep their record, not their checkpoints
        assert {p.name for p in (out / f"trial-{t.number:04d}").iterdir()} == {"config.json", "metrics.csv", "curves.png"}
        saved = TrainConfig.from_json((out / f"trial-{t.number:04d}" / "config.json").read_text())
        assert {k: getattr(saved, k) for k in t.params} == pytest.approx(t.params)
        assert (saved.batch_size, saved.warmup_epochs, saved.epochs, saved.select_metric) == (8, 0.0, 2, "accuracy")

    with open(out / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["number"]) for r in rows] == [0, 1, 2]
    assert [r["state"] for r in rows] == [("complete" if t.state == TrialState.COMPLETE else "pruned") for t in trials]
    assert list(rows[0])[:9] == ["number", "state", "value", "best_epoch", "epochs_run", "seconds", "retry_of", "worker", "reason"]


@pytest.mark.heavy
def test_metric_cv_runs_a_cross_validation_per_trial(runner, family_data, space_file, tmp_path):
    args = tune_args(family_data / "manifest.csv", tmp_path, space_file, "--study", "cvstudy", "--n-trials", "2", "--epochs", "1")
    result = runner.invoke(app, [*args, "--metric", "cv", "--cv-folds", "2", "--cv-real-sizes", "48", "--cv-group-by", "family"])
    assert result.exit_code == 0, result.output
    assert "data: 24 images from" in result.stderr and "2 leave-family-out folds per trial" in result.stderr
    assert "2-fold cross-validation of 1 epochs per fold each (Hyperband over folds), maximising cross-validated AUROC" in result.stderr
    s = load(tmp_path, "cvstudy")
    out = tmp_path / "tune" / "cvstudy"
    complete = [t for t in s.get_trials() if t.state == TrialState.COMPLETE]
    assert complete
    for t in complete:
        root = out / "cv" / f"trial-{t.number:04d}"
        doc = json.loads((root / "cv.json").read_text())
        assert doc["complete"] and doc["options"]["real_sizes"] == [48]
        assert t.value == pytest.approx(doc["objective"]["value"])
        assert sorted(t.intermediate_values) == [1, 2] and t.user_attrs["folds_run"] == 2
        assert t.intermediate_values[1] == pytest.approx(doc["folds"][0]["metrics"]["auroc_sizes_mean"])
        assert not list(root.rglob("*.safetensors"))  # checkpoints dropped, numbers kept
        assert (root / "fold-1" / "heldout.json").is_file() and (root / "fold-2" / "metrics.csv").is_file()
        saved = TrainConfig.from_json((root / "fold-1" / "config.json").read_text())
        assert {k: getattr(saved, k) for k in t.params} == pytest.approx(t.params)
    best = s.best_trial
    assert f"best: trial {best.number}, cross-validated AUROC {best.value:.4f} (mean of 2 folds)" in result.stdout.splitlines()
    again = runner.invoke(app, [*args, "--metric", "cv", "--cv-folds", "3", "--cv-real-sizes", "48", "--cv-group-by", "family"])
    assert again.exit_code == 2
    assert 'was created with cv.folds=2; this command has 3' in again.output
    no_family = runner.invoke(app, [*tune_args(tmp_path / "nofam.csv", tmp_path, space_file, "--n-trials", "1", "--metric", "cv", "--cv-group-by", "family")])
    assert no_family.exit_code == 2


def test_best_config_trains_unchanged(study, runner, tmp_path, monkeypatch):
    runs, _ = study
    best_file = runs / "tune" / "tiny" / "best-config.json"
    best = json.loads(best_file.read_text())
    trial = load(runs, "tiny").best_trial
    assert {k: best[k] for k in trial.params} == pytest.approx(trial.params)
    assert (best["name"], best["runs_dir"], best["batch_size"], best["warmup_epochs"]) == ("", str(runs), 8, 0.0)
    result = runner.invoke(app, ["train", "--config", str(best_file)])
    assert result.exit_code == 0, result.output
    run = result.stdout.splitlines()[0].removeprefix("run folder: ")
    assert run.startswith(str(runs / "glass-test_efficientnet-"))
    trained = json.loads((runs / os.path.basename(run) / "config.json").read_text())
    assert {k for k in best if best[k] != trained[k]} == {"name"}
    shutil.rmtree(run)


def test_rerun_of_a_finished_study_runs_nothing(study, runner, tiny_data, space_file):
    runs, _ = study
    args = tune_args(tiny_data, runs, space_file, "--study", "tiny", "--n-trials", "3", "--epochs", "2", "--min-epochs", "1")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "study tiny: 3 trials" in result.stdout and "; 0 run by this process\n" in result.stdout
    assert len(load(runs, "tiny").trials) == 3


def test_study_settings_must_match(study, runner, tiny_data, space_file):
    runs, _ = study
    result = runner.invoke(app, tune_args(tiny_data, runs, space_file, "--study", "tiny", "--n-trials", "5", "--epochs", "3", "--min-epochs", "1"))
    assert result.exit_code == 2
    url = f"sqlite:///{runs}/tune/tiny.db"
    assert result.stderr.strip().splitlines()[-1] == (
        f"glass: error: study tiny in {url} was created with epochs=2; this command has 3 (use the same settings, or another --study)"
    )


@pytest.mark.heavy
def test_interrupt_and_rerun_adds_trials_and_retries_the_interrupted_one(runner, tiny_data, space_file, tmp_path, monkeypatch):
    real_epoch = train_module.Trainer.train_epoch
    calls = []

    def interrupting(self):
        calls.append(self.config.name)
        if len(calls) == 2:  # the second trial's first epoch: "Ctrl-C"
            raise KeyboardInterrupt
        return real_epoch(self)

    args = tune_args(tiny_data, tmp_path, space_file, "--study", "kill", "--n-trials", "3", "--epochs", "1")
    monkeypatch.setattr(train_module.Trainer, "train_epoch", interrupting)
    first = runner.invoke(app, args)
    assert first.exit_code == 130, first.output
    assert first.stderr.strip().splitlines()[-1] == (
        "glass: error: interrupted; run the same command to continue the study (the interrupted trial is retried)"
    )
    s = load(tmp_path, "kill")
    assert [t.state for t in s.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert s.trials[1].user_attrs["interrupted"] is True
    assert s.trials[2].user_attrs == {"retry_of": 1, "attempt": 2}

    monkeypatch.setattr(train_module.Trainer, "train_epoch", real_epoch)
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "study kill: 4 trials (3 complete, 1 interrupted); 2 run by this process" in second.stdout.splitlines()
    assert "trial 2 (retry of 1): " in second.stderr
    s = load(tmp_path, "kill")
    assert [t.state for t in s.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert s.trials[2].params == s.trials[1].params  # the interrupted trial, run again
    fresh = [json.dumps(t.params, sort_keys=True) for t in s.trials if "retry_of" not in t.user_attrs]
    assert len(set(fresh)) == len(fresh) == 3  # the resumed process drew new parameters
    with open(tmp_path / "tune" / "kill" / "trials.csv", newline="") as f:
        rows = {int(r["number"]): r for r in csv.DictReader(f)}
    assert (rows[1]["state"], rows[1]["reason"], rows[2]["retry_of"]) == ("interrupted", "interrupted", "1")


class FakeTrainer:
    """Stands in for glass_cli.training.trainer.Trainer: scores fall with the trial number, and trials
    named in FAIL raise."""

    FAIL: set[str] = set()

    def __init__(self, config, *, resume=False, console=None):
        self.config, self.epoch = config, 0
        self.number = int(config.name.split("-")[1])

    @property
    def done(self):
        return self.epoch >= self.config.epochs

    def train_epoch(self):
        if self.config.name in self.FAIL or "*" in self.FAIL:
            raise RuntimeError("boom")
        self.epoch += 1
        return train_module.EpochResult(
            epoch=self.epoch, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=0.5, val_balanced_acc=0.5,
            val_auroc=None, val_ece=None, lr={}, seconds=0.0, score=0.5 + 0.04 * self.epoch / (1 + self.number),
        )

    def close(self):
        pass


@pytest.fixture
def fake_trainer(monkeypatch):
    monkeypatch.setattr(train_module, "Trainer", FakeTrainer)
    monkeypatch.setattr(FakeTrainer, "FAIL", set())
    return FakeTrainer


@pytest.mark.heavy
def test_hyperband_prunes_trials_that_fall_behind(fake_trainer, runner, tiny_data, space_file, tmp_path):
    result = runner.invoke(app, tune_args(tiny_data, tmp_path, space_file, "--n-trials", "12", "--epochs", "9", "--min-epochs", "1"))
    assert result.exit_code == 0, result.output
    trials = load(tmp_path, "glass-test_efficientnet").trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(max(t.intermediate_values) < 9 for t in pruned)
    assert all(sorted(t.intermediate_values) == list(range(1, 10)) for t in trials if t.state == TrialState.COMPLETE)
    for t in pruned:
        assert f"trial {t.number}: pruned after epoch {max(t.intermediate_values)}" in result.stderr


@pytest.mark.heavy
def test_failed_trials_are_recorded_and_the_study_goes_on(fake_trainer, runner, tiny_data, space_file, tmp_path):
    fake_trainer.FAIL = {"trial-0001"}
    result = runner.invoke(app, tune_args(tiny_data, tmp_path, space_file, "--n-trials", "3", "--epochs", "1"))
    assert result.exit_code == 0, result.output
    assert "study glass-test_efficientnet: 3 trials (2 complete, 1 failed); 3 run by this process" in result.stdout.splitlines()
    assert "trial 1: failed: RuntimeError: boom" in result.stderr
    trials = load(tmp_path, "glass-test_efficientnet").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].user_attrs["fail_reason"] == "RuntimeError: boom"


@pytest.mark.heavy
def test_repeated_failures_stop_the_process(fake_trainer, runner, tiny_data, space_file, tmp_path):
    fake_trainer.FAIL = {"*"}
    result = runner.invoke(app, tune_args(tiny_data, tmp_path, space_file, "--n-trials", "10", "--epochs", "1"))
    assert result.exit_code == 5, result.output
    lines = result.stdout.splitlines()
    assert lines == [
        "study glass-test_efficientnet: 3 trials (3 failed); 3 run by this process",
        "stopped: 3 trials in a row failed (last: RuntimeError: boom)",
        "no completed trial yet: no best config or plots",
        f"wrote {tmp_path / 'tune' / 'glass-test_efficientnet' / 'trials.csv'}",
    ]


# ---------------------------------------------------------------------------- spaces


def test_paper_spaces():
    glass, base = Space.paper("glass"), Space.paper("baseline")
    assert sorted(glass.params) == sorted(["batch_size", "dropout", "lr_global", "lr_local", "lr_atten_class", "wd_global", "wd_local", "num_crops"])
    assert glass.params["num_crops"].describe() == "{2, 4, 6, 8, 10}"
    assert glass.params["lr_atten_class"].describe() == "log [5e-06, 0.001]"
    assert base.params["batch_size"].describe() == "{32, 64, 128}"
    assert sorted(base.params) == ["batch_size", "dropout", "lr_global", "wd_global"]
    glass.check(TrainConfig())
    assert Space.from_dict(glass.to_dict(), "again").to_dict() == PAPER_SPACES["glass"]


def test_yaml_space_file_equals_json(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "space.yaml"
    path.write_text("lr_global: {low: 1.0e-5, high: 1.0e-3, log: true}\nnum_crops:\n  choices: [2, 4]\ndropout: 0.1\n")
    space = Space.load(path)
    assert space.to_dict() == {"dropout": 0.1, "lr_global": {"low": 1e-5, "high": 1e-3, "log": True}, "num_crops": {"choices": [2, 4]}}
    assert space.params["num_crops"].kind == "int" and space.fixed == {"dropout": 0.1}


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"lr_globl": {"low": 1e-5, "high": 1e-3}}', "unknown training option 'lr_globl'"),
        ('{"epochs": {"choices": [5, 10]}}', "epochs is set by --epochs (the pruner's budget), not by the search space"),
        ('{"lr_global": {"low": 1e-3, "high": 1e-5}}', "lr_global: low (0.001) must be below high (1e-05)"),
        ('{"lr_global": {"low": 0, "high": 1e-3, "log": true}}', "lr_global: a log range needs low > 0"),
        ('{"lr_global": {"lo": 0, "high": 1e-3}}', "lr_global: unknown key 'lo' (expected 'choices', or 'low' and 'high' with optional 'log' and 'step')"),
        ('{"num_crops": {"low": 1.5, "high": 4}}', "num_crops is an integer option: 'low', 'high' and 'step' must be whole numbers"),
        ('{"batch_size": {"choices": []}}', "batch_size: choices must be a non-empty list"),
        ('{"augment": {"low": 0, "high": 1}}', "augment is a bool option: give it 'choices', not a range"),
        ('{"dropout": {"choices": [0.1, 1.5]}}', "dropout: 1.5 is not a valid value (dropout must lie in [0, 1), got 1.5)"),
        ('{"dropout": 0.1}', "nothing to search: give at least one option 'choices' or a 'low'/'high' range"),
        ("[1, 2]", "a search space must be an object of option: spec"),
        ("{oops", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ],
)
def test_bad_space_files(runner, tmp_path, tiny_data, content, message):
    path = tmp_path / "space.json"
    path.write_text(content)
    result = runner.invoke(app, ["tune", str(tiny_data), "--n-trials", "1", "--space", str(path), "--runs-dir", str(tmp_path), *TINY_TUNE])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"glass: error: {path}: {message}"
    assert not (tmp_path / "tune").exists() or not any((tmp_path / "tune").glob("*.db"))


def test_bad_yaml_space_file(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "space.yml"
    path.write_text("lr_global: {low: 1e-5\n")
    with pytest.raises(SpaceError, match=rf"^{path}: not valid YAML at line 2 \("):
        Space.load(path)


def test_usage_errors(runner, tmp_path, tiny_data, space_file):
    missing = tmp_path / "missing"
    result = runner.invoke(app, ["tune", str(missing), "--n-trials", "1", "--runs-dir", str(tmp_path), *TINY_TUNE])
    assert (result.exit_code, result.stderr.strip().splitlines()[-1]) == (2, f"glass: error: {missing}: no such folder or manifest")
    result = runner.invoke(app, tune_args(tiny_data, tmp_path, space_file, "--n-trials", "1", "--study", "../x"))
    assert (result.exit_code, result.stderr.strip()) == (2, "glass: error: study name '../x': use letters, digits, '.', '_' and '-' only")
    result = runner.invoke(app, tune_args(tiny_data, tmp_path, space_file, "--n-trials", "1", "--epochs", "2", "--min-epochs", "3"))
    assert (result.exit_code, result.stderr.strip()) == (2, "glass: error: need 1 <= --min-epochs <= --epochs, got 3 and 2")
    result = runner.invoke(app, tune_args(tiny_data, tmp_path, space_file, "--n-trials", "1", "--storage", "nosuchdb://host/x"))
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("glass: error: nosuchdb://host/x: cannot open the study storage (")
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- many processes


def _glass_cmd(*args):
    glass = shutil.which("glass", path=os.path.dirname(sys.executable))
    return [glass, *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study(tiny_data, space_file, tmp_path):
    args = tune_args(tiny_data, tmp_path, space_file, "--study", "shared", "--n-trials", "6", "--epochs", "1")[:]
    procs = [subprocess.Popen(_glass_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    trials = load(tmp_path, "shared").trials
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    workers = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in trials}
    assert workers == {str(p.pid) for p in procs}  # both contributed
    ran = sorted(int(out.split("; ")[1].split(" run by")[0]) for out, _ in outs if "; " in out)
    assert sum(ran) == 6 and min(ran) >= 1


@pytest.mark.slow
def test_a_killed_process_leaves_a_trial_that_is_retried(runner, tiny_data, space_file, tmp_path):
    args = tune_args(tiny_data, tmp_path, space_file, "--study", "sigkill", "--n-trials", "2", "--epochs", "6", "--min-epochs", "6", "--stale-after", "3")
    proc = subprocess.Popen(_glass_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    db = tmp_path / "tune" / "sigkill.db"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # kill it in the middle of trial 0
            if db.exists():
                try:
                    trials = load(tmp_path, "sigkill").trials
                except Exception:  # the study is still being created
                    trials = []
                if trials and trials[0].state == TrialState.RUNNING and trials[0].intermediate_values:
                    break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert load(tmp_path, "sigkill").trials[0].state == TrialState.RUNNING
    killed = load(tmp_path, "sigkill").trials[0]

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trial 0 lost its process (no heartbeat for 3s): queued again" in result.stderr
    trials = load(tmp_path, "sigkill").trials
    assert trials[0].state == TrialState.FAIL and "fail_reason" not in trials[0].user_attrs
    retries = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(retries) == 1 and retries[0].params == killed.params and retries[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
