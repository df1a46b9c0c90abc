"""Run ``python -m mmgraph.bench`` commands and write their result tables with provenance.

Each RUNNER_ARGS is one runner command line without ``python -m mmgraph.bench`` (quote it as one
argument); the commands run one after another, each into its own folder below ``--keep`` (default
a temporary folder), and every ``summary.json`` they write becomes a row of one table
(``mmgraph.bench.records.markdown_table``, the table the runner prints). Per run the results
file also lists the seeds, the selected epochs, the last epoch's training loss, the training
accuracy at the selected epoch, and the commit, dirty flag, machine and date its records carry.

    .venv/bin/python benchmarks/runner_tables.py --title "..." --env OMP_NUM_THREADS=1 \\
        --out benchmarks/results/NAME.md 'dataset=synthetic model=gcn trainer=fast runs=1' ...
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT


def run_one(args: str, folder: Path, env: dict[str, str]) -> float:
    argv = shlex.split(args)
    dirs = [f"hydra.sweep.dir={folder}", "hydra.sweep.subdir=${hydra.job.num}"] if "--multirun" in argv \
        else [f"hydra.run.dir={folder}"]
    cmd = [sys.executable, "-m", "mmgraph.bench", *argv, *dirs, "trainer.progress=false"]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"runner failed ({proc.returncode}): {args}")
    return time.time() - t0


def details(summary_path: Path) -> list[str]:
    out = []
    for rec_path in sorted((summary_path.parent / "runs").glob("seed_*.json")):
        rec = json.loads(rec_path.read_text())
        sel = rec["selected"][next(iter(rec["selected"]))]
        last = rec["history"][-1]
        m = rec.get("machine", {})
        g = rec.get("git", {})
        out.append(f"seed {rec['seed']}: selected epoch {sel['epoch']} of {rec['epochs']}, train "
                   f"accuracy there {sel.get('train', float('nan')) * 100:.2f}, last training loss "
                   f"{last['loss']:.3f}; {rec['seconds']:.1f} s; commit {g.get('commit', '?')[:7]}"
                   f"{' (dirty)' if g.get('dirty') else ''}, {m.get('processor', '?')} "
                   f"{m.get('cores', '?')} cores {m.get('torch_threads', '?')} threads, {rec.get('date', '?')}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commands", nargs="+", metavar="RUNNER_ARGS")
    ap.add_argument("--title", default="Runner results")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the runner processes")
    ap.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    env = dict(e.split("=", 1) for e in args.env)
    from mmgraph.bench.records import markdown_table

    lines = _provenance.header(args.title)
    lines += ["Runner commands (each `python -m mmgraph.bench ...` with "
              + (" ".join(f"`{k}={v}`" for k, v in env.items()) or "the default environment")
              + "; the script adds the output folder and `trainer.progress=false`):", ""]
    lines += [f"{i + 1}. `python -m mmgraph.bench {c}`" for i, c in enumerate(args.commands)] + [""]
    base = args.keep or Path(tempfile.mkdtemp(prefix="mmgraph-runner-tables-"))
    rows, notes, walls = [], [], []
    for i, c in enumerate(args.commands):
        folder = base / f"cmd{i}"
        walls.append(run_one(c, folder, env))
        for s in sorted(folder.rglob("summary.json"), key=lambda p: p.stat().st_mtime):
            row = json.loads(s.read_text())
            rows.append(row)
            notes.append(f"- command {i + 1}, {row['model']} {row['modalities']} fusion {row.get('fusion', 'none')}: "
                         + "; ".join(details(s)))
        print(f"done ({walls[-1]:.0f} s): {c}", flush=True)
    lines += [markdown_table(rows), "",
              "Test and validation values in %, mean ± unbiased std over seeds; epochs = mean number of "
              "epochs trained; s/run = the trainer's own clock per seed. Rows in the order of the commands.",
              "", "Per run:", ""] + notes
    lines += ["", f"Wall time per command (s, start-up included): {[round(w) for w in walls]}; "
              f"load average at end: {_provenance.load()}.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
