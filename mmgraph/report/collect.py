"""Find and read stored runs (``summary.json`` + ``runs/seed_<s>.json``) and sweeps (``study.json``).

Nothing here trains or imports torch: a report reads JSON only. A file that cannot be read (a
half-written or corrupt JSON, or one that is not what its name says) is skipped with a warning
and counted, never a crash.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

SUMMARY = "summary.json"
STUDY = "study.json"
_SEED_FILE = re.compile(r"^seed_(-?\d+)\.json$")


class ReportError(Exception):
    """Something the user can fix; the command line prints it as one line."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RowKey:
    """What a table row stands for: a model with its input modalities, fusion and task, tuned or
    not, on which split, over which relations (``""``: all), with which post-processing."""

    model: str
    modalities: str
    fusion: str = "none"
    tuned: bool = False
    task: str = "node_classification"
    split: str = ""
    relations: str = ""
    post: str = ""


@dataclass
class SeedRecord:
    """One ``runs/seed_<s>.json``: ``source`` is its run folder relative to the runs directory."""

    path: Path
    source: str
    seed: int
    data: dict[str, Any]


@dataclass
class Run:
    """A run folder: its ``summary.json`` and the seed records the summary lists."""

    path: Path
    source: str
    summary: dict[str, Any]
    records: list[SeedRecord] = field(default_factory=list)

    @property
    def dataset(self) -> str:
        return str(self.summary["dataset"])

    @property
    def primary(self) -> str:
        return str(self.summary.get("primary") or self.summary["metrics"][0])

    @property
    def key(self) -> RowKey:
        s = self.summary
        described = (s.get("record") or {}).get("task") or \
            (self.records[0].data.get("task", {}) if self.records else {})
        relations = described.get("edge_types") or []
        return RowKey(model=str(s["model"]), modalities=str(s["modalities"]),
                      fusion=str(s.get("fusion") or "none"), tuned="sweep" in s,
                      task=str(described.get("kind") or "node_classification"),
                      split=str((s.get("split") or {}).get("name") or ""),
                      relations="+".join(r if isinstance(r, str) else "__".join(r) for r in relations),
                      post="C&S" if described.get("correct_and_smooth") else "")


@dataclass
class Study:
    """A sweep's ``study.json`` (see :mod:`mmgraph.report.studies`)."""

    path: Path
    source: str
    info: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.info.get("study_name") or Path(self.source).name or "study")


@dataclass
class Collection:
    root: Path
    runs: list[Run]
    studies: list[Study]
    warnings: list[str]
    skipped_files: list[str]


