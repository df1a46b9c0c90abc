"""Sweeps: study.json + a real Optuna study (complete, pruned and failed trials) -> figures and a row."""
from __future__ import annotations

import json
import math
import shutil

import optuna
import pytest
from PIL import Image

from mmgraph.report import make_report
from mmgraph.report.collect import Study
from mmgraph.report.studies import MIN_TRIALS_FOR_IMPORTANCE, importances, open_study, storage_url

from .conftest import edit_json, make_run


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("trainer.lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("model.module.hidden_channels", 16, 64)
    norm = trial.suggest_categorical("model.module.norm", ["batch", "none"])
    value = 0.9 - 0.2 * abs(math.log10(x) + 2) - 0.0001 * width - 0.001 * (norm == "none")   # lr matters most
    for step in range(1, 6):
        trial.report(value * step / 5, step)
        if trial.number == 2 and step == 2:
            raise optuna.TrialPruned()
    if trial.number == 4:
        raise ValueError("diverged")
    return value


def make_study(folder, name, n_trials, final=None):
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=n_trials, catch=(ValueError,))
    states = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    info = {"study_name": name, "storage": "sqlite:///study.db", "direction": "maximize", "metric": "val/accuracy",
            "dataset": "synthetic", "model": "gcn", "sweep": "gcn", "n_trials": n_trials,
            "best": {"number": study.best_trial.number, "value": study.best_value, "params": study.best_params},
            "states": states, "final": final}
    (folder / "study.json").write_text(json.dumps(info))
    return study, info


@pytest.fixture(scope="module")
def sweep_root(runs_root, tmp_path_factory):
    """A runs folder with one sweep: study.json, study.db, a trial run and the final re-run."""
    root = tmp_path_factory.mktemp("sweeps")
    sweep = root / "sweep_gcn"
    _, info = make_study(sweep, "synthetic-gcn-gcn", 12, final="final")
    shutil.copytree(runs_root / "synthetic/gcn_a", sweep / "trials" / "3")   # a trial's run folder
    make_run(sweep / "final", "model=gcn", "seeds=[0,1]", "trainer.lr=0.01")
    edit_json(sweep / "final" / "summary.json", lambda s: s.update(sweep={
        "name": "gcn", "study_name": info["study_name"], "best_params": info["best"]["params"],
        "best_value": info["best"]["value"], "n_trials": 12}))
    make_run(root / "plain_gcn", "model=gcn", "seeds=[0,1]")
    return root


def test_study_states_are_what_the_test_means(sweep_root):
    study = open_study(Study(sweep_root / "sweep_gcn/study.json", "sweep_gcn",
                             json.loads((sweep_root / "sweep_gcn/study.json").read_text())))
    states = [t.state.name for t in study.trials]
    assert states.count("PRUNED") == 1 and states.count("FAIL") == 1 and states.count("COMPLETE") == 10


def test_sweep_figures_and_the_tuned_row(sweep_root, tmp_path):
    logs = []
    report = make_report(sweep_root, out=tmp_path, log=logs.append)
    for name in ("study_synthetic-gcn-gcn_history.png", "study_synthetic-gcn-gcn_importance.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.width >= 800 and im.height >= 300
            assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 20   # drawn, not blank
    labels = [report.table.labels[r] for r in report.table.rows]
    assert labels == ["gcn", "gcn (tuned)"]
    sources = {run.source for run in report.collection.runs}
    assert sources == {"plain_gcn", "sweep_gcn/final"}            # the trial run is left out
    assert any("left out 1 trial run" in m for m in logs)
    assert "`synthetic-gcn-gcn` (sweep_gcn)" in report.markdown and "trainer.lr=" in report.markdown
    assert "1 pruned" in report.markdown and "1 fail" in report.markdown


def test_importances_rank_the_parameter_that_matters_first(sweep_root):
    path = sweep_root / "sweep_gcn/study.json"
    study = open_study(Study(path, "sweep_gcn", json.loads(path.read_text())))
    imp = importances(study)
    assert set(imp) == {"trainer.lr", "model.module.hidden_channels", "model.module.norm"}
    assert max(imp, key=imp.get) == "trainer.lr"
    assert sum(imp.values()) == pytest.approx(1.0)


def test_too_few_trials_skip_the_importance_figure_with_a_warning(runs_root, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs_root / "synthetic/gcn_a", root / "gcn")
    make_study(root / "tiny", "tiny-study", 3)            # trials 0, 1 complete, 2 pruned
    logs = []
    report = make_report(root, out=tmp_path / "out", log=logs.append)
    assert (tmp_path / "out" / "study_tiny-study_history.png").is_file()
    assert not (tmp_path / "out" / "study_tiny-study_importance.png").exists()
    warning = [m for m in logs if "tiny-study" in m]
    assert len(warning) == 1 and "2 complete trials" in warning[0] and str(MIN_TRIALS_FOR_IMPORTANCE) in warning[0]
    assert report.warnings == [warning[0].removeprefix("warning: ")]


def test_tied_trials_skip_the_importance_figure_with_a_warning(runs_root, tmp_path):
    """Accuracy on a small validation set often ties; PED-ANOVA then cannot rank anything."""
    root = tmp_path / "runs"
    shutil.copytree(runs_root / "synthetic/gcn_a", root / "gcn")
    (root / "tied").mkdir()
    study = optuna.create_study(study_name="tied", storage=f"sqlite:///{root / 'tied' / 'study.db'}",
                                direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: 0.5 + 0 * t.suggest_float("trainer.lr", 1e-4, 1e-1), n_trials=8)
    (root / "tied" / "study.json").write_text(json.dumps({"study_name": "tied", "storage": "sqlite:///study.db"}))
    logs = []
    make_report(root, out=tmp_path / "out", log=logs.append)
    assert (tmp_path / "out" / "study_tied_history.png").is_file()
    assert not (tmp_path / "out" / "study_tied_importance.png").exists()
    assert [m for m in logs if "tied" in m and "no parameter importance" in m and "no ranking" in m]


def test_a_study_that_cannot_be_opened_is_a_warning(runs_root, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs_root / "synthetic/gcn_a", root / "gcn")
    (root / "lost").mkdir()
    (root / "lost" / "study.json").write_text(json.dumps({"study_name": "lost", "storage": "sqlite:///gone.db"}))
    logs = []
    make_report(root, out=tmp_path / "out", log=logs.append)
    assert not list((tmp_path / "out").glob("study_*"))
    assert any("lost" in m and "gone.db does not exist" in m for m in logs)
    assert not (root / "lost" / "gone.db").exists()        # nothing created on the way


def test_storage_paths_are_relative_to_study_json(tmp_path):
    assert storage_url({"storage": "sqlite:///study.db"}, tmp_path) == f"sqlite:///{tmp_path / 'study.db'}"
    assert storage_url({"storage": "sqlite:////abs/s.db"}, tmp_path) == "sqlite:////abs/s.db"
    assert storage_url({"storage": "postgresql://u@h/db"}, tmp_path) == "postgresql://u@h/db"
