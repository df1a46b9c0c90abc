"""Reproduce one run from its record: ``python -m mmgraph.bench --replay runs/seed_<s>.json``.

:func:`replay` rebuilds the config stored in a ``runs/seed_<s>.json`` record, trains that one
seed again with :func:`mmgraph.bench.runner.run` and compares the selected epoch and the
validation and test value of every metric with the stored ones, exactly. It warns when the
git commit, the package versions, the input fingerprint, the split or the device of the new
run differ from the record's (the numbers may then legitimately differ).
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmgraph.errors import MMGraphError

FIELDS = ("epoch", "val", "test")


class RecordError(MMGraphError):
    """The record to replay is missing or not a seed record."""


@dataclass
class Comparison:
    metric: str
    field: str
    stored: Any
    replayed: Any

    @property
    def equal(self) -> bool:
        a, b = self.stored, self.replayed
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b


@dataclass
class ReplayResult:
    record_path: Path
    seed: int
    comparisons: list[Comparison]
    warnings: list[str] = field(default_factory=list)
    output_dir: Path | None = None

    @property
    def matches(self) -> bool:
        """Every compared value is exactly equal (and there was something to compare)."""
        return bool(self.comparisons) and all(c.equal for c in self.comparisons)

    def table(self) -> str:
        lines = ["| metric | field | stored | replayed | equal |", "|---|---|---:|---:|---|"]
        for c in self.comparisons:
            lines.append(f"| {c.metric} | {c.field} | {_fmt(c.stored)} | {_fmt(c.replayed)} | "
                         f"{'yes' if c.equal else '**no**'} |")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, float) else ("–" if v is None else str(v))


def load_record(path: str | Path) -> dict[str, Any]:
    """A seed record, or :class:`RecordError` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"record {path} does not exist" if not path.exists() else f"record {path} is not a file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"cannot read record {path}: {exc}") from exc
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        why = "empty" if not text.strip() else f"not valid JSON ({exc.msg} at line {exc.lineno})"
        raise RecordError(f"record {path} is {why}") from exc
    if not isinstance(rec, dict):
        raise RecordError(f"record {path} is not a seed record (not a JSON object)")
    missing = [k for k in ("config", "seed", "selected") if k not in rec]
    if missing:
        what = " (a summary.json? replay one of its runs/seed_<s>.json)" if "summary" in rec else ""
        raise RecordError(f"record {path} is not a seed record: no {', '.join(missing)}{what}")
    if not isinstance(rec["config"], dict) or not isinstance(rec["selected"], dict):
        raise RecordError(f"record {path} is not a seed record: config/selected are not objects")
    return rec


def provenance_warnings(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between the stored record's provenance and the new run's."""
    out = []
    old_git, new_git = stored.get("git") or {}, new.get("git") or {}
    if old_git.get("commit") != new_git.get("commit"):
        out.append(f"git commit differs: record {old_git.get('commit') or 'unknown'}, "
                   f"now {new_git.get('commit') or 'unknown'}")
    if old_git.get("dirty"):
        out.append("the record was made from a checkout with uncommitted changes")
    if new_git.get("dirty"):
        out.append("the checkout has uncommitted changes now")
    old_v, new_v = stored.get("versions") or {}, new.get("versions") or {}
    diff = [f"{k} {old_v.get(k, 'absent')} -> {new_v.get(k, 'absent')}"
            for k in dict.fromkeys([*old_v, *new_v]) if old_v.get(k) != new_v.get(k)]
    if diff:
        out.append("package versions differ: " + ", ".join(diff))
    for what, get in (("input fingerprint", lambda r: (r.get("input") or {}).get("fingerprint")),
                      ("split fingerprint", lambda r: ((r.get("task") or {}).get("split") or {}).get("fingerprint")),
                      ("device", lambda r: r.get("device"))):
        if get(stored) != get(new):
            out.append(f"{what} differs: record {get(stored)}, now {get(new)}")
    return out


def compare_selected(stored: dict[str, Any], new: dict[str, Any]) -> list[Comparison]:
    out = []
    for metric in dict.fromkeys([*stored["selected"], *new["selected"]]):
        a, b = stored["selected"].get(metric) or {}, new["selected"].get(metric) or {}
        for f in FIELDS:
            out.append(Comparison(metric, f, a.get(f), b.get(f)))
    out.append(Comparison("(run)", "epochs", stored.get("epochs"), new.get("epochs")))
    return out


def replay(record_path: str | Path, output_dir: str | Path | None = None) -> ReplayResult:
    """Train the seed of ``record_path`` again with its recorded config and compare.

    The new run's records go to ``output_dir`` (a temporary folder, removed afterwards, when
    ``None``). Raises :class:`RecordError` for a missing or malformed record, and whatever
    :func:`~mmgraph.bench.runner.run` raises (``ConfigError``, ``DataError``) when the recorded
    config cannot run here.
    """
    from omegaconf import OmegaConf

    import mmgraph.bench  # noqa: F401  (registers the config resolvers)
    from mmgraph.bench.runner import run

    record_path = Path(record_path)
    stored = load_record(record_path)
    seed = int(stored["seed"])
    cfg = OmegaConf.create(stored["config"])
    cfg.seeds = [seed]
    with tempfile.TemporaryDirectory(prefix="mmgraph-replay-") as tmp:
        out = Path(output_dir) if output_dir is not None else Path(tmp)
        run(cfg, output_dir=out)
        new = json.loads((out / "runs" / f"seed_{seed}.json").read_text())
    return ReplayResult(record_path=record_path, seed=seed, comparisons=compare_selected(stored, new),
                        warnings=provenance_warnings(stored, new),
                        output_dir=Path(output_dir) if output_dir is not None else None)


def main(argv: list[str], prog: str = "mmgraph.bench") -> int:
    """``--replay RECORD [--out DIR]``: prints the comparison; 0 when everything matches exactly,
    1 when something differs or the run fails, 2 for a missing or malformed record or usage."""
    import argparse
    import logging
    import sys

    from mmgraph.errors import ConfigError

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:
            print(f"{prog}: error: {message}", file=sys.stderr)
            sys.exit(2)

    p = Parser(prog=f"python -m {prog}", description="Re-run one seed from its record and compare.")
    p.add_argument("--replay", metavar="RECORD", required=True, help="a runs/seed_<s>.json record")
    p.add_argument("--out", metavar="DIR", help="keep the new run's records here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s",
                        stream=sys.stderr)
    try:
        result = replay(args.replay, args.out)
    except RecordError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"{prog}: error: the recorded config does not run here: {exc}", file=sys.stderr)
        return 1
    except (MMGraphError, FloatingPointError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"\nReplay of {result.record_path} (seed {result.seed}):\n\n{result.table()}\n")
    for w in result.warnings:
        print(f"{prog}: warning: {w}", file=sys.stderr)
    n_diff = sum(not c.equal for c in result.comparisons)
    print("all selected values match exactly" if result.matches else
          f"{n_diff} of {len(result.comparisons)} values differ", flush=True)
    return 0 if result.matches else 1
