"""Stored runs -> paper-style tables and figures: ``python -m mmgraph.report <runs-dir>``.

Reads the ``summary.json`` / ``runs/seed_<s>.json`` records the benchmark runner writes (and
the ``study.json`` of sweeps), pools the seed records of each (row, data set), flags rows whose
records disagree on what is needed to reproduce them (:func:`reproducibility_flags`), and
writes ``table.md``, ``table.csv``, ``table.tex`` and PNG figures.
"""
from mmgraph.report.collect import Collection, ReportError, RowKey, collect
from mmgraph.report.flags import Entry, Flag, reproducibility_flags
from mmgraph.report.report import Report, make_report
from mmgraph.report.table import Table, build_table

__all__ = ["Collection", "Entry", "Flag", "Report", "ReportError", "RowKey", "Table", "build_table", "collect",
           "make_report", "reproducibility_flags"]
