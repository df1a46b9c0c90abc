"""Two torchrun processes against one process: mini-batch training and sharded feature extraction.

``--part training``: ``torchrun --nproc_per_node=2 -m mmgraph.bench ARGS`` against
``OMP_NUM_THREADS=1 python -m mmgraph.bench ARGS`` (torchrun gives each rank one thread), with
ARGS = ``dataset=synthetic model=sage task.batch_size=256 trainer=fast runs=5`` by default; the
order alternates between rounds. Reported per side: test accuracy (mean ± std over the seeds),
the trainer's seconds per run (``summary.json``) and the command's wall time. ``--keep DIR``
copies each side's ``summary.json``, ``results.md`` and ``runs/*.json`` to ``DIR/<side>-<round>/``.

``--part features``: MiniLM text features of openclipart (``mmgraph.features dataset=openclipart
encoder=minilm modality=text``), each side into a fresh cache folder: two torchrun processes,
one process with one thread, and one process with two threads; seconds as the command prints
them and the command's wall time, and the largest absolute difference between the resulting
``values.npy`` files.

    .venv/bin/python benchmarks/torchrun_scaling.py --part training --rounds 1 --keep DIR --out FILE
    .venv/bin/python benchmarks/torchrun_scaling.py --part features --rounds 2 --out FILE
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT
VENV_BIN = Path(sys.executable).parent
TRAIN_ARGS = "dataset=synthetic model=sage task.batch_size=256 trainer=fast runs=5"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, proc.stdout


def training(args, lines: list[str]) -> None:
    base = Path(tempfile.mkdtemp(prefix="mmgraph-torchrun-"))
    sides = {
        "torchrun-2": ([str(VENV_BIN / "torchrun"), "--nproc_per_node=2", "-m", "mmgraph.bench"], {}),
        "one-process": ([sys.executable, "-m", "mmgraph.bench"], {"OMP_NUM_THREADS": "1"}),
    }
    lines += [f"Runner arguments: `{args.train_args}` (plus the output folder and "
              "`trainer.progress=false`).", "",
              "- torchrun-2: `torchrun --nproc_per_node=2 -m mmgraph.bench ARGS`",
              "- one-process: `OMP_NUM_THREADS=1 python -m mmgraph.bench ARGS`", "",
              "| round | side | test accuracy | val accuracy | epochs | s per run (trainer) | command wall s | world size in records |",
              "|---|---|---|---|---|---|---|---|"]
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            prefix, env = sides[side]
            folder = base / f"{side}-{r}"
            wall, _ = timed([*prefix, *shlex.split(args.train_args), f"hydra.run.dir={folder}",
                             "trainer.progress=false"], env)
            s = json.loads((folder / "summary.json").read_text())["summary"]
            recs = [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("seed_*.json"))]
            worlds = sorted({rec.get("distributed", {}).get("world_size") for rec in recs})
            acc, val = s["test/accuracy"], s["val/accuracy"]
            lines.append(f"| {r + 1} | {side} | {acc['mean'] * 100:.2f} ± {acc['std'] * 100:.2f} | "
                         f"{val['mean'] * 100:.2f} ± {val['std'] * 100:.2f} | {s['epochs']:.0f} | "
                         f"{s['seconds_per_run']:.1f} | {wall:.1f} | {worlds} |")
            print(lines[-1], flush=True)
            if args.keep:
                dest = args.keep / f"{side}-{r + 1}"
                (dest / "runs").mkdir(parents=True, exist_ok=True)
                for name in ("summary.json", "results.md"):
                    shutil.copy(folder / name, dest / name)
                for p in (folder / "runs").glob("seed_*.json"):
                    shutil.copy(p, dest / "runs" / p.name)
    if args.keep:
        lines += ["", f"Records of every side and round: `{args.keep.relative_to(ROOT) if args.keep.is_absolute() and ROOT in args.keep.parents else args.keep}/<side>-<round>/` "
                  "(summary.json, results.md, runs/seed_*.json as the runner wrote them)."]


def features(args, lines: list[str]) -> None:
    base = Path(tempfile.mkdtemp(prefix="mmgraph-torchrun-features-"))
    common = ["dataset=openclipart", "encoder=minilm", "modality=text", "progress=false"]
    sides = {
        "torchrun-2 (1 thread each)": ([str(VENV_BIN / "torchrun"), "--nproc_per_node=2", "-m", "mmgraph.features"], {}),
        "one process, 1 thread": ([sys.executable, "-m", "mmgraph.features"], {"OMP_NUM_THREADS": "1"}),
        "one process, 2 threads": ([sys.executable, "-m", "mmgraph.features"], {"OMP_NUM_THREADS": "2"}),
    }
    lines += ["Command: `mmgraph.features dataset=openclipart encoder=minilm modality=text progress=false "
              "cache_dir=<fresh folder>`, started as", "",
              "- torchrun-2: `torchrun --nproc_per_node=2 -m mmgraph.features ...` (torchrun sets one thread per rank)",
              "- one process, 1 thread: `OMP_NUM_THREADS=1 python -m mmgraph.features ...`",
              "- one process, 2 threads: `OMP_NUM_THREADS=2 python -m mmgraph.features ...`", "",
              "| round | side | items | distinct | seconds (printed) | command wall s |", "|---|---|---|---|---|---|"]
    values: dict[str, np.ndarray] = {}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            prefix, env = sides[side]
            cache = base / f"{r}-{len(values)}-{side.split()[0]}"
            wall, out = timed([*prefix, *common, f"cache_dir={cache}"], env)
            row = next(line for line in out.splitlines() if line.startswith("| text |"))
            cells = [c.strip() for c in row.strip("|").split("|")]
            lines.append(f"| {r + 1} | {side} | {cells[3]} | {cells[4]} | {cells[6]} | {wall:.1f} |")
            print(lines[-1], flush=True)
            entry = next(cache.rglob("values.npy"))
            values.setdefault(side, np.load(entry))
            shutil.rmtree(cache, ignore_errors=True)
    names = list(values)
    lines += ["", "Largest absolute difference between the cache entries (`values.npy`, first round):", ""]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = values[names[i]], values[names[j]]
            diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
            lines.append(f"- {names[i]} vs {names[j]}: {diff:.3g}" + (" (identical bytes)" if np.array_equal(a, b) else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["training", "features"], required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--train-args", default=TRAIN_ARGS)
    ap.add_argument("--keep", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    title = {"training": "torchrun: mini-batch GraphSAGE, 2 processes vs 1",
             "features": "torchrun: sharded MiniLM feature extraction, 2 processes vs 1"}[args.part]
    lines = _provenance.header(title)
    t0 = time.time()
    (training if args.part == "training" else features)(args, lines)
    lines += ["", f"Load average at end: {_provenance.load()}; total {time.time() - t0:.0f} s.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
