"""The tables of models/clinical.md from the run folders of clinical_study.sh.

One table per cohort: a row per model or peer, a column per simulated missingness rate, each cell
the test C-index (x100, mean ± std over the cross-validation folds; the fixed-horizon AUC in a
second table). Then the goal check: on complete data (rate 0), is the prompted model within the
fold-to-fold noise of the best peer (the paired difference over the same folds: mean ± standard
error)? And as missingness grows, does it lose less C-index than the best peer (drop from rate 0,
paired by fold)? Folders without a summary are listed as not run.

    .venv/bin/python benchmarks/clinical_tables.py results/clinical [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

from mmgraph.bench.records import mean_std  # noqa: E402

MODELS = ["prompted", "rgcn", "hgt", "mlp-concat", "mlp-late", "coxph", "rsf"]
PEERS = ["coxph", "rsf"]


def fold_values(folder: Path, metric: str) -> dict[int, float]:
    """Test ``metric`` of every CV run of a finished row (one with a summary.json), keyed by the
    run's seed (= the fold)."""
    out = {}
    if not (folder / "summary.json").is_file():
        return out
    for path in sorted((folder / "runs").glob("seed_*.json")):
        rec = json.loads(path.read_text())
        out[int(rec["seed"])] = float(rec["selected"][metric]["test"])
    return out


def cell(values: dict[int, float]) -> str:
    mu, sd = mean_std(list(values.values()))
    return "-" if math.isnan(mu) else f"{100 * mu:.2f} ± {100 * sd:.2f}"


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """Mean and standard error of ``a - b`` over the folds both have (x100)."""
    diffs = [a[k] - b[k] for k in a if k in b and not math.isnan(a[k]) and not math.isnan(b[k])]
    if len(diffs) < 2:
        return math.nan, math.nan, len(diffs)
    return 100 * statistics.fmean(diffs), 100 * statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = _provenance.header(f"Clinical study tables from {args.root}")
    lines += ["The runs' own commits, dates and machines are in their records (runs/seed_*.json). "
              "Cells: test metric x100, mean ± std over the cross-validation runs (folds x repeats).", ""]
    cohorts = sorted(p.name for p in args.root.iterdir() if p.is_dir() and any(p.glob("missing_*")))
    for cohort in cohorts:
        rates = sorted((p.name.removeprefix("missing_") for p in (args.root / cohort).glob("missing_*")), key=float)
        runs = {(m, r): fold_values(args.root / cohort / f"missing_{r}" / m, "c_index") for m in MODELS for r in rates}
        aucs = {(m, r): fold_values(args.root / cohort / f"missing_{r}" / m, "auc_h") for m in MODELS for r in rates}
        for title, table in (("C-index", runs), ("AUC at the horizon", aucs)):
            lines += [f"### {cohort}: test {title}", "",
                      "| model | " + " | ".join(f"{float(r):.0%} missing" for r in rates) + " |",
                      "|---|" + "---|" * len(rates)]
            for m in MODELS:
                if any(table[(m, r)] for r in rates):
                    lines.append(f"| {m} | " + " | ".join(cell(table[(m, r)]) for r in rates) + " |")
            lines.append("")
        not_run = [f"{m}@{r}" for m in MODELS for r in rates if not runs[(m, r)]]
        if not_run:
            lines += [f"Not run yet: {', '.join(not_run)}.", ""]
        lines += goal(cohort, rates, runs)
    _provenance.emit(lines, args.out)


def goal(cohort: str, rates: list[str], runs: dict) -> list[str]:
    """The goal check for one cohort (paired over folds)."""
    base = rates[0]
    peers = [p for p in PEERS if runs[(p, base)]]
    if not runs[("prompted", base)] or not peers:
        return []
    best = max(peers, key=lambda p: mean_std(list(runs[(p, base)].values()))[0])
    mu, se, n = paired(runs[("prompted", base)], runs[(best, base)])
    out = [f"Goal check ({cohort}): best peer on complete data = {best}; prompted - {best} at "
           f"{float(base):.0%}: {mu:+.2f} ± {se:.2f} (mean ± s.e. over {n} paired runs)."]
    for r in rates[1:]:
        if not runs[("prompted", r)] or not runs[(best, r)]:
            continue
        drop_p = paired(runs[("prompted", base)], runs[("prompted", r)])
        drop_b = paired(runs[(best, base)], runs[(best, r)])
        diff = paired({k: runs[("prompted", r)][k] - runs[(best, r)][k] for k in runs[("prompted", r)]
                       if k in runs[(best, r)]},
                      {k: runs[("prompted", base)][k] - runs[(best, base)][k] for k in runs[("prompted", base)]
                       if k in runs[(best, base)]})
        out.append(f"- {float(r):.0%} missing: C-index lost from 0 %: prompted {drop_p[0]:.2f} ± {drop_p[1]:.2f}, "
                   f"{best} {drop_b[0]:.2f} ± {drop_b[1]:.2f}; prompted - {best} gains {diff[0]:+.2f} ± "
                   f"{diff[1]:.2f} relative to 0 %.")
    return out + [""]


if __name__ == "__main__":
    main()
