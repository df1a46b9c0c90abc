"""Optuna sweeps: search spaces, the study on SQLite and PostgreSQL, workers that die, the re-run."""
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.bench import runner, sweep
from mmgraph.errors import ConfigError
from mmgraph.paths import config_dir
from tests.postgres import postgres_url  # noqa: F401  (fixture)

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=300", "dataset.loader.num_edges=2000",
         "dataset.loader.text_dim=16", "dataset.loader.image_dim=16", "trainer=fast", "trainer.max_epochs=30",
         "trainer.progress=false"]
# Longer trials for the tests that kill a process in the middle of one.
SLOW = ["trainer.max_epochs=150", "trainer.patience=null", "sweep.pruner.kind=none",
        "+sweep.params.model.module.hidden_channels={choices: [16, 32]}"]


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def sweep_args(folder, trials=4, final=2, *extra):
    return ["model=gcn", "sweep=gnn", *SMALL, f"sweep.dir={folder}", f"sweep.trials={trials}",
            f"sweep.final_seeds={final}", "sweep.poll=0.5", *extra]


def cli(args, tmp_path, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "mmgraph.bench", *args, f"hydra.run.dir={tmp_path / 'hydra'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def load(folder, storage=None):
    info = json.loads((folder / "study.json").read_text()) if (folder / "study.json").is_file() else {}
    url = storage or f"sqlite:///{folder / 'study.db'}"
    name = info.get("study_name") or optuna.get_all_study_names(url)[0]
    return optuna.load_study(study_name=name, storage=url)


def states(study):
    out = {}
    for t in study.get_trials():
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def finished(study):
    c = states(study)
    return c.get("COMPLETE", 0) + c.get("PRUNED", 0)


def catch_running_trial(folder, proc, whole_group=False, min_complete=1, min_steps=3, timeout=420):
    """Poll the study until a trial is running with some intermediate values after `min_complete`
    completed ones, then freeze the process that runs it (SIGSTOP; its whole process group when
    `whole_group`) and confirm from the study that the trial is still running. The caller's SIGKILL
    then lands in the middle of that trial however fast or loaded the machine is. Returns the trial
    and the completed trials (number -> value) at that moment."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {proc.returncode}) before a trial could be caught: "
                                 f"{proc.stderr.read()[-2000:]}")
        if not (folder / "study.db").exists():
            continue
        try:
            trials = load(folder).get_trials()
        except Exception:  # not created yet / locked for a moment
            continue
        done = {t.number: t.value for t in trials if t.state.name == "COMPLETE"}
        running = [t for t in trials if t.state.name == "RUNNING"
                   and len(t.intermediate_values) >= min_steps and "pid" in t.user_attrs]
        if len(done) < min_complete or not running:
            continue
        trial = running[0]
        pid = proc.pid if whole_group else trial.user_attrs["pid"]
        (os.killpg if whole_group else os.kill)(pid, signal.SIGSTOP)
        try:
            now = {t.number: t for t in load(folder).get_trials()}
        except Exception:  # stopped while holding the database lock: let it go on and look again
            now = {}
        if trial.number in now and now[trial.number].state.name == "RUNNING":
            return trial, {n: t.value for n, t in now.items() if t.state.name == "COMPLETE"}
        (os.killpg if whole_group else os.kill)(pid, signal.SIGCONT)
    raise AssertionError(f"no running trial with {min_steps}+ intermediate values after {min_complete} "
                         f"completed ones within {timeout} s")


# ------------------------------------------------------------------------------- search spaces
def test_search_spaces_parse_and_apply():
    cfg = compose_cfg("model=gat", "sweep=gat", *SMALL)
    params = {p.key: p for p in sweep.parse_space(cfg.sweep.params, cfg)}
    assert params["trainer.lr"].kind == "float" and params["trainer.lr"].log
    assert params["model.module.num_layers"].kind == "int"
    assert params["model.module.heads"].kind == "categorical"
    for hidden in params["model.module.hidden_channels"].choices:  # every width fits every head count
        assert all(hidden % h == 0 for h in params["model.module.heads"].choices)
    new = sweep.apply_params(cfg, {"trainer.lr": 0.0123, "model.module.heads": 1})
    assert new.trainer.lr == 0.0123 and new.model.module.heads == 1 and cfg.model.module.heads == 3


@pytest.mark.parametrize("space, models", [("gnn", ["mlp", "gcn", "sage", "jknet", "rgcn", "hgt"]),
                                           ("gat", ["gat", "gatv2"]), ("appnp", ["appnp"]),
                                           ("gcnii", ["gcnii"]), ("sgc", ["sgc"])])
def test_every_space_fits_its_models(space, models):
    for model in models:
        cfg = compose_cfg(f"model={model}", f"sweep={space}", *SMALL)
        assert sweep.settings_of(cfg).params, (space, model)


@pytest.mark.parametrize("override, message", [
    ("+sweep.params.dataset.loader.num_nodes={low: 10, high: 20}", "cannot be searched"),
    ("+sweep.params.model.module.widthx={low: 1, high: 2}", "is not a key of the configuration; keys of model.module"),
    ("+sweep.params.trainer.lr={low: 0.1, high: 0.01, log: true}", "need 0 < low < high"),
    ("+sweep.params.trainer.lr={choices: []}", "choices is empty"),
    ("+sweep.params.trainer.lr={low: 0.1}", "give low and high"),
    ("+sweep.params.trainer.lr={low: 0.001, high: 0.1, scale: 2}", "unknown field(s) scale"),
    ("sweep.trials=0", "sweep.trials and sweep.workers must be >= 1"),
    ("sweep.pruner.kind=sometimes", "sweep.pruner.kind must be"),
])
def test_bad_sweep_configs_are_one_line_errors(override, message, tmp_path):
    cfg = compose_cfg(*sweep_args(tmp_path), override)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings = sweep.settings_of(cfg)
        sweep.open_study(cfg, settings)


# ------------------------------------------------------------------------------- in one process
def test_sweep_then_rerun_of_the_best_config(tmp_path, monkeypatch):
    # a clean checkout, so that the re-run may keep seeds it stored before (see runner._reusable)
    monkeypatch.setattr(runner, "git_state", lambda: {"commit": "0" * 40, "dirty": False})
    folder = tmp_path / "sweep"
    cfg = compose_cfg(*sweep_args(folder, trials=4, final=2))
    row = sweep.run_sweep(cfg)
    study = load(folder)
    assert finished(study) == 4 and "RUNNING" not in states(study)
    for t in study.get_trials():  # a trial keeps validation values only
        assert set(t.user_attrs) >= {"val", "epochs", "seconds", "pid", "host"}
        assert not any("test" in k for k in t.user_attrs) and set(t.user_attrs["val"]) == {"accuracy", "macro_f1"}
    best = study.best_trial
    assert row["runs"] == 2 and row["seeds"] == [42, 43]
    assert row["sweep"]["best_trial"] == best.number and row["sweep"]["best_params"] == best.params
    records = [json.loads((folder / "final" / "runs" / f"seed_{s}.json").read_text()) for s in (42, 43)]
    for rec in records:  # the re-run trains the best trial's configuration
        assert rec["config"]["trainer"]["lr"] == best.params["trainer.lr"]
        assert rec["config"]["model"]["module"]["hidden_channels"] == best.params["model.module.hidden_channels"]
        assert rec["config"]["sweep"]["best_trial"] == best.number
    info = json.loads((folder / "study.json").read_text())
    assert info["storage"] == "sqlite:///study.db" and info["best"]["number"] == best.number
    assert info["states"] == states(study) and info["metric"] == "val/accuracy"
    saved = json.loads((folder / "final" / "summary.json").read_text())
    assert saved["sweep"]["study_name"] == info["study_name"]

    # The same command again: no new trial, and the re-run keeps its stored seeds.
    stamps = {p: p.stat().st_mtime_ns for p in (folder / "final" / "runs").glob("*.json")}
    again = sweep.run_sweep(compose_cfg(*sweep_args(folder, trials=4, final=2)))
    assert len(load(folder).get_trials()) == len(study.get_trials())
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["summary"]["test/accuracy"] == row["summary"]["test/accuracy"]

    # A different base configuration may not join this study.
    with pytest.raises(ConfigError, match=r"made by another configuration \(differs at: model.module.norm\)"):
        sweep.run_sweep(compose_cfg(*sweep_args(folder, 4, 2, "model.module.norm=null")))


def test_killed_sweep_resumes_without_losing_trials(tmp_path):
    folder = tmp_path / "sweep"
    args = sweep_args(folder, 4, 1, *SLOW)
    proc = cli(args, tmp_path, start_new_session=True)
    try:
        victim, done = catch_running_trial(folder, proc, whole_group=True)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    again = cli(args, tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    study = load(folder)
    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[victim.number].state.name == "FAIL"  # failed at once: its process is gone
    assert "died" in by_number[victim.number].user_attrs["failed_because"]
    assert {n: by_number[n].value for n in done} == done  # completed trials kept as they were
    assert finished(study) == 4 and "RUNNING" not in states(study)
    assert "| synthetic | gcn |" in out


def test_two_workers_on_sqlite_one_killed(tmp_path):
    folder = tmp_path / "sweep"
    args = sweep_args(folder, 6, 1, *SLOW, "sweep.workers=2")
    proc = cli(args, tmp_path)
    victim, done = catch_running_trial(folder, proc)
    os.kill(victim.user_attrs["pid"], signal.SIGKILL)  # one worker dies in the middle of a trial
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err  # the other worker finishes the study
    assert f"ended with signal {int(signal.SIGKILL)}" in out + err  # the log goes to stdout under Hydra
    study = load(folder)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))
    assert {t.number: t for t in trials}[victim.number].state.name == "FAIL"
    assert finished(study) in (6, 7)  # 7 only if both workers started the last trial at once
    assert "RUNNING" not in states(study)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers ran trials
    assert "| synthetic | gcn |" in out and "Best of 6 trials" in out


def test_two_workers_on_postgresql(postgres_url, tmp_path):  # noqa: F811
    folder = tmp_path / "sweep"
    proc = cli(sweep_args(folder, 4, 1, "sweep.workers=2", f"sweep.storage={postgres_url}"), tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert not (folder / "study.db").exists()
    info = json.loads((folder / "study.json").read_text())
    assert info["storage"] == postgres_url  # no password to hide here
    study = optuna.load_study(study_name=info["study_name"], storage=postgres_url)
    trials = study.get_trials()
    assert finished(study) in (4, 5) and "RUNNING" not in states(study)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    assert info["best"]["number"] == study.best_trial.number
    assert "| synthetic | gcn |" in out


def test_unreachable_storage_is_one_line(tmp_path):
    proc = cli(sweep_args(tmp_path / "s", 2, 1, "sweep.storage=postgresql+psycopg2://nobody@127.0.0.1:1/none"),
               tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    errors = [line for line in err.splitlines() if line.startswith("mmgraph.bench: error:")]
    assert len(errors) == 1 and "cannot open sweep.storage postgresql+psycopg2://nobody@127.0.0.1:1/none" in errors[0]
    assert "Traceback" not in err


def _open_at_once(url, barrier, results):
    from types import SimpleNamespace

    from mmgraph.bench.sweep.storage import open_storage

    settings = SimpleNamespace(storage=url, shown_storage=url, heartbeat=60, grace_period=120)
    barrier.wait()
    try:
        open_storage(settings)
        results.put("ok")
    except Exception as exc:  # reported to the test
        results.put(repr(exc)[:300])


def test_processes_that_open_one_new_database_at_once_all_succeed(tmp_path):
    """Workers, and anything else that reads the study (a dashboard, a second host), may open a new
    database while it is being set up; the losers of that race must open it, not fail the sweep."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'{round_}.db'}"
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok"] * 4, outcomes
        assert optuna.get_all_study_names(url) == []  # a usable, empty storage
