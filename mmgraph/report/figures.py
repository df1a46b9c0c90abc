"""Figures of a results table: the modality ablation and the learning curves, per data set.

Drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas (no pyplot, no global
backend); PNG at 150 dpi.
"""
from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any, Sequence

from mmgraph.report.collect import RowKey
from mmgraph.report.table import Table, modality_rank, selected_test

DPI = 150


def safe_name(text: str) -> str:
    """A file-name part: anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def new_figure(width: float, height: float, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # nothing cut off at the edges
    return path


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _primary(table: Table, row: RowKey, dataset: str) -> str:
    runs = table.runs(row, dataset)
    return runs[0].primary if runs else table.metrics[0]


def _by_primary(table: Table, dataset: str, rows: Sequence[RowKey]) -> dict[str, list[RowKey]]:
    out: dict[str, list[RowKey]] = {}
    for row in rows:
        out.setdefault(_primary(table, row, dataset), []).append(row)
    return out


# -- modality ablation -------------------------------------------------------------------------

def ablation_groups(table: Table, dataset: str) -> dict[tuple, list[RowKey]]:
    """Rows of ``dataset`` grouped by everything but the modalities; groups with >= 2 modality sets."""
    groups: dict[tuple, list[RowKey]] = {}
    for row in table.rows:
        if (row, dataset) in table.entries:
            groups.setdefault((row.model, row.fusion, row.tuned, row.task), []).append(row)
    return {k: sorted(v, key=lambda r: modality_rank(r.modalities)) for k, v in groups.items() if len(v) >= 2}


def _stat(table: Table, row: RowKey, dataset: str, metric: str) -> tuple[float, float, int]:
    values = [selected_test(rec.data, metric) for _, rec in table.used(row, dataset)]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan, 0
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd, len(values)


def ablation_figures(table: Table, out: Path) -> list[Path]:
    """``ablation_<dataset>.png``: per model (same fusion), one bar per modality set, mean test
    primary metric with ± std error bars. Only for data sets where some model has >= 2 sets."""
    written = []
    for ds in table.datasets:
        groups = ablation_groups(table, ds)
        if not groups:
            continue
        by_primary: dict[str, dict[tuple, list[RowKey]]] = {}
        for k, rows in groups.items():
            by_primary.setdefault(_primary(table, rows[0], ds), {})[k] = rows
        for metric, groups_m in by_primary.items():
            suffix = "" if len(by_primary) == 1 else f"_{safe_name(metric)}"
            written.append(_ablation(table, ds, metric, groups_m, out / f"ablation_{safe_name(ds)}{suffix}.png"))
    return written


def _group_label(key: tuple) -> str:
    model, fusion, tuned, _task = key
    return model + (f"\n{fusion}" if fusion != "none" else "") + ("\n(tuned)" if tuned else "")


def _ablation(table: Table, ds: str, metric: str, groups: dict[tuple, list[RowKey]], path: Path) -> Path:
    mod_sets = sorted({r.modalities for rows in groups.values() for r in rows}, key=modality_rank)
    colors = dict(zip(mod_sets, _colors(len(mod_sets))))
    keys = list(groups)
    fig, (ax,) = new_figure(max(5.0, 1.3 * len(keys) * len(mod_sets) / 2 + 2.5), 4.2)
    width = 0.8 / len(mod_sets)
    lows, highs, ns = [], [], set()
    for j, mods in enumerate(mod_sets):
        xs, ys, es = [], [], []
        for i, key in enumerate(keys):
            row = next((r for r in groups[key] if r.modalities == mods), None)
            if row is None:
                continue
            mu, sd, n = _stat(table, row, ds, metric)
            if math.isnan(mu):
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(mu * 100)
            es.append(sd * 100)
            ns.add(n)
        if not xs:
            continue
        bars = ax.bar(xs, ys, width * 0.92, yerr=es, capsize=3, color=colors[mods], label=mods,
                      error_kw={"elinewidth": 1})
        ax.bar_label(bars, labels=[f"{y:.1f}" for y in ys], padding=2, fontsize=7)
        lows += [y - e for y, e in zip(ys, es)]
        highs += [y + e for y, e in zip(ys, es)]
    if lows:
        lo = max(0.0, math.floor((min(lows) - 5) / 5) * 5)
        hi = min(100.0, max(highs) + 4) if max(highs) <= 100 else max(highs) * 1.05
        ax.set_ylim(lo, max(hi, lo + 1))
    ax.set_xticks(range(len(keys)), [_group_label(k) for k in keys])
    ax.set_ylabel(f"test {metric} (%)")
    ax.set_xlabel("model")
    seeds = f"{min(ns)}" if len(ns) == 1 else f"{min(ns)}–{max(ns)}"
    # the figure's title (not the axes'): it may be wider than the bars of one or two models
    fig.suptitle(f"Modality ablation on {ds}\ntest {metric}, mean ± std over {seeds} seeds", fontsize=10)
    ax.legend(title="modalities", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)


# -- learning curves ---------------------------------------------------------------------------

def curve(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and std (0 for one value) of ``key`` over the seeds that reached each epoch."""
    at: dict[int, list[float]] = {}
    for hist in histories:
        for row in hist:
            v = row.get(key)
            if isinstance(v, (int, float)) and not math.isnan(v) and "epoch" in row:
                at.setdefault(int(row["epoch"]), []).append(float(v))
    epochs = sorted(at)
    means = [statistics.fmean(at[e]) for e in epochs]
    stds = [statistics.stdev(at[e]) if len(at[e]) > 1 else 0.0 for e in epochs]
    return epochs, means, stds


