"""Figures from real runs: the right files, readable PNGs, curves that are the mean over seeds."""
from __future__ import annotations

import statistics

import pytest
from PIL import Image

from mmgraph.report import make_report
from mmgraph.report.figures import ablation_groups, curve

from .conftest import records


@pytest.fixture(scope="module")
def figures(runs_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    return make_report(runs_root, out=out, log=lambda m: None)


def check_png(path, min_w=600, min_h=300):
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.width >= min_w and im.height >= min_h, (path, im.size)
        assert im.width <= 4000 and im.height <= 3000
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 20, f"{path} looks blank"


def test_expected_figures_are_written_and_readable(figures):
    pngs = sorted(p.name for p in figures.out.glob("*.png"))
    # only synthetic has a model with several modality sets (mlp: text, image, text+image)
    assert pngs == ["ablation_synthetic.png", "curves_synthetic.png", "curves_synthetic_b.png"]
    for name in pngs:
        check_png(figures.out / name)
    assert {p.name for p in figures.files} >= set(pngs)


def test_ablation_groups_models_by_modality_sets(figures):
    groups = ablation_groups(figures.table, "synthetic")
    assert list(groups) == [("mlp", "none", False, "node_classification")]
    assert [r.modalities for r in groups[("mlp", "none", False, "node_classification")]] == ["text", "image",
                                                                                              "text+image"]
    assert ablation_groups(figures.table, "synthetic_b") == {}


def test_curve_is_the_mean_and_std_over_seeds_that_reached_each_epoch(runs_root):
    hists = [r["history"] for r in records(runs_root / "synthetic_b/gcn")]
    epochs, mean, std = curve(hists, "val/accuracy")
    assert epochs == list(range(1, max(len(h) for h in hists) + 1))
    for e, m, s in zip(epochs, mean, std):
        values = [row["val/accuracy"] for h in hists for row in h if row["epoch"] == e]
        assert m == pytest.approx(statistics.fmean(values))
        assert s == pytest.approx(statistics.stdev(values) if len(values) > 1 else 0.0)
    # seeds that stopped earlier drop out
    assert curve([[{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}], [{"epoch": 1, "loss": 3.0}]], "loss") == \
        ([1, 2], [2.0, 0.5], [pytest.approx(2 ** 0.5), 0.0])


def test_no_plots_writes_tables_only(runs_root, tmp_path):
    report = make_report(runs_root, out=tmp_path, plots=False, log=lambda m: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv", "table.md", "table.tex"]
    assert [p.name for p in report.files] == ["table.md", "table.csv", "table.tex"]


def test_figures_of_an_earlier_report_do_not_outlive_it(runs_root, tmp_path):
    (tmp_path / "notes.png").write_bytes(b"mine")
    make_report(runs_root, out=tmp_path, log=lambda m: None)
    assert (tmp_path / "ablation_synthetic.png").is_file()
    (tmp_path / "study_gone_importance.png").write_bytes(b"old")       # as if from a study since deleted
    logs = []
    make_report(runs_root, out=tmp_path, plots=False, log=logs.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.png", "table.csv", "table.md", "table.tex"]
    assert any("removed 4 figures of an earlier report" in m for m in logs)
