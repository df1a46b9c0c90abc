"""Result records (one JSON per run) and the summary table; secrets masked in all of them
(:mod:`mmgraph.redact`)."""
from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from mmgraph.metrics import display_scale, mean_std
from mmgraph.paths import repo_root
from mmgraph.redact import redact


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("mmgraph", "torch", "torch_geometric", "numpy", "hydra-core", "omegaconf"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def machine() -> dict[str, Any]:
    """The machine a result was measured on: CPU, cores, threads torch used, GPU, host name."""
    import os

    import torch

    out: dict[str, Any] = {"system": platform.system(), "machine": platform.machine(),
                           "processor": _cpu_name(), "cores": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(), "host": platform.node()}
    if torch.cuda.is_available():
        out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return out


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> dict[str, Any]:
    """The commit of the checkout and whether it had uncommitted changes."""
    root = repo_root()
    if root is None:
        return {"commit": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}
    return {"commit": commit, "dirty": dirty}


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a killed run never leaves a half-written record), with passwords,
    tokens and other secrets masked (:func:`mmgraph.redact.redact`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(redact(obj), indent=2, default=lambda o: redact(str(o))))
    tmp.replace(path)


def summarize(runs: list[dict[str, Any]], metrics: Iterable[str], primary: str) -> dict[str, Any]:
    """Aggregate per-run selected metrics into mean and std for val and test."""
    out: dict[str, Any] = {}
    for m in metrics:
        for split in ("val", "test"):
            mu, sd = mean_std(r["selected"][m][split] for r in runs)
            out[f"{split}/{m}"] = {"mean": mu, "std": sd}
    out["epochs"] = mean_std(r["epochs"] for r in runs)[0]
    out["seconds_per_run"] = mean_std(r["seconds"] for r in runs)[0]
    out["primary"] = primary
    return out


def _cell(stat: dict[str, float], scale: float) -> str:
    if math.isnan(stat["mean"]):
        return "n/a"
    sd = "" if math.isnan(stat["std"]) else f" ± {stat['std'] * scale:.2f}"
    return f"{stat['mean'] * scale:.2f}{sd}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows of ``{"dataset", "model", "modalities", "runs", "summary", "metrics", "primary"}``
    as a Markdown table; metric values in percent (mean ranks as they are), mean ± unbiased std over runs. A ``fusion``
    column follows ``modalities`` when some row has a ``fusion`` other than ``none``."""
    if not rows:
        return ""
    metrics: list[str] = []
    for row in rows:
        metrics += [m for m in row["metrics"] if m not in metrics]
    primaries = []
    for row in rows:
        if row["primary"] not in primaries:
            primaries.append(row["primary"])
    fused = any(row.get("fusion", "none") != "none" for row in rows)
    head = ["dataset", "model", "modalities"] + ["fusion"] * fused + ["runs"] + [f"val {p}" for p in primaries] + \
           [f"test {m}" for m in metrics] + ["epochs", "s/run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for row in rows:
        s = row["summary"]
        cells = [row["dataset"], row["model"], row["modalities"]] + [row.get("fusion", "none")] * fused + \
                [str(row["runs"])]
        cells += [_cell(s[f"val/{p}"], display_scale(p)) if f"val/{p}" in s else "" for p in primaries]
        cells += [_cell(s[f"test/{m}"], display_scale(m)) if f"test/{m}" in s else "" for m in metrics]
        cells += [f"{s['epochs']:.0f}", f"{s['seconds_per_run']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return redact("\n".join(lines))


def command_line() -> str:
    """The command of this run, as a record keeps it (secrets masked)."""
    return redact(" ".join([Path(sys.executable).name, "-m", "mmgraph.bench", *sys.argv[1:]]))
