"""Task graph_prediction: metrics against references, cross-validation folds, missingness per
split, every model and peer through the runner on a fixture cohort, the prompted model."""
import json
import math
import warnings

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401  (registers the configs' resolvers)
from mmgraph.bench.runner import run
from mmgraph.clinical import PromptedPatientGNN
from mmgraph.data.cohort import PATIENT, load_cohort
from mmgraph.data.graph import set_model_input
from mmgraph.errors import ConfigError, DataError
from mmgraph.paths import config_dir
from mmgraph.tasks import GraphPrediction
from mmgraph.tasks.graph_prediction import concordance_index, horizon_auc
from tests.clinical.fixture import cohort_args, write_cohort

CPU = torch.device("cpu")


def cohort(tmp_path, endpoint="survival", n=60):
    root = write_cohort(tmp_path / "cohort", n=n, endpoint=endpoint)
    kw = {"label_column": "grade", "time_column": None, "event_column": None} if endpoint != "survival" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_cohort("fixture", {"clinical": "clinical.csv", "genes": "genes.parquet"}, "labels.csv",
                           root=root, categorical={"clinical": ["stage"]}, horizon=8.0, **kw)
    set_model_input(data)
    return data


def ready(data, seed=42, **kw):
    task = GraphPrediction(endpoint=data.meta["endpoint"], **kw)
    task.setup(data, CPU)
    task.start_run(seed)
    return task


# ----------------------------------------------------------------------------- metrics
def test_c_index_equals_scikit_survivals_with_ties():
    sksurv_metrics = pytest.importorskip("sksurv.metrics")
    gen = torch.Generator().manual_seed(0)
    time = torch.randint(1, 20, (80,), generator=gen).double()  # tied times
    event = torch.rand(80, generator=gen) < 0.6
    risk = torch.randint(0, 5, (80,), generator=gen).double()  # tied risks
    ref = sksurv_metrics.concordance_index_censored(event.numpy(), time.numpy(), risk.numpy())[0]
    assert concordance_index(risk, event, time) == pytest.approx(ref, abs=1e-9)
    assert math.isnan(concordance_index(risk, torch.zeros(80, dtype=torch.bool), time))
    # float64 scores closer than float32 can tell apart (peers' risks) keep their order
    close = torch.tensor([10.0000001, 10.0, 5.0], dtype=torch.float64)
    t3, e3 = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([True, True, True])
    ref = sksurv_metrics.concordance_index_censored(e3.numpy(), t3.numpy(), close.numpy())[0]
    assert concordance_index(close, e3, t3) == pytest.approx(ref) == 1.0
    # events, but no comparable pair (the only event is the last time): NaN, not an error
    assert math.isnan(concordance_index(close, torch.tensor([False, False, True]), t3))


def test_horizon_auc_leaves_out_patients_censored_before_the_horizon():
    time = torch.tensor([1.0, 2.0, 3.0, 6.0, 7.0, 2.5])
    event = torch.tensor([True, True, False, True, False, False])
    risk = torch.tensor([0.9, 0.2, 5.0, 0.5, 0.1, 0.3])
    # positives: patients 0, 1 (events by 5); negatives: 3, 4 (followed past 5); 2 and 5 left out
    pairs = [(p, q) for p in (0, 1) for q in (3, 4)]
    want = sum(float(risk[p] > risk[q]) + 0.5 * float(risk[p] == risk[q]) for p, q in pairs) / len(pairs)
    assert horizon_auc(risk, event, time, 5.0) == pytest.approx(want)
    assert math.isnan(horizon_auc(risk, event, time, None))


def test_the_cox_loss_minimum_is_scikit_survivals_cox_fit():
    """torchsurv's Efron partial likelihood, minimised, gives scikit-survival's unpenalised Cox."""
    linear = pytest.importorskip("sksurv.linear_model")
    from sksurv.util import Surv
    from torchsurv.loss.cox import neg_partial_log_likelihood

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    t = np.round(rng.exponential(np.exp(-(X @ [1.0, -0.5, 0.0]))) * 10) / 10 + 0.1  # tied times
    e = rng.random(120) < 0.7
    ref = linear.CoxPHSurvivalAnalysis(alpha=0.0, ties="efron").fit(X, Surv.from_arrays(e, t)).coef_
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)
    Xt, et, tt = torch.tensor(X), torch.tensor(e), torch.tensor(t)

    def closure():
        opt.zero_grad()
        loss = neg_partial_log_likelihood((Xt @ w).view(-1, 1), et, tt, ties_method="efron", reduction="sum")
        loss.backward()
        return loss

    opt.step(closure)
    assert np.allclose(w.detach().numpy(), ref, atol=1e-4)


