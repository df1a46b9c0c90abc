"""``mmgraph.nn.Dropout`` against ``torch.nn.Dropout`` on CPU, in training mode.

One forward call of each module on the same float32 tensor (default ``[99,638, 256]``: the
hidden layer of a full-batch GNN on a graph of Reddit-M's size), ``p = 0.5``, alternating
A B A B in one process after one untimed call of each; wall time per call, median over
``--repeats`` rounds, and the ratio per round. Run from the repository root:

    .venv/bin/python benchmarks/dropout_speed.py [--threads 2 1] [--repeats 9] [--out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=99_638)
    ap.add_argument("--cols", type=int, default=256)
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="torch thread counts to measure, in turn (default: torch's)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from mmgraph.nn import Dropout

    lines = _provenance.header("Dropout on CPU: mmgraph.nn.Dropout vs torch.nn.Dropout")
    x = torch.randn(args.rows, args.cols, generator=torch.Generator().manual_seed(0))
    ours, theirs = Dropout(args.p).train(), torch.nn.Dropout(args.p).train()
    lines += [f"Tensor `[{args.rows:,d}, {args.cols}]` float32, p = {args.p}; per thread count "
              f"{args.repeats} rounds alternating the order after one warm-up round.", "",
              "| torch threads | `torch.nn.Dropout` s per call (median; min-max) | `mmgraph.nn.Dropout` s per call "
              "(median; min-max) | ours / torch per round (median; min-max) |", "|---|---|---|---|"]
    rounds = []
    for threads in args.threads or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        times = {"ours": [], "torch": []}
        for i in range(args.repeats + 1):
            pairs = (("ours", ours), ("torch", theirs)) if i % 2 else (("torch", theirs), ("ours", ours))
            for name, mod in pairs:
                t0 = time.perf_counter()
                out = mod(x)
                dt = time.perf_counter() - t0
                del out
                if i:  # round 0 is the warm-up
                    times[name].append(dt)
        ratios = [a / b for a, b in zip(times["ours"], times["torch"])]
        cell = lambda v: f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})"
        lines.append(f"| {threads} | {cell(times['torch'])} | {cell(times['ours'])} | "
                     f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")
        rounds.append(f"- {threads} threads, s per call: torch {[round(t, 3) for t in times['torch']]}; "
                      f"ours {[round(t, 3) for t in times['ours']]}")
        print(lines[-1], flush=True)
    kept = (ours(x) != 0).float().mean().item()
    lines += ["", f"Share of elements kept by ours: {kept:.4f}. Per round:", "", *rounds, "",
              f"Load average at end: {_provenance.load()}.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
