"""``make_report``: stored runs -> tables (Markdown, CSV, LaTeX), flags and figures."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from mmgraph.redact import redact
from mmgraph.report.collect import Collection, collect
from mmgraph.report.table import Table, build_table, csv_text, flags_markdown, latex, markdown, notes_markdown


def _stderr(message: str) -> None:
    print(f"mmgraph.report: {message}", file=sys.stderr, flush=True)


@dataclass
class Report:
    collection: Collection
    table: Table
    markdown: str
    out: Path
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def report_markdown(table: Table, collection: Collection) -> str:
    from mmgraph.report.studies import study_summary

    parts = [markdown(table), notes_markdown(table)]
    flags = flags_markdown(table)
    if flags:
        parts.append(flags)
    if collection.studies:
        parts.append("Sweeps:\n\n" + "\n".join(f"- {study_summary(s)}" for s in collection.studies))
    return "\n\n".join(parts) + "\n"


FIGURE_PATTERNS = ("ablation_*.png", "curves_*.png", "study_*_history.png", "study_*_importance.png")


def old_figures(out: Path) -> list[Path]:
    """The figures an earlier report left in ``out`` (a folder with its ``table.md``); they would
    not match the new tables."""
    if not (out / "table.md").is_file():
        return []
    return sorted({p for pattern in FIGURE_PATTERNS for p in out.glob(pattern) if p.is_file()})


def make_report(runs_dir: str | Path, out: str | Path | None = None, metrics: Sequence[str] | None = None,
                plots: bool = True, log: Callable[[str], None] = _stderr, command: str = "") -> Report:
    """Read every run below ``runs_dir`` and write ``table.md``, ``table.csv``, ``table.tex`` and
    (unless ``plots`` is false) the figures into ``out`` (default ``<runs_dir>/report``).

    Warnings (unreadable files, studies that cannot be drawn) go to ``log`` as they happen and
    are collected in ``Report.warnings``. Raises :class:`~mmgraph.report.collect.ReportError`.
    """
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        log(f"warning: {message}")

    collection = collect(runs_dir, warn=warn)
    n_rec = sum(len(r.records) for r in collection.runs)
    log(f"read {len(collection.runs)} run folder{'s' * (len(collection.runs) != 1)} ({n_rec} seed records) and "
        f"{len(collection.studies)} stud{'ies' if len(collection.studies) != 1 else 'y'} under {collection.root}")
    table = build_table(collection, metrics)
    out = Path(out) if out is not None else collection.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    stale = old_figures(out)
    for path in stale:
        path.unlink()
    if stale:
        log(f"removed {len(stale)} figure{'s' * (len(stale) != 1)} of an earlier report in {out}")
    # Records written before secrets were masked may still hold one (a config value, a URL).
    text = redact(report_markdown(table, collection))
    files = []
    for name, content in (("table.md", text), ("table.csv", redact(csv_text(table))),
                          ("table.tex", redact(latex(table, command)))):
        (out / name).write_text(content)
        files.append(out / name)
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            warn("matplotlib is not installed: no figures (pip install matplotlib, or --no-plots)")
            plots = False
    if plots:
        from mmgraph.report.figures import ablation_figures, curve_figures
        from mmgraph.report.studies import study_figures

        files += ablation_figures(table, out)
        files += curve_figures(table, out)
        repeated = {s.name for s in collection.studies if [t.name for t in collection.studies].count(s.name) > 1}
        for study in collection.studies:  # studies of one name in several folders: name the files by folder
            label = f"{study.name}-{study.source}" if study.name in repeated else None
            files += study_figures(study, out, warn, label=label)
    flagged = sum(bool(table.flags.get(r)) for r in table.rows)
    if flagged:
        log(f"{flagged} of {len(table.rows)} rows flagged (see Flags in {out / 'table.md'})")
    log(f"wrote {len(files)} files to {out}")
    return Report(collection=collection, table=table, markdown=text, out=out, files=files, warnings=warnings)
