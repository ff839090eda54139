"""glass tune on a real PostgreSQL server: two worker processes share one study, a worker
killed with SIGKILL has its trial retried by the other, and the result reads back through
optuna's API and optuna-dashboard.

The server: $GLASS_TEST_POSTGRES_URL (``.ci/run`` starts one), else one started here from
Debian's postgresql binaries (``tests.postgres``); without either the tests skip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from glass_cli.cli import app

from . import postgres
from .test_tune import ENV, SPACE, TINY_TUNE, _glass_cmd


@pytest.fixture(scope="module")
def postgres_url():
    url = os.environ.get("GLASS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if postgres.find_bindir() is None:
        pytest.skip("no PostgreSQL server: set GLASS_TEST_POSTGRES_URL or apt-get install postgresql")
    root = tempfile.mkdtemp(prefix="glass-pg-")  # not under pytest's 0700 folders: the server user must reach it
    try:
        yield postgres.start(root)
    finally:
        postgres.stop(root)
        subprocess.run(["rm", "-rf", root], check=False)


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps(SPACE))
    return path


def worker(data, runs, space, url, study, *extra) -> subprocess.Popen:
    argv = _glass_cmd("tune", str(data), *TINY_TUNE, "--space", str(space), "--runs-dir", str(runs),
                      "--storage", url, "--study", study, *extra)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def ran_here(stdout: str) -> int:
    line = next(x for x in stdout.splitlines() if x.startswith("study "))
    return int(line.split("; ")[1].split(" run by")[0])


@pytest.mark.slow
def test_two_workers_finish_one_study_and_it_reads_back(postgres_url, tiny_data, space_file, tmp_path):
    study = f"pg-{uuid.uuid4().hex[:8]}"
    procs = [worker(tiny_data, tmp_path / f"machine-{i}", space_file, postgres_url, study, "--n-trials", "4", "--epochs", "1")
             for i in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    s = optuna.load_study(study_name=study, storage=postgres_url)
    trials = s.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["worker"].rsplit(":", 1)[1] for t in trials} == {str(p.pid) for p in procs}
    assert sorted(ran_here(out) for out, _ in outs) in ([1, 3], [2, 2])
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4  # no trial drawn twice
    best = s.best_trial
    assert best.value == max(t.value for t in trials)
    for i, (out, _) in enumerate(outs):  # each machine's report names the same best trial
        config = json.loads((tmp_path / f"machine-{i}" / "tune" / study / "best-config.json").read_text())
        assert {k: config[k] for k in best.params} == pytest.approx(best.params)
        assert f"best: trial {best.number}, val accuracy {best.value:.4f}" in out

    with socket_port() as port:
        dashboard = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "optuna-dashboard"), postgres_url,
                                      "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        studies = http_json(f"http://127.0.0.1:{port}/api/studies", dashboard)["study_summaries"]
        study_id = next(x["study_id"] for x in studies if x["study_name"] == study)
        detail = http_json(f"http://127.0.0.1:{port}/api/studies/{study_id}", dashboard)
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
    assert len(detail["trials"]) == 4
    [shown] = detail["best_trials"]
    assert (shown["number"], shown["values"]) == (best.number, [best.value])
    assert {p["name"]: p["param_external_value"] for p in shown["params"]} == {k: str(v) for k, v in best.params.items()}


@pytest.mark.slow
def test_a_sigkilled_worker_has_its_trial_retried_by_the_other(postgres_url, tiny_data, space_file, tmp_path):
    """Two workers run concurrently; the first to be in the middle of a trial is SIGKILLed."""
    study = f"pg-kill-{uuid.uuid4().hex[:8]}"
    args = ("--n-trials", "3", "--epochs", "4", "--min-epochs", "4", "--stale-after", "3")
    # One storage (one connection pool) for all the polling: a new one per look would
    # open a connection each time and exhaust the server's max_connections. Made before the
    # workers start, so its tables exist and no two processes race to create them.
    storage = optuna.storages.RDBStorage(postgres_url)
    procs = [worker(tiny_data, tmp_path / "a", space_file, postgres_url, study, *args)]
    deadline = time.monotonic() + 400
    killed = doomed = None
    try:
        while time.monotonic() < deadline and killed is None:
            try:
                trials = optuna.load_study(study_name=study, storage=storage).get_trials()
            except Exception:  # the study is still being created
                trials = []
            if len(procs) == 1 and trials:  # the second worker joins the study the first created
                procs.append(worker(tiny_data, tmp_path / "b", space_file, postgres_url, study, *args))
            for t in trials:  # a trial after its first epoch, in either worker
                owner = next((p for p in procs if t.user_attrs.get("worker", "").endswith(f":{p.pid}")), None)
                if t.state == TrialState.RUNNING and t.intermediate_values and owner is not None and len(procs) == 2:
                    owner.send_signal(signal.SIGKILL)
                    killed, doomed = t, owner
                    break
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.1)
    finally:
        if killed is None:
            for p in procs:
                p.kill()
    for p in procs:
        if p is not doomed and killed is None:
            p.wait(timeout=30)
    assert killed is not None, "no worker was caught in the middle of a trial: " + " | ".join(
        (p.stderr.read() or "")[-1500:] for p in procs if p.poll() is not None)
    doomed.wait(timeout=30)
    survivor = next(p for p in procs if p is not doomed)
    out, err = survivor.communicate(timeout=400)
    assert survivor.returncode == 0, err[-3000:]
    assert f"trial {killed.number} lost its process (no heartbeat for 3s): queued again" in err
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    storage.engine.dispose()
    by_number = {t.number: t for t in trials}
    assert by_number[killed.number].state == TrialState.FAIL and "fail_reason" not in by_number[killed.number].user_attrs
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params and retries[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3 and len(trials) == 4  # every trial accounted for
    assert not any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)


def test_a_postgresql_storage_without_its_driver_is_one_line(runner, tiny_data, space_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    url = "postgresql://glass:secret@127.0.0.1:1/optuna"
    result = runner.invoke(app, ["tune", str(tiny_data), *TINY_TUNE, "--space", str(space_file), "--runs-dir", str(tmp_path),
                                 "--n-trials", "1", "--storage", url])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "glass: error: postgresql://glass:***@127.0.0.1:1/optuna: a postgresql:// study storage needs the postgres extra, which "
        "this install lacks (psycopg not found): pip install 'glass-cli[postgres]' (in a checkout: pip install -e '.[postgres]')"
    )


class socket_port:
    """A free TCP port on 127.0.0.1 (released on entry, for a server to bind)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc) -> None:
        pass


def http_json(url: str, server: subprocess.Popen, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except OSError:
            if server.poll() is not None:
                raise AssertionError(f"optuna-dashboard exited: {server.stderr.read()[-2000:]}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