# ----------------------------------------------------------------------------- folds
def test_folds_partition_the_cohort_stratified_and_the_same_for_every_model(tmp_path):
    data = cohort(tmp_path)
    task = ready(data, folds=5, repeats=2)
    event = data[PATIENT].event
    for repeat in range(2):
        tests = []
        for fold in range(5):
            idx = task.fold_indices(repeat, fold)
            sets = {s: set(i.tolist()) for s, i in idx.items()}
            assert not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
            assert not (sets["train"] & sets["val"])
            assert len(sets["train"] | sets["val"] | sets["test"]) == 60
            tests += idx["test"].tolist()
            share = float(event[idx["test"]].float().mean())
            assert abs(share - float(event.float().mean())) < 0.15  # stratified on the event
        assert sorted(tests) == list(range(60))  # every patient tested once per repeat
    other = ready(cohort(tmp_path / "again"), folds=5, repeats=2)
    assert all(torch.equal(task.fold_indices(1, 3)[s], other.fold_indices(1, 3)[s]) for s in ("train", "val", "test"))
    assert not torch.equal(task.fold_indices(0, 0)["test"], task.fold_indices(1, 0)["test"])
    with pytest.raises(ConfigError, match="not one of the 10 cross-validation runs"):
        task.start_run(52)


def test_standardisation_uses_the_training_split_only(tmp_path):
    data = cohort(tmp_path)
    a = ready(data)
    test_rows = a._run["index"]["test"]
    moved = data.clone()
    moved[PATIENT].x_genes[test_rows] += 100.0
    b = ready(moved)
    train_rows = a._run["index"]["train"]
    assert torch.allclose(a._run["x"]["genes"][train_rows], b._run["x"]["genes"][train_rows])


def test_simulated_missingness_touches_only_the_chosen_splits(tmp_path):
    data = cohort(tmp_path)
    base = ready(data)
    on_test = ready(data, missing={"rate": 0.5, "where": "test"})
    on_train = ready(data, missing={"rate": 0.5, "where": "train"})
    idx = base._run["index"]
    for split in ("train", "val"):
        assert torch.equal(on_test._run["present"]["genes"][idx[split]], base._run["present"]["genes"][idx[split]])
    assert torch.equal(on_train._run["present"]["genes"][idx["test"]], base._run["present"]["genes"][idx["test"]])
    assert int(on_test._run["present"]["genes"][idx["test"]].sum()) < int(base._run["present"]["genes"][idx["test"]].sum())
    # the first table (clinical) is left alone by default
    assert torch.equal(on_test._run["present"]["clinical"], base._run["present"]["clinical"])
    assert on_test.describe()["missing"]["stats"]["removed"]["genes"] == 25


@pytest.mark.parametrize("kwargs,error,message", [
    ({"folds": 40}, DataError, "task.folds=40 needs more than 40"),
    ({"endpoint": "classification"}, ConfigError, "set task.endpoint=survival"),
    ({"missing": {"rate": 0.2, "mechanism": "mnar_covariate"}}, ConfigError, "needs task.missing.covariate"),
    ({"missing": {"rate": 0.2, "mechanism": "mnar_covariate", "covariate": "clinical.weight"}},
     ConfigError, "use <modality>.<column>"),
    ({"missing": {"rate": 0.2, "when": "test"}}, ConfigError, "task.missing has no key 'when'"),
    ({"cv_runs": 7}, ConfigError, "must be folds x repeats"),
])
def test_bad_task_options(tmp_path, kwargs, error, message):
    data = cohort(tmp_path)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        task = GraphPrediction(**{"endpoint": "survival", **kwargs})
        task.setup(data, CPU)


def test_a_node_graph_is_not_a_cohort(graph):
    with pytest.raises(ConfigError, match="needs a cohort of patient graphs"):
        GraphPrediction().setup(graph, CPU)


