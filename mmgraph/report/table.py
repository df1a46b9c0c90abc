"""The results table: rows = models (with modalities, fusion, task, tuned), columns = data sets ×
test metrics, cells = mean ± std over the distinct seeds of every run folder of that row and
data set. Rendered as Markdown, CSV (one line per cell, fractions) and a LaTeX booktabs tabular.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from mmgraph.metrics import display_scale, mean_std
from mmgraph.report.collect import Collection, ReportError, RowKey, Run, SeedRecord
from mmgraph.report.flags import Entry, Flag, reproducibility_flags

DAGGER = "†"
MISSING = "–"
# Metric names people type for the names the tasks record.
ALIASES = {"acc": "accuracy", "f1": "macro_f1", "f1_macro": "macro_f1", "macro-f1": "macro_f1",
           "macro_f1_score": "macro_f1"}
# Directions for runs recorded before summaries carried the task's own (``higher_is_better``).
LOWER_IS_BETTER = {"loss", "mae", "mse", "rmse", "error", "mismatch", "mr"}
_MODALITY_ORDER = ("text", "image")


@dataclass
class Cell:
    mean: float
    std: float            # unbiased (n - 1); nan for one seed
    seeds: list[int]      # the distinct seeds the statistics are over
    best: bool = False
    scale: float = 100.0  # shown as mean * scale: percent, or 1 for mean ranks

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass
class Table:
    rows: list[RowKey]
    labels: dict[RowKey, str]
    datasets: list[str]
    metrics: list[str]
    cells: dict[tuple[RowKey, str, str], Cell]
    entries: dict[tuple[RowKey, str], list[tuple[Run, SeedRecord]]]   # all records, duplicates too
    flags: dict[RowKey, list[Flag]] = field(default_factory=dict)
    lower_is_better: set[str] = field(default_factory=set)   # recorded by the runs' tasks

    def label(self, row: RowKey, mark: bool = True) -> str:
        return self.labels[row] + (f" {DAGGER}" if mark and self.flags.get(row) else "")

    def used(self, row: RowKey, dataset: str) -> list[tuple[Run, SeedRecord]]:
        """The records a cell's statistics are over: the first record of each seed
        (run folders in path order)."""
        seen, out = set(), []
        for run, rec in self.entries.get((row, dataset), []):
            if rec.seed not in seen:
                seen.add(rec.seed)
                out.append((run, rec))
        return out

    def runs(self, row: RowKey, dataset: str) -> list[Run]:
        out: dict[int, Run] = {}
        for run, _ in self.entries.get((row, dataset), []):
            out.setdefault(id(run), run)
        return list(out.values())


def modality_rank(modalities: str) -> tuple:
    parts = modalities.split("+")
    return (len(parts), [(_MODALITY_ORDER.index(p) if p in _MODALITY_ORDER else len(_MODALITY_ORDER), p)
                         for p in parts])


def _row_order(key: RowKey) -> tuple:
    return (key.model, key.task, key.split, key.fusion != "none", key.fusion, modality_rank(key.modalities),
            -len(key.relations), key.relations, key.post, key.tuned)


def row_labels(rows: Sequence[RowKey]) -> dict[RowKey, str]:
    """Model name, plus the modalities when the model appears with several modality sets, the
    fusion when not ``none``, the task when the model appears with several tasks, the split
    when the table holds several, the relations when the model appears with several relation
    sets, the post-processing (``C&S``),
    and ``(tuned)`` for rows from a sweep's final re-run."""
    mods: dict[str, set[str]] = {}
    tasks: dict[str, set[str]] = {}
    splits = {r.split for r in rows}
    rels: dict[str, set[str]] = {}
    for r in rows:
        rels.setdefault(r.model, set()).add(r.relations)
        mods.setdefault(r.model, set()).add(r.modalities)
        tasks.setdefault(r.model, set()).add(r.task)
    out = {}
    for r in rows:
        extra = [r.modalities] * (len(mods[r.model]) > 1) + [r.fusion] * (r.fusion != "none") + \
                [r.task] * (len(tasks[r.model]) > 1) + [f"split {r.split}"] * (len(splits) > 1) + \
                [f"edges {r.relations or 'all'}"] * (len(rels[r.model]) > 1) + [r.post] * bool(r.post)
        out[r] = r.model + (f" [{', '.join(extra)}]" if extra else "") + (" (tuned)" if r.tuned else "")
    # two keys could still read alike (e.g. a task spelled differently); keep labels unique
    seen: dict[str, int] = {}
    for r in rows:
        seen[out[r]] = seen.get(out[r], 0) + 1
        if seen[out[r]] > 1:
            out[r] = f"{out[r]} #{seen[out[r]]}"
    return out


