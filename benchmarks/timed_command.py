"""Time whole commands and record what they print, with provenance.

Each COMMAND (one shell-quoted string) runs ``--rounds`` times, the commands alternating
(A B A B ...); ``{tmp}`` in a command becomes a fresh empty temporary folder for every run
(e.g. a feature cache that must start empty). Recorded per run: wall seconds, user and system CPU
seconds and the peak RSS of the largest process (``getrusage(RUSAGE_CHILDREN)`` of an
intermediate process) and the last lines the command printed.

    .venv/bin/python benchmarks/timed_command.py --title "..." --out FILE \\
        '.venv/bin/python -m mmgraph.features dataset=openclipart cache_dir={tmp} progress=false'
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

PROBE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
         "sys.stderr.write('\\n@@peak_kib %d %.2f %.2f\\n' % (u.ru_maxrss, u.ru_utime, u.ru_stime)); "
         "sys.exit(r.returncode)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commands", nargs="+", metavar="COMMAND")
    ap.add_argument("--title", default="Timed commands")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--tail", type=int, default=8, help="lines of output kept per run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = _provenance.header(args.title)
    lines += ["Commands (`{tmp}` = a fresh empty folder per run):", ""]
    lines += [f"- {chr(65 + i)}: `{c}`" for i, c in enumerate(args.commands)] + [""]
    walls: dict[int, list[float]] = {i: [] for i in range(len(args.commands))}
    outputs = []
    t_all = time.time()
    for r in range(args.rounds):
        for i, c in enumerate(args.commands):
            tmp = tempfile.mkdtemp(prefix="mmgraph-timed-")
            argv = [a.replace("{tmp}", tmp) for a in shlex.split(c)]
            t0 = time.time()
            proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=_provenance.ROOT,
                                  capture_output=True, text=True, env=os.environ.copy())
            wall = time.time() - t0
            shutil.rmtree(tmp, ignore_errors=True)
            err = proc.stderr.splitlines()
            stats = next((x.split()[1:] for x in reversed(err) if x.startswith("@@peak_kib")), ["0", "0", "0"])
            peak, user, system = int(stats[0]), float(stats[1]), float(stats[2])
            walls[i].append(wall)
            out = [x for x in (proc.stdout.splitlines() + [e for e in err if not e.startswith("@@")]) if x.strip()]
            outputs.append(f"{chr(65 + i)}, round {r + 1}: exit {proc.returncode}, {wall:.1f} s wall, "
                           f"{user:.1f} s user + {system:.1f} s system CPU (the command and the children it "
                           f"waited for), peak RSS {peak / 1024:,.0f} MiB; last lines:\n\n```\n"
                           + "\n".join(out[-args.tail:]).replace(tmp, "{tmp}") + "\n```\n")
            print(outputs[-1], flush=True)
    lines += ["| command | runs | wall s (median) | min | max |", "|---|---|---|---|---|"]
    lines += [f"| {chr(65 + i)} | {len(w)} | {statistics.median(w):.1f} | {min(w):.1f} | {max(w):.1f} |"
              for i, w in walls.items()]
    lines += ["", *outputs, f"Load average at end: {_provenance.load()}; total {time.time() - t_all:.0f} s.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
