"""Cohorts of patient graphs: the table loader and its errors, patient graphs and batches, the
packaged cohorts, the missingness simulator."""
import warnings

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from mmgraph.data.cohort import (ModalityTable, PATIENT, build_cohort, collate, load_cohort,
                                 patient_graph, patient_metadata)
from mmgraph.data.missingness import outcome_score, simulate_missing
from mmgraph.errors import ConfigError, DataError
from tests.clinical.fixture import write_cohort


def load_fixture(root, **kw):
    return load_cohort("fixture", {"clinical": "clinical.csv", "genes": "genes.parquet"}, "labels.csv",
                       root=root, categorical={"clinical": ["stage"]}, **kw)


def test_tables_load_with_absent_and_empty_rows_counted(tmp_path):
    root = write_cohort(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_fixture(root)
    messages = [str(w.message) for w in caught]
    assert any("10 patients are absent from table genes" in m for m in messages)
    assert any("1 patients have an empty clinical row" in m for m in messages)
    store = data[PATIENT]
    assert store.num_nodes == 60 and store.x_genes.shape == (60, 8)
    assert store.x_clinical.shape == (60, 4)  # age + stage one-hot (I, II, III)
    assert data.meta["columns"]["clinical"] == ["age", "stage=I", "stage=II", "stage=III"]
    assert int(store.genes_mask.sum()) == 50 and not bool(store.genes_mask[5])
    assert not bool(store.clinical_mask[3]) and float(store.x_clinical[3].abs().sum()) == 0.0
    assert data.meta["counts"]["absent_from_table"]["genes"] == 10
    assert data.meta["features"]["x_genes"]["fingerprint"]  # features are fingerprinted
    assert store.time.dtype == torch.float32 and store.event.dtype == torch.bool


def test_same_tables_same_fingerprints_and_csv_equals_parquet(tmp_path):
    a = load_fixture(write_cohort(tmp_path / "a"))
    b = load_cohort("fixture", {"clinical": "clinical.csv", "genes": "genes.csv"}, "labels.csv",
                    root=write_cohort(tmp_path / "b", parquet_genes=False), categorical={"clinical": ["stage"]})
    assert torch.allclose(a[PATIENT].x_genes, b[PATIENT].x_genes)
    assert a.meta["features"]["x_genes"]["fingerprint"] == b.meta["features"]["x_genes"]["fingerprint"]


def _table(rows, ids=("a", "b", "c"), cols=("v",), categorical=()):
    return ModalityTable("clinical", list(ids), list(cols), [list(r) for r in rows], categorical=categorical)


@pytest.mark.parametrize("kwargs,message", [
    ({"tables": [_table([[1], [2], [3]], ids=("a", "a", "c"))]}, "appears more than once"),
    ({"tables": [_table([[1], ["high"], [3]])]}, "not a number; fix the cell or declare the column categorical"),
    ({"tables": [_table([[1, 2], [None, 3], [3, 4]], cols=("v", "w"))]}, "1 empty cell(s)"),
    ({"time": [1.0, 0.0, 2.0]}, "survival time of patient 'b' is 0"),
    ({"event": [0, 2, 1]}, "events must be 0 (censored) or 1"),
    ({"time": [1.0, "soon", 2.0]}, "time of patient 'b' is 'soon', not a number"),
])
def test_bad_tables_give_one_line_errors(kwargs, message):
    args = {"tables": [_table([[1], [2], [3]])], "time": [1.0, 2.0, 3.0], "event": [1, 0, 1], **kwargs}
    with pytest.raises(DataError) as err:
        build_cohort("bad", args.pop("tables"), ["a", "b", "c"], **args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_empty_categorical_cell_is_named_by_its_column_and_levels_sort_naturally():
    table = ModalityTable("clinical", ["a", "b", "c"], ["age", "group"], [[50, "G10"], [60, None], [70, "G2"]],
                          categorical=["group"])
    with pytest.raises(DataError, match="1 empty cell\\(s\\) \\(first: 'group'\\)"):
        build_cohort("c", [table], ["a", "b", "c"], time=[1.0, 2.0, 3.0], event=[1, 0, 1])
    table.values[1][1] = "G2"
    data = build_cohort("c", [table], ["a", "b", "c"], time=[1.0, 2.0, 3.0], event=[1, 0, 1])
    assert data.meta["columns"]["clinical"] == ["age", "group=G2", "group=G10"]


def test_a_class_left_without_patients_is_dropped_from_the_class_list():
    tables = [_table([[1], [2], [3], [None]], ids=("a", "b", "c", "d"))]
    with pytest.warns(UserWarning, match="1 classes have no patient with a modality"):
        data = build_cohort("c", tables, ["a", "b", "c", "d"], label=["A", "A", "B", "C"])
    assert data.meta["class_names"] == ["A", "B"] and data[PATIENT].y.tolist() == [0, 0, 1]


def test_nonpositive_times_can_be_dropped_with_a_count_and_unlabelled_rows_are_counted():
    tables = [_table([[1], [2], [3], [4]], ids=("a", "b", "c", "z"))]
    with pytest.warns(UserWarning) as caught:
        data = build_cohort("c", tables, ["a", "b", "c"], time=[1.0, -1.0, 2.0], event=[1, 0, 1],
                            nonpositive_time="drop")
    messages = " ".join(str(w.message) for w in caught)
    assert "1 patients with survival time <= 0 dropped" in messages
    assert "1 rows of table clinical belong to patients without a label" in messages
    assert data[PATIENT].pid == ["a", "c"]


def test_a_patient_without_any_modality_is_dropped_and_counted():
    tables = [_table([[1], [None], [3]])]
    with pytest.warns(UserWarning, match="1 labelled patients have no modality at all; dropped"):
        data = build_cohort("c", tables, ["a", "b", "c"], time=[1.0, 2.0, 3.0], event=[1, 0, 1])
    assert data[PATIENT].pid == ["a", "c"]


def test_missing_files_and_columns_are_one_line_errors(tmp_path):
    root = write_cohort(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_cohort("x", {"genes": "nope.csv"}, "labels.csv", root=root)
    with pytest.raises(DataError, match="has no id column 'pid'"):
        load_cohort("x", {"clinical": "clinical.csv"}, "labels.csv", root=root, id_column="pid")
    (root / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read"):
        load_cohort("x", {"genes": "broken.parquet"}, "labels.csv", root=root)
    with pytest.raises(ConfigError, match="categorical names modality 'imaging'"):
        load_cohort("x", {"clinical": "clinical.csv"}, "labels.csv", root=root, categorical={"imaging": ["a"]})


def test_classification_labels(tmp_path):
    root = write_cohort(tmp_path, endpoint="classification")
    data = load_cohort("fx", {"clinical": "clinical.csv"}, "labels.csv", root=root, label_column="grade",
                       time_column=None, event_column=None, categorical={"clinical": ["stage"]})
    assert data.meta["endpoint"] == "classification" and data.meta["class_names"] == ["G1", "G2", "G3"]
    assert sorted(set(data[PATIENT].y.tolist())) == [0, 1, 2]


def test_collate_equals_pygs_batch_of_the_patient_graphs(tmp_path):
    data = load_fixture(write_cohort(tmp_path))
    index = torch.tensor([5, 0, 3, 17])
    graphs = [patient_graph(data, int(i)) for i in index]
    ref = Batch.from_data_list(graphs)
    ours = collate(data, index)
    node_types, edge_types = patient_metadata(data)
    assert set(ours.node_types) == set(ref.node_types) == set(node_types)
    assert set(ours.edge_types) == set(ref.edge_types) == set(edge_types)
    for nt in node_types:
        for key in ref[nt].keys():
            assert torch.equal(ours[nt][key], ref[nt][key]), (nt, key)
    for et in edge_types:
        assert torch.equal(ours[et].edge_index, ref[et].edge_index)
    assert torch.equal(ours.time, ref.time) and torch.equal(ours.event, ref.event)
    # patient 5 has no genes: a present=False node with a zero vector, its flag 0 on the readout node
    one = graphs[0]
    assert not bool(one["genes"].present[0]) and float(one["genes"].x.abs().sum()) == 0.0
    assert one[PATIENT].x.tolist() == [[1.0, 0.0]]


# ----------------------------------------------------------------------------- missingness
def _masks(n=200, natural=None):
    present = {"clinical": torch.ones(n, dtype=torch.bool), "genes": torch.ones(n, dtype=torch.bool),
               "image": torch.ones(n, dtype=torch.bool)}
    if natural is not None:
        present["image"][natural] = False
    return present


def test_mcar_removes_exactly_the_rate_seeded_and_keeps_the_natural_missingness():
    natural = torch.arange(0, 200, 4)
    present = _masks(natural=natural)
    out, stats = simulate_missing(present, 0.3, modalities=["genes", "image"], seed=1)
    assert int((~out["genes"]).sum()) == 60 and stats["removed"]["genes"] == 60
    assert int((~out["image"]).sum()) == 50 + round(0.3 * 150)
    assert bool(out["clinical"].all()) and not bool(out["image"][natural].any())
    again, _ = simulate_missing(present, 0.3, modalities=["genes", "image"], seed=1)
    other, _ = simulate_missing(present, 0.3, modalities=["genes", "image"], seed=2)
    assert all(torch.equal(out[m], again[m]) for m in out)
    assert not torch.equal(out["genes"], other["genes"])
    assert bool(present["genes"].all())  # the input masks are not modified


def test_a_patient_never_loses_its_last_modality():
    out, stats = simulate_missing(_masks(50), 0.9, seed=0)
    alive = torch.stack(list(out.values()), 1).any(1)
    assert bool(alive.all()) and stats["kept_last"] > 0


def test_mnar_outcome_removes_more_from_worse_outcomes():
    gen = torch.Generator().manual_seed(0)
    time = torch.rand(400, generator=gen) * 10 + 0.1
    event = torch.rand(400, generator=gen) < 0.5
    score = outcome_score(time=time, event=event)
    out, _ = simulate_missing(_masks(400), 0.3, "mnar_outcome", ["genes"], seed=0, strength=2.0, score=score)
    missing = ~out["genes"]
    assert float(missing[event].float().mean()) > 2 * float(missing[~event].float().mean())
    mcar, _ = simulate_missing(_masks(400), 0.3, "mcar", ["genes"], seed=0)
    assert abs(float((~mcar["genes"])[event].float().mean()) - 0.3) < 0.1


def test_mnar_covariate_and_bad_options():
    cov = np.linspace(0, 1, 200)
    out, _ = simulate_missing(_masks(), 0.5, "mnar_covariate", ["genes"], seed=0, strength=3.0, score=cov)
    missing = (~out["genes"]).numpy()
    assert missing[100:].mean() > missing[:100].mean() + 0.3
    with pytest.raises(ConfigError, match=r"missing.rate must be in \[0, 1\)"):
        simulate_missing(_masks(), 1.0)
    with pytest.raises(ConfigError, match="no modality 'mri'"):
        simulate_missing(_masks(), 0.1, modalities=["mri"])
    with pytest.raises(ConfigError, match="needs a score"):
        simulate_missing(_masks(), 0.1, "mnar_outcome")
    extreme, _ = simulate_missing(_masks(), 0.5, "mnar_covariate", ["genes"], seed=0, strength=1e4, score=cov)
    assert int((~extreme["genes"]).sum()) == 100  # no weight under- or overflows


# ----------------------------------------------------------------------------- packaged cohorts
@pytest.mark.parametrize("name,patients,events,present", [
    ("breast_cancer", 198, 51, {"clinical": 198, "genes": 198}),
    ("hepatocellular", 227, 97, {"clinical": 227, "cxcl17": 227, "immune": 101}),
    ("nki70", 144, 48, {"clinical": 144, "genes": 144}),
    ("ovarian", 910, 544, {"clinical": 910, "genes": 910}),
])
def test_packaged_cohorts(name, patients, events, present):
    pytest.importorskip("sksurv")
    pytest.importorskip("SurvSet")
    from mmgraph.data.clinical import load_packaged_cohort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_packaged_cohort(name)
    store = data[PATIENT]
    assert store.num_nodes == patients and int(store.event.sum()) == events
    assert data.meta["modalities"][0] == "clinical"
    assert {m: int(store[f"{m}_mask"].sum()) for m in data.meta["modalities"]} == present
    assert bool((store.time > 0).all())
    for m in data.meta["modalities"]:
        assert bool(torch.isfinite(store[f"x_{m}"]).all())


def test_without_the_clinical_extra_the_packaged_cohorts_say_how_to_install_it(monkeypatch):
    import importlib

    from mmgraph.data import clinical

    real = importlib.import_module

    def no_gpl(name, *args):
        if name.startswith(("sksurv", "SurvSet")):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_gpl)
    for name in clinical.COHORTS:
        with pytest.raises(DataError, match=r'pip install "mmgraph\[clinical\]"'):
            clinical.load_packaged_cohort(name)
    with pytest.raises(ConfigError, match="unknown packaged cohort 'lung'"):
        clinical.load_packaged_cohort("lung")