def resolve_metrics(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if not requested:
        return list(available)
    out = []
    for name in requested:
        name = name.strip()
        if not name:
            continue
        real = name if name in available else ALIASES.get(name.lower(), name.lower())
        if real not in available:
            raise ReportError(f"unknown metric {name!r}; the runs record: {', '.join(available)}", 2)
        if real not in out:
            out.append(real)
    if not out:
        raise ReportError(f"no metric named; the runs record: {', '.join(available)}", 2)
    return out


def selected_test(record: dict[str, Any], metric: str) -> float:
    sel = record.get("selected", {}).get(metric)
    if not isinstance(sel, dict) or sel.get("test") is None:
        return math.nan
    try:
        return float(sel["test"])
    except (TypeError, ValueError):
        return math.nan


def shown(value: float, scale: float = 100.0) -> str:
    return f"{value * scale:.2f}"


def build_table(collection: Collection, metrics: Sequence[str] | None = None) -> Table:
    """Pool the seed records of every (row, data set), compute the cells and the flags."""
    available: list[str] = []
    lower: set[str] = set()
    for run in collection.runs:
        available += [m for m in run.summary["metrics"] if m not in available]
        directions = run.summary.get("higher_is_better") or {}
        lower |= {m for m, higher in directions.items() if not higher}
    chosen = resolve_metrics(metrics, available)

    entries: dict[tuple[RowKey, str], list[tuple[Run, SeedRecord]]] = {}
    for run in collection.runs:
        for rec in run.records:
            entries.setdefault((run.key, run.dataset), []).append((run, rec))
    rows = sorted({k for k, _ in entries}, key=_row_order)
    datasets = sorted({d for _, d in entries})
    table = Table(rows=rows, labels=row_labels(rows), datasets=datasets, metrics=chosen, cells={},
                  entries=entries, lower_is_better=lower)
    for (row, ds) in entries:
        used = table.used(row, ds)
        for m in chosen:
            pairs = [(rec.seed, selected_test(rec.data, m)) for _, rec in used]
            pairs = [(s, v) for s, v in pairs if not math.isnan(v)]
            if pairs:
                mu, sd = mean_std([v for _, v in pairs])
                table.cells[(row, ds, m)] = Cell(mean=mu, std=sd, seeds=[s for s, _ in pairs],
                                                 scale=display_scale(m))
    mark_best(table)
    for row in rows:
        cells = {ds: [Entry(rec.source, rec.seed, rec.data) for _, rec in entries[(row, ds)]]
                 for ds in datasets if (row, ds) in entries}
        table.flags[row] = reproducibility_flags(cells)
    return table


def mark_best(table: Table) -> None:
    """Mark the best mean of each column (as shown, so equal shown values are all marked);
    columns with fewer than two cells mark nothing."""
    for ds in table.datasets:
        for m in table.metrics:
            col = [c for (r, d, mm), c in table.cells.items() if d == ds and mm == m and not math.isnan(c.mean)]
            if len(col) < 2:
                continue
            pick = min if m in table.lower_is_better or m.lower() in LOWER_IS_BETTER else max
            best = shown(pick(c.mean for c in col), col[0].scale)
            for c in col:
                c.best = shown(c.mean, c.scale) == best


def cell_text(cell: Cell | None) -> str:
    if cell is None or math.isnan(cell.mean):
        return MISSING
    return shown(cell.mean, cell.scale) + ("" if math.isnan(cell.std) else f" ± {shown(cell.std, cell.scale)}")


# -- Markdown ---------------------------------------------------------------------------------

def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(table: Table) -> str:
    head = ["model"] + [f"{ds} {m}" for ds in table.datasets for m in table.metrics]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for row in table.rows:
        cells = []
        for ds in table.datasets:
            for m in table.metrics:
                c = table.cells.get((row, ds, m))
                text = cell_text(c)
                cells.append(f"**{text}**" if c is not None and c.best else text)
        lines.append("| " + " | ".join([_md_escape(table.label(row))] + cells) + " |")
    return "\n".join(lines)


def flags_markdown(table: Table) -> str:
    flagged = [r for r in table.rows if table.flags.get(r)]
    if not flagged:
        return ""
    out = [f"Flags ({DAGGER}: the runs behind the row disagree on something needed to reproduce it):", ""]
    for row in flagged:
        out.append(f"- **{_md_escape(table.labels[row])}**")
        for f in table.flags[row]:
            out.append(f"  - {_md_escape(str(f))}")
    return "\n".join(out)


def notes_markdown(table: Table) -> str:
    runs = {id(run) for es in table.entries.values() for run, _ in es}
    records = sum(len(es) for es in table.entries.values())
    ns = sorted({c.n for c in table.cells.values()})
    seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    ranks = [m for m in table.metrics if display_scale(m) == 1.0]
    unit = f"in % ({', '.join(ranks)}: mean ranks)" if ranks else "in %"
    return (f"Test metrics {unit}, mean ± std (n − 1) over {seeds} distinct seeds per cell, selected on "
            f"validation; best mean per column in bold; {MISSING}: not run. From {len(runs)} run "
            f"folder{'s' * (len(runs) != 1)} ({records} seed records).")


# -- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = ["row", "model", "modalities", "fusion", "task", "tuned", "dataset", "metric", "mean", "std",
               "n_seeds", "seeds", "best", "flagged"]