# ----------------------------------------------------------------------------- the prompted model
def test_prompted_model_ignores_a_missing_modalitys_values_and_learns_completion(tmp_path):
    data = cohort(tmp_path)
    task = ready(data)
    model = PromptedPatientGNN(**task.model_kwargs(hetero=True), hidden_channels=16)
    batch = task._run["batches"]["test"]
    x = {nt: batch[nt].x.clone() for nt in batch.node_types}
    present = {m: batch[m].present for m in ("clinical", "genes")}
    model.eval()
    out = model(x, None, present_dict=present)
    assert model.extra_loss is None
    absent = ~present["genes"]
    assert bool(absent.any())
    x["genes"][absent] = torch.randn(int(absent.sum()), x["genes"].size(1)) * 50
    assert torch.allclose(model(x, None, present_dict=present), out)  # absent values never read
    model.train()
    model(x, None, present_dict=present)
    assert model.extra_loss is not None and float(model.extra_loss.detach()) > 0
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    before = task.evaluate(model)["train"]["c_index"]
    for _ in range(60):
        task.train_epoch(model, opt)
    assert task.evaluate(model)["train"]["c_index"] > max(before, 0.7)
    with pytest.raises(ConfigError, match="must follow the patient graph's relations"):
        PromptedPatientGNN(**task.model_kwargs(hetero=True), metapaths=[["genes", "genes"]])


# ----------------------------------------------------------------------------- the runner
def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


MODELS = [
    ("prompted", ["model.module.hidden_channels=16"]),
    ("rgcn", ["model.module.hidden_channels=16"]),
    ("hgt", ["model.module.hidden_channels=16", "model.module.heads=2"]),
    ("mlp", ["fusion=concat", "model.module.hidden_channels=16"]),
    ("mlp", ["fusion=late", "model.module.hidden_channels=16"]),
    ("coxph", ["model.module.alphas=[1.0,10.0]"]),
    ("rsf", ["model.module.n_estimators=20"]),
]


@pytest.mark.parametrize("endpoint", ["survival", "classification"])
@pytest.mark.parametrize("model,extra", MODELS, ids=[f"{m}-{'-'.join(e)[:20]}" for m, e in MODELS])
def test_every_model_and_peer_runs_through_the_runner(tmp_path, model, extra, endpoint):
    if model in ("coxph", "rsf") and endpoint == "survival":
        pytest.importorskip("sksurv")
    root = write_cohort(tmp_path / "cohort", endpoint=endpoint)
    cfg = compose_cfg(*cohort_args(root, endpoint), f"model={model}", *extra, "task.folds=3", "task.repeats=1",
                      "trainer.max_epochs=4", "trainer.progress=false", "task.missing.rate=0.3")
    assert cfg.runs == 3  # folds x repeats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = run(cfg, output_dir=tmp_path / "out")
    assert row["runs"] == 3 and row["primary"] == ("c_index" if endpoint == "survival" else "auc")
    value = row["summary"][f"test/{row['primary']}"]["mean"]
    assert 0.0 <= value <= 1.0
    record = json.loads((tmp_path / "out" / "runs" / "seed_43.json").read_text())
    assert record["fold"]["fold"] == 1 and record["fold"]["repeat"] == 0
    assert record["task"]["split"]["kind"] == "repeated_stratified_kfold"
    assert record["task"]["missing"]["rate"] == 0.3
    assert sum(record["fold"]["sizes"].values()) == 60
    if endpoint == "survival" and model not in ("coxph", "rsf"):  # no horizon: auc_h is NaN on val,
        sel = record["selected"]                                   # reported at c_index's epoch
        assert math.isnan(sel["auc_h"]["val"]) and sel["auc_h"]["epoch"] == sel["c_index"]["epoch"]


def test_the_command_line_prints_the_table_and_refuses_a_node_data_set(tmp_path):
    import subprocess
    import sys

    root = write_cohort(tmp_path / "cohort")
    args = [*cohort_args(root), "model=prompted", "runs=2", "trainer.max_epochs=3", "trainer.progress=false",
            "model.module.hidden_channels=8", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run([sys.executable, "-m", "mmgraph.bench", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| fixture | prompted | clinical+genes | 2 |" in proc.stdout and "test c_index" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "mmgraph.bench", "dataset=synthetic", "model=coxph",
                          f"hydra.run.dir={tmp_path / 'bad'}"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs a cohort of patient graphs" in lines[0]
