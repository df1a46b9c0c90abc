"""The tables of models/clinical.md from the run folders of clinical_study.sh.

One table per cohort: a row per model or peer, a column per simulated missingness setting (rates
completely at random, ``missing_<rate>``; then not at random, ``mnar_outcome_<rate>``), each cell
the test C-index (x100, mean ± std over the cross-validation folds; the fixed-horizon AUC in a
second table). Then the goal check, against each peer (none is picked as "the best" by its test
values): on complete data (rate 0), the prompted model minus the peer (paired over the same
folds: mean and 95 % t interval); and as missingness grows, the C-index each loses from rate 0
and whether the prompted model's loss differs from the peer's beyond noise. Folders without a summary are listed as not run.

    .venv/bin/python benchmarks/clinical_tables.py results/clinical [--out FILE]
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

from _paired import beyond_noise, describe, paired, per_seed  # noqa: E402
from mmgraph.metrics import mean_std  # noqa: E402

MODELS = ["prompted", "rgcn", "hgt", "mlp-concat", "mlp-late", "coxph", "rsf"]
PEERS = ["coxph", "rsf"]


def cell(values: dict[int, float]) -> str:
    mu, sd = mean_std(list(values.values()))
    return "-" if math.isnan(mu) else f"{100 * mu:.2f} ± {100 * sd:.2f}"


def paired_runs(a: dict[int, float], b: dict[int, float]) -> dict[str, float]:
    """``a - b`` (x100) over the runs (folds) both have: mean and 95 % t interval."""
    return paired([100 * (a[k] - b[k]) for k in a if k in b])


MECHANISMS = {"missing": "missing", "mnar_outcome": "MNAR (outcome)", "mnar_covariate": "MNAR (covariate)"}


def columns(folder: Path) -> list[tuple[str, str]]:
    """``(subfolder, label)`` of a cohort's settings, ``<mechanism>[-<where>]_<rate>``: completely
    at random (``missing_<rate>``) by rate first, then not at random (``mnar_outcome_<rate>``;
    ``-train`` / ``-test`` when only those folds lose modalities)."""
    found = []
    for p in folder.iterdir():
        m = re.fullmatch(r"(missing|mnar_outcome|mnar_covariate)(?:-(train|test))?_([0-9.]+)", p.name)
        if p.is_dir() and m:
            mech, where, rate = m.group(1), m.group(2) or "", m.group(3)
            label = f"{float(rate):.0%} {MECHANISMS[mech]}" + (f", {where} folds only" if where else "")
            found.append(((list(MECHANISMS).index(mech), where, float(rate)), p.name, label))
    return [(name, label) for _, name, label in sorted(found)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = _provenance.header(f"Clinical study tables from {args.root}")
    lines += ["The runs' own commits, dates and machines are in their records (runs/seed_*.json). "
              "Cells: test metric x100, mean ± std over the cross-validation runs (folds x repeats). "
              "'missing': completely at random; 'MNAR (outcome)': patients with worse outcomes lose "
              "a modality more often (task.missing.mechanism=mnar_outcome).", ""]
    cohorts = sorted(p.name for p in args.root.iterdir() if p.is_dir() and any(p.glob("missing_*")))
    for cohort in cohorts:
        cols = columns(args.root / cohort)
        runs = {(m, c): per_seed(args.root / cohort / c / m, "c_index") for m in MODELS for c, _ in cols}
        aucs = {(m, c): per_seed(args.root / cohort / c / m, "auc_h") for m in MODELS for c, _ in cols}
        for title, table in (("C-index", runs), ("AUC at the horizon", aucs)):
            lines += [f"### {cohort}: test {title}", "",
                      "| model | " + " | ".join(label for _, label in cols) + " |",
                      "|---|" + "---|" * len(cols)]
            for m in MODELS:
                if any(table[(m, c)] for c, _ in cols):
                    lines.append(f"| {m} | " + " | ".join(cell(table[(m, c)]) for c, _ in cols) + " |")
            lines.append("")
        not_run = [f"{m}@{c}" for m in MODELS for c, _ in cols if not runs[(m, c)]]
        if not_run:
            lines += [f"Not run yet: {', '.join(not_run)}.", ""]
        lines += goal(cohort, cols, runs)
    _provenance.emit(lines, args.out)


def goal(cohort: str, cols: list[tuple[str, str]], runs: dict) -> list[str]:
    """The goal check for one cohort, paired over the same folds, against every peer (no peer is
    chosen as "the best" by its test values); the first column is complete data."""
    (base, base_label), rest = cols[0], cols[1:]
    peers = [p for p in PEERS if runs[(p, base)]]
    if base != "missing_0" or not runs[("prompted", base)] or not peers:
        return []
    out = [f"Goal check ({cohort}), C-index x100 paired over folds, against each peer:"]
    for peer in peers:
        out.append(f"- {base_label}: prompted - {peer} = "
                   f"{describe(paired_runs(runs[('prompted', base)], runs[(peer, base)]))}")
        for c, label in rest:
            if not runs[("prompted", c)] or not runs[(peer, c)]:
                continue
            lost_p = paired_runs(runs[("prompted", base)], runs[("prompted", c)])
            lost_b = paired_runs(runs[(peer, base)], runs[(peer, c)])
            gap = {k: runs[("prompted", c)][k] - runs[(peer, c)][k] for k in runs[("prompted", c)]
                   if k in runs[(peer, c)]}
            gap0 = {k: runs[("prompted", base)][k] - runs[(peer, base)][k] for k in runs[("prompted", base)]
                    if k in runs[(peer, base)]}
            out.append(f"  - {label}: lost from complete data: prompted {describe(lost_p)}, {peer} "
                       f"{describe(lost_b)}; prompted's loss minus {peer}'s: "
                       f"{describe(paired_runs(gap0, gap))}, beyond noise: {beyond_noise(paired_runs(gap0, gap))}")
    return out + [""]


if __name__ == "__main__":
    main()
