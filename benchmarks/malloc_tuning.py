"""The runner's glibc malloc settings (``mmgraph/_malloc.py``) against glibc's defaults.

Runs the same full-batch training through ``python -m mmgraph.bench`` twice per round: as is
(the entry point tunes malloc) and with ``MMGRAPH_KEEP_MALLOC=1`` (glibc's defaults), the order
alternating between rounds. Default: GraphSAGE on openclipart (text + image features, which must
be cached already: run ``python -m mmgraph.features dataset=openclipart`` first), one seed, a
fixed number of epochs (no early stopping). Time per epoch = the trainer's own clock
(``summary.json``: seconds per run / epochs; every epoch is one training step and one evaluation
of the three splits), so start-up and feature loading are not in it. Also per command, from
``getrusage(RUSAGE_CHILDREN)``: user and system CPU seconds (start-up included, the same on
both sides), minor page faults (what the settings avoid) and peak RSS.

    .venv/bin/python benchmarks/malloc_tuning.py [--rounds 3] [--epochs 30] [--out FILE] [-- RUNNER ARGS]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT


def run(args: list[str], keep_malloc: bool, folder: Path) -> tuple[float, float, float, float, float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("MMGRAPH_KEEP_MALLOC", None)
    if keep_malloc:
        env["MMGRAPH_KEEP_MALLOC"] = "1"
    cmd = [sys.executable, "-m", "mmgraph.bench", *args, f"hydra.run.dir={folder}", "trainer.progress=false"]
    t0 = time.time()
    # a child of our own, so RUSAGE_CHILDREN's ru_maxrss is the largest of our children so far:
    # run each command in a fresh intermediate process to read its own peak
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(u.ru_maxrss, u.ru_utime, u.ru_stime, u.ru_minflt); sys.exit(r)")
    proc = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"runner failed ({proc.returncode})")
    maxrss, utime, stime, minflt = proc.stdout.strip().splitlines()[-1].split()
    s = json.loads((folder / "summary.json").read_text())["summary"]
    return (s["seconds_per_run"] / s["epochs"], wall, int(maxrss) / 1024, float(utime), float(stime),
            int(minflt))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("runner_args", nargs="*", default=None)
    args = ap.parse_args()
    runner = args.runner_args or ["dataset=openclipart", "model=sage", "runs=1"]
    runner = [*runner, f"trainer.max_epochs={args.epochs}", "trainer.patience=null"]
    lines = _provenance.header("glibc malloc settings of the runner vs glibc's defaults")
    lines += [f"Runner command: `python -m mmgraph.bench {' '.join(runner)}` (plus the output folder and "
              "`trainer.progress=false`), once as is (tuned) and once with `MMGRAPH_KEEP_MALLOC=1` "
              "(glibc defaults) per round, alternating the order; no `MALLOC_*` variable set; "
              f"`OMP_NUM_THREADS` {os.environ.get('OMP_NUM_THREADS', 'unset (torch: one thread per core)')}.", "",
              "| round | side | s per epoch (trainer) | command wall s | command user CPU s | command system CPU s "
              "| minor page faults | peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    base = Path(tempfile.mkdtemp(prefix="mmgraph-malloc-"))
    per = {"tuned": [], "defaults": []}
    cpu = {"tuned": [], "defaults": []}
    ratios, cpu_ratios = [], []
    t0 = time.time()
    for r in range(args.rounds):
        order = [("tuned", False), ("defaults", True)]
        if r % 2:
            order.reverse()
        got, got_cpu = {}, {}
        for side, keep in order:
            epoch, wall, peak, user, system, faults = run(runner, keep, base / f"{side}-{r}")
            got[side], got_cpu[side] = epoch, user + system
            per[side].append(epoch)
            cpu[side].append(user + system)
            lines.append(f"| {r + 1} | {side} | {epoch:.3f} | {wall:.1f} | {user:.1f} | {system:.1f} | "
                         f"{faults:,d} | {peak:,.0f} |")
            print(lines[-1], flush=True)
        ratios.append(got["defaults"] / got["tuned"])
        cpu_ratios.append(got_cpu["defaults"] / got_cpu["tuned"])
    lines += ["", f"Median s per epoch: tuned {statistics.median(per['tuned']):.3f}, glibc defaults "
              f"{statistics.median(per['defaults']):.3f}; defaults / tuned per round: "
              f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}). "
              f"Whole-command CPU (user + system) s, median: tuned {statistics.median(cpu['tuned']):.1f}, "
              f"defaults {statistics.median(cpu['defaults']):.1f}; defaults / tuned per round: "
              f"{', '.join(f'{x:.2f}' for x in cpu_ratios)}.", "",
              f"Load average at end: {_provenance.load()}; total {time.time() - t0:.0f} s.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
