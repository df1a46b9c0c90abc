"""Tables from real runs: cell values, pooling, best marks, and the three formats agreeing."""
from __future__ import annotations

import csv
import io
import math
import re
import statistics

import pytest

from mmgraph.report import ReportError, build_table, collect, make_report
from mmgraph.report.table import row_labels
from mmgraph.report.collect import RowKey

from .conftest import records

METRICS = ["accuracy", "macro_f1"]
# (row label, data set) -> the run folders whose records the cell pools
CELLS = {
    ("mlp [text]", "synthetic"): ["synthetic/mlp_text"],
    ("mlp [image]", "synthetic"): ["synthetic/mlp_image"],
    ("mlp [text+image]", "synthetic"): ["synthetic/mlp_both"],
    ("mlp [text+image]", "synthetic_b"): ["synthetic_b/mlp"],
    ("gcn", "synthetic"): ["synthetic/gcn_a", "synthetic/gcn_b"],
    ("gcn", "synthetic_b"): ["synthetic_b/gcn"],
    ("gcn [concat]", "synthetic"): ["synthetic/gcn_concat"],
}


def parse_markdown(text: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].strip("|").split("|")) <= {"---", "---:"}
    body = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        body[cells[0]] = cells[1:]
    return head[1:], body


def expected_text(values: list[float]) -> str:
    mu = statistics.fmean(values) * 100
    return f"{mu:.2f}" + (f" ± {statistics.stdev(values) * 100:.2f}" if len(values) > 1 else "")


@pytest.fixture(scope="module")
def report(runs_root, tmp_path_factory):
    return make_report(runs_root, out=tmp_path_factory.mktemp("out"), plots=False, log=lambda m: None)


def test_cells_are_mean_and_std_of_the_seed_records(report, runs_root):
    head, body = parse_markdown(report.markdown)
    assert head == [f"{ds} {m}" for ds in ("synthetic", "synthetic_b") for m in METRICS]
    for (label, ds), folders in CELLS.items():
        recs = [r for f in folders for r in records(runs_root / f)]
        row = next(k for k in body if k.rstrip(" †") == label)
        for m in METRICS:
            values = [r["selected"][m]["test"] for r in recs]
            shown = body[row][head.index(f"{ds} {m}")].strip("*")
            assert shown == expected_text(values), (label, ds, m)
            cell = report.table.cells[(next(k for k in report.table.rows if report.table.labels[k] == label), ds, m)]
            assert cell.mean == pytest.approx(statistics.fmean(values), abs=1e-15)
            assert cell.std == pytest.approx(statistics.stdev(values), abs=1e-15)
    # runs that were never made read as missing
    assert body[next(k for k in body if k.startswith("mlp [text]"))][head.index("synthetic_b accuracy")] == "–"


def test_run_folders_of_one_row_are_pooled_by_seed(report):
    gcn = next(k for k in report.table.rows if report.table.labels[k] == "gcn")
    assert gcn == RowKey("gcn", "text+image", "none", False, "node_classification", split="magb")
    assert report.table.cells[(gcn, "synthetic", "accuracy")].seeds == [0, 1, 2]
    assert {r.source for r in report.table.runs(gcn, "synthetic")} == {"synthetic/gcn_a", "synthetic/gcn_b"}


def test_the_best_mean_of_each_column_is_the_one_marked(report):
    head, body = parse_markdown(report.markdown)
    for j, col in enumerate(head):
        ds, m = col.split(" ")
        cells = {label: report.table.cells.get((row, ds, m)) for row, label in
                 ((r, report.table.label(r)) for r in report.table.rows)}
        cells = {k: c for k, c in cells.items() if c is not None}
        best = max(round(c.mean * 100, 2) for c in cells.values())
        marked = {label for label, values in body.items() if values[j].startswith("**")}
        assert marked == {k for k, c in cells.items() if round(c.mean * 100, 2) == best}
        assert len(marked) >= 1


