"""Paired comparisons for the study tables: each run's test value read from a row's records, the
mean difference over matched runs (the same seeds or folds), its standard error and the two-sided
95 % confidence interval from Student's t with n - 1 degrees of freedom (scipy), so that "beyond
noise" means the interval excludes 0."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path


def per_seed(folder: Path, metric: str) -> dict[int, float]:
    """Test ``metric`` (at the epoch selected on validation) of every run of a finished row (one
    with a summary.json), keyed by the run's seed; ``{}`` for an unfinished row."""
    if not (folder / "summary.json").is_file():
        return {}
    out = {}
    for path in sorted((folder / "runs").glob("seed_*.json")):
        rec = json.loads(path.read_text())
        out[int(rec["seed"])] = float(rec["selected"][metric]["test"])
    return out


def paired(diffs: list[float]) -> dict[str, float]:
    """``{"n", "mean", "se", "low", "high"}`` of the differences (NaN ones left out)."""
    from scipy.stats import t

    diffs = [d for d in diffs if not math.isnan(d)]
    n = len(diffs)
    if n < 2:
        return {"n": n, "mean": math.nan, "se": math.nan, "low": math.nan, "high": math.nan}
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n)
    half = float(t.ppf(0.975, n - 1)) * se
    return {"n": n, "mean": mean, "se": se, "low": mean - half, "high": mean + half}


def describe(p: dict[str, float], digits: int = 2) -> str:
    """``+1.23 (95 % CI +0.10 .. +2.36, n = 10)``."""
    if math.isnan(p["mean"]):
        return f"n/a (n = {p['n']})"
    return (f"{p['mean']:+.{digits}f} (95 % CI {p['low']:+.{digits}f} .. {p['high']:+.{digits}f}, "
            f"n = {p['n']})")


def beyond_noise(p: dict[str, float]) -> str:
    if math.isnan(p["mean"]):
        return "n/a"
    return "yes" if p["low"] > 0 or p["high"] < 0 else "no"
