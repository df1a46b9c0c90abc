"""Sweep throughput: trials per hour with N worker processes against 1, the same trials in both.

Usage::

    python benchmarks/sweep_throughput.py                       # GAT on openclipart, 6 trials, 1 vs 2 workers
    python benchmarks/sweep_throughput.py --trials 4 --max-epochs 50 --dataset synthetic --model gcn --space gnn

For every worker count the script makes a fresh study (SQLite, as a sweep does by default) and
enqueues the same ``--trials`` configurations, drawn once from the search space
``configs/sweep/<space>.yaml`` by a seeded random sampler. Every trial trains exactly
``--max-epochs`` epochs (no early stopping, no pruner), so each worker count does the same work.
Then it runs the real command line,

    python -m mmgraph.bench sweep=<space> model=<model> dataset=<dataset> sweep.workers=<N> ...

(``sweep.final_seeds=0``: no re-run) and times it from start to exit: start-up, loading the data
and features (cached) in every worker, and the trials. Trials per hour = trials / wall time. The
workers split the CPU cores (``threads = cores / workers``, the sweep's default). Also reported:
the mean seconds inside a trial (``seconds`` of the trials) and the ratio of the throughputs.

The result is written as Markdown to ``--out`` (appending) and printed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def overrides(args, workers: int, folder: Path) -> list[str]:
    return [f"dataset={args.dataset}", f"model={args.model}", f"sweep={args.space}",
            f"sweep.trials={args.trials}", f"sweep.workers={workers}", "sweep.final_seeds=0",
            f"sweep.dir={folder}", "sweep.pruner.kind=none", "sweep.poll=1",
            f"trainer.max_epochs={args.max_epochs}", "trainer.patience=null", "trainer.progress=false",
            *args.extra]


def configurations(args) -> list[dict]:
    """``--trials`` configurations of the search space, from a seeded random sampler."""
    import optuna
    from hydra import compose, initialize_config_dir

    import mmgraph.bench  # noqa: F401  (config resolvers)
    from mmgraph.bench.sweep import parse_space
    from mmgraph.paths import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides(args, 1, Path("unused")))
    space = parse_space(cfg.sweep.params, cfg)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    out = []
    for _ in range(args.trials):
        trial = study.ask()
        out.append({p.key: p.suggest(trial) for p in space})
        study.tell(trial, 0.0)
    return out


def measure(args, workers: int, configs: list[dict], folder: Path) -> dict:
    import optuna
    from hydra import compose, initialize_config_dir

    from mmgraph.bench.sweep import open_study, settings_of
    from mmgraph.paths import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides(args, workers, folder))
    study = open_study(cfg, settings_of(cfg))
    for params in configs:
        study.enqueue_trial(params)
    cmd = [sys.executable, "-m", "mmgraph.bench", *overrides(args, workers, folder),
           f"hydra.run.dir={folder / 'hydra'}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"workers={workers} failed:\n{proc.stderr[-3000:]}")
    trials = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    return {"workers": workers, "wall": wall, "trials": len(trials),
            "trial_seconds": statistics.fmean(t.user_attrs["seconds"] for t in trials),
            "per_hour": len(trials) / wall * 3600, "threads": settings_of(cfg).threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="openclipart")
    parser.add_argument("--model", default="gat")
    parser.add_argument("--space", default="gat")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, the first is the baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweep_throughput.md"))
    parser.add_argument("extra", nargs="*", help="more overrides for the runs (key=value)")
    args = parser.parse_args()
    configs = configurations(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmgraph-sweep-bench-") as tmp:
        for w in [int(x) for x in args.workers.split(",")]:
            row = measure(args, w, configs, Path(tmp) / f"workers{w}")
            rows.append(row)
            print(f"workers={w}: {row['trials']} trials in {row['wall']:.1f} s = {row['per_hour']:.1f} trials/h "
                  f"({row['trial_seconds']:.1f} s per trial inside, {row['threads']} threads per worker)", flush=True)
    base = rows[0]["per_hour"]
    command = "python benchmarks/sweep_throughput.py " + " ".join(sys.argv[1:])
    lines = [f"## {dt.datetime.now():%Y-%m-%d %H:%M} — {args.model} on {args.dataset}, {args.trials} trials of "
             f"{args.max_epochs} epochs", "",
             f"`{command.strip()}` on {platform.machine()}, {os.cpu_count()} CPU cores, Python "
             f"{platform.python_version()}", "",
             "| workers | threads each | wall s | trials/hour | s per trial (inside) | throughput vs 1 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['threads']} | {r['wall']:.1f} | {r['per_hour']:.1f} | "
                     f"{r['trial_seconds']:.1f} | {r['per_hour'] / base:.2f}× |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as fh:
        fh.write(("\n" if out.stat().st_size else "") + text if out.exists() else text)


if __name__ == "__main__":
    main()
