"""Flags: a row is marked exactly when its records disagree on something needed to reproduce it."""
from __future__ import annotations

import copy
import shutil

import pytest

from mmgraph.report import Entry, make_report, reproducibility_flags
from mmgraph.report.flags import ACROSS, comparable_config, ignored_key

from .conftest import edit_json, records


def entries(root, *folders):
    return [Entry(f, r["seed"], r) for f in folders for r in records(root / f)]


def clean(recs):
    out = copy.deepcopy(recs)
    for e in out:
        e.record["git"]["dirty"] = False
    return out


def whats(flags):
    return sorted((f.scope, f.what) for f in flags)


@pytest.fixture(scope="module")
def gcn_cells(runs_root):
    """The gcn row: two run folders on synthetic, one on synthetic_b, clean-checkout records."""
    return {"synthetic": clean(entries(runs_root, "synthetic/gcn_a", "synthetic/gcn_b")),
            "synthetic_b": clean(entries(runs_root, "synthetic_b/gcn"))}


def perturbed(cells, ds, index, change):
    cells = copy.deepcopy(cells)
    change(cells[ds][index].record)
    return cells


def test_consistent_runs_are_not_flagged(gcn_cells):
    assert reproducibility_flags(gcn_cells) == []


@pytest.mark.parametrize("change, what, words", [
    (lambda r: r["git"].update(commit="0123456789abcdef"), "git commit", ["0123456789"]),
    (lambda r: r["task"]["split"].update(fingerprint="ffffffffffffffff"), "split", ["ffffffffffffffff"]),
    (lambda r: r["input"].update(fingerprint="eeeeeeeeeeeeeeee"), "input fingerprint", ["eeeeeeeeeeeeeeee"]),
    (lambda r: r["config"]["trainer"].update(lr=0.123), "config", ["trainer.lr", "0.123"]),
    (lambda r: r["config"]["dataset"]["loader"].update(homophily=0.5), "config", ["dataset.loader.homophily"]),
    (lambda r: r["versions"].update(torch="9.9.9"), "versions", ["torch", "9.9.9"]),
    (lambda r: r["git"].update(dirty=True), "uncommitted changes", ["changes: synthetic/gcn_b"]),
    (lambda r: r.update(device="cuda:0"), "device", ["cuda:0"]),
    (lambda r: r.update(distributed={"world_size": 2, "backend": "gloo"}), "processes", ["2"]),
])
def test_one_disagreement_in_a_cell_gives_one_flag(gcn_cells, change, what, words):
    flags = reproducibility_flags(perturbed(gcn_cells, "synthetic", 2, change))   # gcn_b's seed 2
    assert whats(flags) == [("synthetic", what)]
    assert all(w in flags[0].detail for w in words), flags[0].detail
    if what != "uncommitted changes":  # says who has which value
        assert "(synthetic/gcn_a)" in flags[0].detail and "(synthetic/gcn_b)" in flags[0].detail


def test_details_name_seeds_when_a_run_folder_disagrees_inside(gcn_cells):
    flags = reproducibility_flags(perturbed(gcn_cells, "synthetic", 1, lambda r: r["git"].update(commit="fedcba9876543210")))
    assert whats(flags) == [("synthetic", "git commit")]
    assert flags[0].detail.endswith("(synthetic/gcn_a seed 0; synthetic/gcn_b) vs fedcba9876 (synthetic/gcn_a seed 1)")


def test_per_seed_path_and_cosmetic_config_keys_are_ignored(gcn_cells):
    def change(r):
        r["config"].update(seed=7, runs=9, seeds=[1, 2, 3], device="cpu")
        r["config"]["paths"]["data_root"] = "/elsewhere"
        r["config"]["features"]["cache_dir"] = "/elsewhere/features"
        r["config"]["trainer"]["progress"] = not r["config"]["trainer"]["progress"]
        r["config"]["hydra"] = {"run": {"dir": "outputs/x"}}
    assert reproducibility_flags(perturbed(gcn_cells, "synthetic", 0, change)) == []
    assert [ignored_key(k) for k in ("seed", "paths.data_root", "dataset.loader.root", "trainer.lr",
                                     "dataset.loader.seed", "dataset.split.seed")] == [True, True, True, False,
                                                                                      False, False]


def test_null_modalities_mean_the_modalities_the_input_used(runs_root):
    """mlp_both ran with features.modalities=null, which resolved to text+image."""
    rec = records(runs_root / "synthetic/mlp_both")[0]
    assert rec["config"]["features"]["modalities"] is None
    other = copy.deepcopy(rec)
    other["config"]["features"]["modalities"] = ["text", "image"]
    other["seed"] = 5
    cells = {"synthetic": clean([Entry("a", rec["seed"], rec), Entry("b", 5, other)])}
    assert reproducibility_flags(cells) == []
    cells["synthetic"][1].record["config"]["features"]["modalities"] = ["text"]
    assert whats(reproducibility_flags(cells)) == [("synthetic", "config")]


def test_a_seed_recorded_twice_is_flagged(gcn_cells):
    cells = copy.deepcopy(gcn_cells)
    twin = copy.deepcopy(cells["synthetic"][0])
    cells["synthetic"].append(Entry("synthetic/gcn_b", twin.seed, twin.record))
    flags = reproducibility_flags(cells)
    assert whats(flags) == [("synthetic", "duplicate seed")]
    assert "seed 0 recorded twice (synthetic/gcn_a, synthetic/gcn_b)" in flags[0].detail