def test_csv_and_latex_agree_with_the_markdown(report):
    head, body = parse_markdown(report.markdown)
    rows = list(csv.DictReader(io.StringIO((report.out / "table.csv").read_text())))
    assert len(rows) == sum(v != "–" for values in body.values() for v in values)
    for r in rows:
        md = body[r["row"]][head.index(f"{r['dataset']} {r['metric']}")]
        mean, std = float(r["mean"]), float(r["std"]) if r["std"] else math.nan
        text = f"{mean * 100:.2f}" + ("" if math.isnan(std) else f" ± {std * 100:.2f}")
        assert md == (f"**{text}**" if r["best"] == "true" else text)
        assert int(r["n_seeds"]) == len(r["seeds"].split())
        assert r["flagged"] == str("†" in r["row"]).lower()

    tex = (report.out / "table.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 1 and r"\end{tabular}" in tex
    assert all(cmd in tex for cmd in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert r"\multicolumn{2}{c}{synthetic\_b}" in tex and r"\cmidrule(lr){4-5}" in tex
    lines = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(lines) == len(body)
    spec = re.search(r"\\begin\{tabular\}\{([^}]*)\}", tex).group(1)
    assert spec.count("c") == len(head) and spec.startswith("l")
    for line in lines:
        assert line.endswith(r"\\")
        cells = [c.strip() for c in line[:-2].split("&")]
        label = cells[0].replace(r"$^\dagger$", " †").replace(r"\_", "_")
        assert label in body
        for got, md in zip(cells[1:], body[label]):
            bold = re.fullmatch(r"\\textbf\{(.*)\}", got)
            plain = (bold.group(1) if bold else got).replace(r" $\pm$ ", " ± ").replace("--", "–")
            assert (f"**{plain}**" if bold else plain) == md


def test_row_labels_name_what_differs():
    rows = [RowKey("mlp", "text"), RowKey("mlp", "text+image"), RowKey("gcn", "text+image"),
            RowKey("gcn", "text+image", "late-logits"), RowKey("gat", "text+image", tuned=True),
            RowKey("sage", "text+image"), RowKey("sage", "text+image", task="link_prediction")]
    assert list(row_labels(rows).values()) == [
        "mlp [text]", "mlp [text+image]", "gcn", "gcn [late-logits]", "gat (tuned)",
        "sage [node_classification]", "sage [link_prediction]"]


def test_choosing_metrics(runs_root):
    table = build_table(collect(runs_root), ["acc"])
    assert table.metrics == ["accuracy"]
    assert {m for (_, _, m) in table.cells} == {"accuracy"}
    with pytest.raises(ReportError, match="unknown metric 'mrr'; the runs record: accuracy, macro_f1") as err:
        build_table(collect(runs_root), ["accuracy", "mrr"])
    assert err.value.status == 2


def test_lower_is_better_columns_mark_the_smallest_mean():
    from mmgraph.report.table import Cell, Table, mark_best

    rows = ["a", "b"]
    cells = {("a", "d", "accuracy"): Cell(0.5, float("nan"), [0]), ("b", "d", "accuracy"): Cell(0.7, float("nan"), [0]),
             ("a", "d", "mismatch"): Cell(0.1, float("nan"), [0]), ("b", "d", "mismatch"): Cell(0.3, float("nan"), [0])}
    table = Table(rows=rows, labels={r: r for r in rows}, datasets=["d"], metrics=["accuracy", "mismatch"],
                  cells=cells, entries={})
    mark_best(table)
    assert [k for k, c in cells.items() if c.best] == [("b", "d", "accuracy"), ("a", "d", "mismatch")]
    # a direction the runs' task recorded (summary "higher_is_better") wins for any metric name
    custom = {("a", "d", "brier"): Cell(0.2, float("nan"), [0]), ("b", "d", "brier"): Cell(0.4, float("nan"), [0])}
    table = Table(rows=rows, labels={r: r for r in rows}, datasets=["d"], metrics=["brier"], cells=custom,
                  entries={}, lower_is_better={"brier"})
    mark_best(table)
    assert [k for k, c in custom.items() if c.best] == [("a", "d", "brier")]


def test_row_labels_name_split_relations_and_post_processing_only_when_they_differ():
    from mmgraph.report.table import row_labels

    a = RowKey("sage", "text+image", "concat", split="grouped")
    b = RowKey("sage", "text+image", "concat", split="grouped", relations="same_creator")
    c = RowKey("mlp", "text+image", "concat", split="grouped", post="C&S")
    d = RowKey("mlp", "text", split="magb")
    labels = row_labels([a, b, c, d])
    assert labels[a] == "sage [concat, split grouped, edges all]"
    assert labels[b] == "sage [concat, split grouped, edges same_creator]"
    assert labels[c] == "mlp [text+image, concat, split grouped, C&S]"
    assert labels[d] == "mlp [text, split magb]"
    assert row_labels([a])[a] == "sage [concat]"
