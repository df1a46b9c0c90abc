"""Paired comparisons for the study tables: the mean difference over matched runs (the same seeds
or folds), its standard error and the two-sided 95 % confidence interval from Student's t with
n - 1 degrees of freedom (scipy), so that "beyond noise" means the interval excludes 0."""
from __future__ import annotations

import math
import statistics


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