def csv_text(table: Table) -> str:
    """One line per cell; mean and std as fractions (0..1) at full precision; ``best`` and
    ``flagged`` as ``true``/``false``; the row label carries the flag mark too."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row in table.rows:
        for ds in table.datasets:
            for m in table.metrics:
                c = table.cells.get((row, ds, m))
                if c is None:
                    continue
                w.writerow([table.label(row), row.model, row.modalities, row.fusion, row.task,
                            str(row.tuned).lower(), ds, m, repr(c.mean), "" if math.isnan(c.std) else repr(c.std),
                            c.n, " ".join(str(s) for s in c.seeds), str(c.best).lower(),
                            str(bool(table.flags.get(row))).lower()])
    return buf.getvalue()


# -- LaTeX ------------------------------------------------------------------------------------

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def _tex_cell(cell: Cell | None) -> str:
    if cell is None or math.isnan(cell.mean):
        return "--"
    text = shown(cell.mean, cell.scale) + ("" if math.isnan(cell.std) else rf" $\pm$ {shown(cell.std, cell.scale)}")
    return rf"\textbf{{{text}}}" if cell.best else text


def latex(table: Table, command: str = "") -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    k = len(table.metrics)
    spec = "l" + "c" * (k * len(table.datasets))
    lines = [f"% {command}" if command else "% python -m mmgraph.report",
             "% test metrics in %, mean $\\pm$ std over seeds; needs \\usepackage{booktabs}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    groups = [rf"\multicolumn{{{k}}}{{c}}{{{tex_escape(ds)}}}" for ds in table.datasets]
    lines.append(" & ".join([""] + groups) + r" \\")
    lines.append(" ".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(table.datasets))))
    lines.append(" & ".join(["Model"] + [tex_escape(m) for _ in table.datasets for m in table.metrics]) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        label = tex_escape(table.labels[row]) + (r"$^\dagger$" if table.flags.get(row) else "")
        cells = [_tex_cell(table.cells.get((row, ds, m))) for ds in table.datasets for m in table.metrics]
        lines.append(" & ".join([label] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