def curve_figures(table: Table, out: Path) -> list[Path]:
    """``curves_<dataset>.png``: validation primary metric and training loss against epoch, mean
    over seeds with a ± std band, one line per row."""
    written = []
    for ds in table.datasets:
        rows = [r for r in table.rows if (r, ds) in table.entries]
        groups = _by_primary(table, ds, rows)
        for metric, rows_m in groups.items():
            suffix = "" if len(groups) == 1 else f"_{safe_name(metric)}"
            path = _curves(table, ds, metric, rows_m, out / f"curves_{safe_name(ds)}{suffix}.png")
            if path is not None:
                written.append(path)
    return written


def _curves(table: Table, ds: str, metric: str, rows: Sequence[RowKey], path: Path) -> Path | None:
    fig, (ax_val, ax_loss) = new_figure(11, 4.6 + 0.2 * math.ceil(len(rows) / 4), ncols=2)
    drawn = False
    for row, color in zip(rows, _colors(len(rows))):
        hists = [rec.data.get("history") or [] for _, rec in table.used(row, ds)]
        hists = [h for h in hists if isinstance(h, list)]
        label = f"{table.label(row)} (n={len(hists)})"
        for ax, key, scale in ((ax_val, f"val/{metric}", 100.0), (ax_loss, "loss", 1.0)):
            epochs, mu, sd = curve(hists, key)
            if not epochs:
                continue
            drawn = True
            ax.plot(epochs, [m * scale for m in mu], color=color, lw=1.4, label=label)
            ax.fill_between(epochs, [(m - s) * scale for m, s in zip(mu, sd)],
                            [(m + s) * scale for m, s in zip(mu, sd)], color=color, alpha=0.2, lw=0)
    if not drawn:
        return None
    ax_val.set_title(f"{ds}: validation {metric}", fontsize=10)
    ax_val.set_ylabel(f"validation {metric} (%)")
    ax_loss.set_title(f"{ds}: training loss", fontsize=10)
    ax_loss.set_ylabel("training loss")
    for ax in (ax_val, ax_loss):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    handles, labels = ax_val.get_legend_handles_labels()
    if not handles:
        handles, labels = ax_loss.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=min(4, len(labels)))
    fig.suptitle(f"Learning curves on {ds}: mean ± std over seeds (seeds that stopped early drop out)",
                 fontsize=10)
    return save(fig, path)
