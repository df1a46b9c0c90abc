"""Command line: ``python -m mmgraph.report <runs-dir> [--out DIR] [--metrics a,b] [--no-plots]``.

Errors are one line on stderr: exit status 2 for usage (a runs directory that does not exist,
an unknown metric), 1 when there are no results to report.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "mmgraph.report"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, like the other command-line tools
        print(f"{PROG}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"python -m {PROG}",
                description="Tables (Markdown, CSV, LaTeX) and figures from stored benchmark runs: every "
                            "summary.json below RUNS_DIR with its runs/seed_<s>.json records, and every "
                            "study.json of a sweep.")
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="folder searched recursively (e.g. outputs or multirun)")
    p.add_argument("--out", metavar="DIR", help="where to write (default RUNS_DIR/report)")
    p.add_argument("--metrics", metavar="M1,M2",
                   help="test metrics to show, comma-separated (e.g. accuracy,macro_f1; acc and f1 work "
                        "too); default all")
    p.add_argument("--no-plots", action="store_true", help="write the tables only")
    return p


def main(argv: list[str] | None = None) -> int:
    from mmgraph.report.collect import ReportError
    from mmgraph.report.report import make_report

    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    metrics = [m for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    command = " ".join(["python", "-m", PROG, *(sys.argv[1:] if argv is None else argv)])
    try:
        report = make_report(Path(args.runs_dir), out=args.out, metrics=metrics, plots=not args.no_plots,
                             command=command)
    except ReportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    print(report.markdown, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