def read_json(path: Path) -> tuple[Any, str | None]:
    """``(object, None)`` or ``(None, reason)`` for a file that is unreadable or not JSON."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        what = "empty" if not text.strip() else f"not valid JSON ({exc.msg} at line {exc.lineno})"
        return None, what


def _summary_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return "not a run summary (not a JSON object)"
    missing = [k for k in ("dataset", "model", "modalities", "metrics") if k not in obj]
    if missing:
        return f"not a run summary (no {', '.join(missing)})"
    if not isinstance(obj["metrics"], list) or not obj["metrics"]:
        return "not a run summary (metrics is not a list of names)"
    return None


def _record_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return "not a seed record (not a JSON object)"
    missing = [k for k in ("seed", "selected", "config") if k not in obj]
    if missing:
        return f"not a seed record (no {', '.join(missing)})"
    if not isinstance(obj["selected"], dict) or not isinstance(obj["config"], dict):
        return "not a seed record (selected/config are not objects)"
    return None


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """All ``summary.json`` and ``study.json`` below ``root`` (hidden folders skipped), sorted."""
    summaries, studies = [], []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if SUMMARY in files:
            summaries.append(Path(folder) / SUMMARY)
        if STUDY in files:
            studies.append(Path(folder) / STUDY)
    return sorted(summaries), sorted(studies)


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    return rel or "."


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def collect(root: str | Path, warn: Callable[[str], None] | None = None) -> Collection:
    """Read every run and study below ``root``.

    A run folder is one with a ``summary.json``; its seed records are the
    ``runs/seed_<s>.json`` files of the seeds the summary lists. Run folders inside a sweep
    folder (one with a ``study.json``) are the sweep's trials and are left out of the tables,
    except the folder its ``final`` entry names (the re-run of the best parameters).

    Raises :class:`ReportError` (status 2) when ``root`` is not a folder and (status 1) when no
    readable ``summary.json`` is below it.
    """
    root = Path(root)
    notes: list[str] = []
    say = warn or notes.append
    if not root.exists():
        raise ReportError(f"runs directory {root} does not exist", 2)
    if not root.is_dir():
        raise ReportError(f"{root} is not a directory", 2)
    root = root.resolve()
    summary_paths, study_paths = _walk(root)
    skipped: list[str] = []

    def skip(path: Path, reason: str) -> None:
        skipped.append(f"{_rel(path, root)}: {reason}")

    studies: list[Study] = []
    for path in study_paths:
        obj, err = read_json(path)
        if err is None and not (isinstance(obj, dict) and "study_name" in obj and "storage" in obj):
            err = "not a study description (no study_name/storage)"
        if err is not None:
            skip(path, err)
            continue
        studies.append(Study(path=path, source=_rel(path.parent, root), info=obj))

    # Trial runs of a sweep are not results; only its final re-run is.
    sweep_dirs = [(s.path.parent, (s.path.parent / str(s.info["final"])).resolve() if s.info.get("final") else None)
                  for s in studies]
    trials = 0
    runs: list[Run] = []
    for path in summary_paths:
        folder = path.parent
        if any(_inside(folder, sd) and not (final is not None and _inside(folder, final))
               for sd, final in sweep_dirs):
            trials += 1
            continue
        obj, err = read_json(path)
        err = err or _summary_problem(obj)
        if err is not None:
            skip(path, err)
            continue
        run = Run(path=folder, source=_rel(folder, root), summary=obj)
        listed = obj.get("seeds")
        listed = [int(s) for s in listed] if isinstance(listed, list) else None
        found: dict[int, Path] = {}
        runs_dir = folder / "runs"
        if runs_dir.is_dir():
            for f in sorted(runs_dir.iterdir()):
                m = _SEED_FILE.match(f.name)
                if m:
                    found[int(m.group(1))] = f
        stale = sorted(set(found) - set(listed)) if listed is not None else []
        if stale:
            say(f"{run.source}: seed records {_seed_list(stale)} are not in summary.json's seeds; ignored")
        wanted = listed if listed is not None else sorted(found)
        missing = [s for s in wanted if s not in found]
        if missing:
            say(f"{run.source}: no record for seed {_seed_list(missing)} (listed in summary.json)")
        for seed in wanted:
            if seed not in found:
                continue
            rec, err = read_json(found[seed])
            err = err or _record_problem(rec)
            if err is not None:
                skip(found[seed], err)
                continue
            run.records.append(SeedRecord(path=found[seed], source=run.source, seed=int(rec["seed"]), data=rec))
        if not run.records:
            say(f"{run.source}: no readable seed records; run left out")
            continue
        runs.append(run)
    if trials:
        say(f"left out {trials} trial run{'s' * (trials != 1)} of sweeps (only their final re-runs count)")
    if skipped:
        shown = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        say(f"skipped {len(skipped)} unreadable JSON file{'s' * (len(skipped) != 1)}: {shown}")
    if not runs:
        found_any = f"{len(summary_paths)} found, none readable with seed records" if summary_paths else "none found"
        raise ReportError(f"no run results under {root}: searched it and all its subfolders for "
                          f"{SUMMARY} (with runs/seed_<s>.json beside it); {found_any}", 1)
    return Collection(root=root, runs=runs, studies=studies, warnings=notes, skipped_files=skipped)


def _seed_list(seeds: list[int]) -> str:
    return ", ".join(str(s) for s in seeds)