def test_disagreements_across_the_cells_of_a_row(gcn_cells):
    # the data set config may differ between columns (it is what the columns are)
    assert gcn_cells["synthetic"][0].record["config"]["dataset"] != gcn_cells["synthetic_b"][0].record["config"]["dataset"]
    fewer = copy.deepcopy(gcn_cells)
    fewer["synthetic_b"] = fewer["synthetic_b"][:2]
    flags = reproducibility_flags(fewer)
    assert whats(flags) == [(ACROSS, "seeds")] and "synthetic 0–2; synthetic_b 0, 1" in flags[0].detail

    def every(ds, change):
        cells = copy.deepcopy(gcn_cells)
        for e in cells[ds]:
            change(e.record)
        return reproducibility_flags(cells)

    flags = every("synthetic_b", lambda r: r["config"]["model"]["module"].update(hidden_channels=99))
    assert whats(flags) == [(ACROSS, "config")] and "model.module.hidden_channels" in flags[0].detail
    assert whats(every("synthetic_b", lambda r: r["git"].update(commit="abcdef0123"))) == [(ACROSS, "git commit")]
    assert whats(every("synthetic_b", lambda r: r["versions"].update(numpy="0.0.1"))) == [(ACROSS, "versions")]
    assert every("synthetic_b", lambda r: r["config"]["dataset"]["loader"].update(num_nodes=5)) == []


def test_comparable_config_flattens_and_drops_ignored_keys():
    flat = comparable_config({"seed": 1, "trainer": {"lr": 0.1, "progress": True}, "features": {"cache_dir": "/x",
                              "encoders": {}}, "model": {"num_neighbors": [15, 10]}})
    assert flat == {"trainer.lr": "0.1", "features.encoders": "null", "model.num_neighbors": "[15, 10]"}


# -- end to end: edit one record of a copy of real runs, and only that row is marked ---------------

def _flagged_rows(root, tmp_path):
    report = make_report(root, out=tmp_path / "out", plots=False, log=lambda m: None)
    table = report.table
    return {table.labels[r]: whats(table.flags[r]) for r in table.rows if table.flags[r]}, report.markdown


def test_clean_copies_of_real_runs_have_no_flags(clean_root, tmp_path):
    flagged, text = _flagged_rows(clean_root, tmp_path)
    assert flagged == {} and "†" not in text and "Flags" not in text


def test_real_runs_are_flagged_for_uncommitted_changes_exactly_when_recorded(runs_root, tmp_path):
    dirty = records(runs_root / "synthetic/gcn_a")[0]["git"].get("dirty")
    flagged, _ = _flagged_rows(runs_root, tmp_path)
    if dirty:  # the checkout running the tests has uncommitted changes: every row says so
        assert flagged and all(set(w for _, w in v) == {"uncommitted changes"} for v in flagged.values())
    else:
        assert flagged == {}


@pytest.mark.parametrize("what, edit", [
    ("git commit", lambda r: r["git"].update(commit="1" * 40)),
    ("split", lambda r: r["task"]["split"]["sizes"].update(train=1)),
    ("input fingerprint", lambda r: r["input"].update(fingerprint="0" * 16)),
    ("config", lambda r: r["config"]["model"]["module"].update(dropout=0.9)),
])
def test_editing_one_record_flags_only_its_row(clean_root, tmp_path, what, edit):
    edit_json(clean_root / "synthetic/gcn_b/runs/seed_2.json", edit)
    flagged, text = _flagged_rows(clean_root, tmp_path)
    assert flagged == {"gcn": [("synthetic", what)]}
    assert "| gcn † |" in text and f"synthetic: {what} — " in text.split("Flags")[1]


def test_a_duplicated_seed_file_flags_its_row(clean_root, tmp_path):
    shutil.copy(clean_root / "synthetic/gcn_a/runs/seed_0.json", clean_root / "synthetic/gcn_b/runs/seed_0.json")
    edit_json(clean_root / "synthetic/gcn_b/summary.json", lambda s: s.update(seeds=[0, 2]))
    flagged, text = _flagged_rows(clean_root, tmp_path)
    assert flagged == {"gcn": [("synthetic", "duplicate seed")]}
    assert "seed 0 recorded twice (synthetic/gcn_a, synthetic/gcn_b)" in text


def test_flags_mark_the_row_in_every_format(clean_root, tmp_path):
    edit_json(clean_root / "synthetic_b/mlp/runs/seed_1.json", lambda r: r["git"].update(dirty=True))
    report = make_report(clean_root, out=tmp_path / "out", plots=False, log=lambda m: None)
    assert "| mlp [text+image] † |" in report.markdown
    assert r"mlp [text+image]$^\dagger$ &" in (report.out / "table.tex").read_text()
    csv_rows = (report.out / "table.csv").read_text().splitlines()
    marked = [ln for ln in csv_rows if ln.startswith("mlp [text+image] †,")]
    assert marked and all(ln.endswith(",true") for ln in marked)
    assert all(ln.endswith(",false") for ln in csv_rows[1:] if ln not in marked)
