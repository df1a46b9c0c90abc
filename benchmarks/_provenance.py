"""What every results file states: command, commit (and whether the tree was dirty), machine,
date and load average. Used by the benchmark scripts of this folder; standard library only."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=30).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return ""


def commit() -> str:
    """Short commit of the checkout, with the tracked files that differ from it."""
    head = _git("rev-parse", "--short", "HEAD").strip() or "unknown (not a git checkout)"
    changed = [line[3:] for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()]
    if not changed:
        return f"{head} (clean tree)"
    groups: dict[str, int] = {}
    for path in changed:
        top = path.split("/", 1)[0] + ("/" if "/" in path else "")
        groups[top] = groups.get(top, 0) + 1
    shown = ", ".join(f"{n} in {top}" if top.endswith("/") else top for top, n in sorted(groups.items()))
    return f"{head} plus uncommitted changes to tracked files ({shown})"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, IndexError, ValueError):
        pass
    versions = f"Python {platform.python_version()}"
    try:
        import torch
        versions += f", torch {torch.__version__} ({torch.get_num_threads()} torch threads)"
    except ImportError:
        pass
    return f"{os.cpu_count()} CPUs ({model}){mem}, {platform.machine()}; {versions}"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command() -> str:
    return " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv])


def header(title: str, cmd: str | None = None) -> list[str]:
    """Markdown lines for the top of a results file (call it when the measurement starts)."""
    return [f"# {title}", "",
            f"- command (from the repository root): `{cmd or command()}`",
            f"- commit: {commit()}",
            f"- machine: {machine()}",
            f"- date: {now()}",
            f"- load average (1, 5, 15 min) at start: {load()}", ""]


def emit(lines: list[str], out: Path | None) -> None:
    """Print the results file's lines and write them to ``out`` when given."""
    text = "\n".join(lines)
    print(text)
    if out:
        Path(out).write_text(text)


def sparse_product() -> str:
    """Which sparse-dense product mmgraph's ``Adjacency`` runs here (results depend on it)."""
    from mmgraph.nn import cpu_spmm

    return ("mmgraph's compiled CPU kernel (mmgraph/nn/cpu_spmm.py)" if cpu_spmm.kernel_available()
            else "torch's CSR product (the compiled kernel is not available)")
