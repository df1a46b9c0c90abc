"""Do the runs behind a table row agree on everything needed to reproduce them?

A result is reproducible from its records when every seed record of a cell (one row, one data
set) was made with the same config, split, input features, package versions and commit from a
clean checkout, and every seed was run once. Across the cells of a row the seeds, versions,
commit and the model / trainer / task / fusion / features config must agree too (the data set
config may differ there: that is what the columns are).

:func:`reproducibility_flags` is the one entry point; it returns one :class:`Flag` per thing
that disagrees, with the values and where they come from.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

# Keys of a record's config that legitimately differ between runs of one result.
PER_SEED_KEYS = ("seed", "seeds", "runs")
# Where outputs go or inputs are found on one machine, and settings that do not change results.
# ``device`` is compared through the resolved device the record states, not the request (auto).
IGNORED_PREFIXES = ("hydra", "paths", "device", "trainer.progress", "features.num_workers")
_PATH_LIKE = re.compile(r"(^|_)(dir|path|root|file|output)$")
ACROSS_SECTIONS = ("model", "trainer", "task", "fusion", "features")
ACROSS = "across data sets"
NULL = "null"  # how comparable_config writes None; a config key one run lacks compares as this


class Entry(NamedTuple):
    """A seed record and where it is from (its run folder, relative to the runs directory)."""

    source: str
    seed: int
    record: Mapping[str, Any]


@dataclass(frozen=True)
class Flag:
    scope: str   # the data set (one cell), or ACROSS
    what: str    # config, split, input fingerprint, versions, git commit, uncommitted changes, ...
    detail: str

    def __str__(self) -> str:
        return f"{self.scope}: {self.what} — {self.detail}"


def ignored_key(key: str) -> bool:
    """Whether a dotted config key is left out of the comparison (per-seed, paths, cosmetic)."""
    if key in PER_SEED_KEYS:
        return True
    if any(key == p or key.startswith(p + ".") for p in IGNORED_PREFIXES):
        return True
    return bool(_PATH_LIKE.search(key.rsplit(".", 1)[-1]))


def comparable_config(config: Mapping[str, Any], sections: Sequence[str] | None = None) -> dict[str, str]:
    """The config flattened to ``dotted.key -> JSON value``, ignored keys dropped; only the
    top-level ``sections`` when given. Lists are compared whole."""
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping) and node:
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif prefix and not ignored_key(prefix):  # an empty mapping reads as null (no entries)
            out[prefix] = NULL if isinstance(node, Mapping) else json.dumps(node, sort_keys=True, default=str)

    for k, v in config.items():
        if sections is None or k in sections:
            walk(v, str(k))
    return out


def resolved_config(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The record's config with defaults the run resolved written out: ``features.modalities:
    null`` (all the data set has) becomes the modalities the record says the input used."""
    config = record.get("config")
    if not isinstance(config, Mapping):
        return {}
    features = config.get("features")
    used = (record.get("input") or {}).get("modalities")
    if isinstance(features, Mapping) and features.get("modalities") is None and used:
        return {**config, "features": {**features, "modalities": list(used)}}
    return config


# -- describing who has which value ---------------------------------------------------------

def seed_ranges(seeds: Iterable[int]) -> str:
    """``0–2, 5`` for [0, 1, 2, 5]."""
    seeds = sorted(set(seeds))
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        if j == i:
            parts.append(str(seeds[i]))
        elif j == i + 1:
            parts.append(f"{seeds[i]}, {seeds[j]}")
        else:
            parts.append(f"{seeds[i]}–{seeds[j]}")
        i = j + 1
    return ", ".join(parts)


def _where(entries: Sequence[Entry], cell: Sequence[Entry] = ()) -> str:
    """``folder seeds 0, 1; other seed 2``; a folder all of whose records in ``cell`` are
    among ``entries`` is named without its seeds."""
    by_source: dict[str, list[int]] = {}
    for e in entries:
        by_source.setdefault(e.source, []).append(e.seed)
    whole = {src for src in by_source if len(by_source[src]) == sum(e.source == src for e in cell)}
    return "; ".join(src if src in whole else f"{src} seed{'s' * (len(s) > 1)} {seed_ranges(s)}"
                     for src, s in by_source.items())


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _groups(entries: Sequence[Entry], get: Callable[[Mapping[str, Any]], Any]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for e in entries:
        out.setdefault(json.dumps(get(e.record), sort_keys=True, default=str), []).append(e)
    return out


def _versus(groups: Mapping[str, Sequence[Entry]], show: Callable[[Any], str], cell: Sequence[Entry]) -> str:
    return " vs ".join(f"{show(json.loads(v))} ({_where(es, cell)})" for v, es in groups.items())


def _git(record: Mapping[str, Any]) -> Mapping[str, Any]:
    git = record.get("git")
    return git if isinstance(git, Mapping) else {}


def _commit(record: Mapping[str, Any]) -> str | None:
    return _git(record).get("commit")


def _show_commit(c: Any) -> str:
    return str(c)[:10] if c else "unknown"


def _split(record: Mapping[str, Any]) -> Any:
    return (record.get("task") or {}).get("split")


def _show_split(s: Any) -> str:
    if isinstance(s, Mapping):
        return f"{s.get('name', '?')} {s.get('fingerprint', '?')}"
    return _short(s)


def _fingerprint(record: Mapping[str, Any]) -> Any:
    return (record.get("input") or {}).get("fingerprint")


def _versions(record: Mapping[str, Any]) -> Mapping[str, Any]:
    v = record.get("versions")
    return v if isinstance(v, Mapping) else {}


def _key_differences(values: Mapping[str, Sequence[Mapping[str, str]]],
                     absent: str = '"(absent)"') -> dict[str, dict[str, list[str]]]:
    """For labelled groups of flattened dicts: ``key -> {value -> [labels]}`` where they differ;
    a missing key reads as ``absent``."""
    keys: list[str] = []
    for flats in values.values():
        for flat in flats:
            keys += [k for k in flat if k not in keys]
    out = {}
    for k in keys:
        seen: dict[str, list[str]] = {}
        for label, flats in values.items():
            for flat in flats:
                v = flat.get(k, absent)
                if label not in seen.setdefault(v, []):
                    seen[v].append(label)
        if len(seen) > 1:
            out[k] = seen
    return out


def _list_keys(diffs: Mapping[str, Mapping[str, Sequence[str]]], limit: int = 4) -> str:
    parts = []
    for k, seen in list(diffs.items())[:limit]:
        parts.append(f"{k} = " + " vs ".join(f"{_short(json.loads(v), 30)} ({', '.join(ls)})"
                                             for v, ls in seen.items()))
    more = len(diffs) - limit
    return "; ".join(parts) + (f"; and {more} more key{'s' * (more > 1)}" if more > 0 else "")


# -- the checks -----------------------------------------------------------------------------

def cell_flags(scope: str, entries: Sequence[Entry]) -> list[Flag]:
    """What the seed records of one cell (one row, one data set) disagree on."""
    flags: list[Flag] = []
    counts = Counter(e.seed for e in entries)
    repeated: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for seed, n in sorted(counts.items()):
        if n > 1:
            where = tuple(dict.fromkeys(e.source for e in entries if e.seed == seed))
            repeated.setdefault((n, where), []).append(seed)
    for (n, where), seeds in repeated.items():
        times = "twice" if n == 2 else f"{n} times"
        flags.append(Flag(scope, "duplicate seed", f"seed{'s' * (len(seeds) > 1)} {seed_ranges(seeds)} "
                          f"recorded {times} ({', '.join(where)}); the table uses {where[0]}"))

    def label(e: Entry) -> str:
        return f"{e.source} seed {e.seed}"

    flat = {label(e): [comparable_config(resolved_config(e.record))] for e in entries}
    diffs = _key_differences(flat, absent=NULL)  # a key newer configs add as null
    if diffs:
        # name groups of records by run folder where a whole folder agrees
        diffs = {k: {v: _compact(ls, entries) for v, ls in seen.items()} for k, seen in diffs.items()}
        flags.append(Flag(scope, "config", _list_keys(diffs)))

    for what, get, show in (("split", _split, _show_split),
                            ("input fingerprint", _fingerprint, _short),
                            ("git commit", _commit, _show_commit),
                            ("device", lambda r: r.get("device"), _short),
                            # torchrun: how many processes trained (absent in older records = 1)
                            ("processes", lambda r: str((r.get("distributed") or {}).get("world_size", 1)),
                             _short)):
        groups = _groups(entries, get)
        if len(groups) > 1:
            flags.append(Flag(scope, what, _versus(groups, show, entries)))

    vdiff = _key_differences({label(e): [{k: json.dumps(v) for k, v in _versions(e.record).items()}]
                              for e in entries})
    if vdiff:
        vdiff = {k: {v: _compact(ls, entries) for v, ls in seen.items()} for k, seen in vdiff.items()}
        flags.append(Flag(scope, "versions", _list_keys(vdiff)))

    dirty = [e for e in entries if _git(e.record).get("dirty")]
    if dirty:
        flags.append(Flag(scope, "uncommitted changes",
                          f"run from a checkout with uncommitted changes: {_where(dirty, entries)}"))
    if all(not _commit(e.record) for e in entries):
        flags.append(Flag(scope, "git commit", "no git commit recorded"))
    return flags


def _compact(labels: Sequence[str], entries: Sequence[Entry]) -> list[str]:
    """``["a seed 0", "a seed 1"]`` -> ``["a seeds 0, 1"]``."""
    chosen = [e for e in entries if f"{e.source} seed {e.seed}" in labels]
    return [_where(chosen, entries)]


def across_cell_flags(cells: Mapping[str, Sequence[Entry]]) -> list[Flag]:
    """What the cells of one row (data set -> its seed records) disagree on."""
    if len(cells) < 2:
        return []
    flags: list[Flag] = []

    def per_cell(get: Callable[[Mapping[str, Any]], Any]) -> dict[str, set[str]]:
        return {ds: {json.dumps(get(e.record), sort_keys=True, default=str) for e in es} for ds, es in cells.items()}

    seeds = {ds: sorted({e.seed for e in es}) for ds, es in cells.items()}
    if len({tuple(s) for s in seeds.values()}) > 1:
        flags.append(Flag(ACROSS, "seeds", "; ".join(f"{ds} {seed_ranges(s)}" for ds, s in seeds.items())))

    # cells that disagree inside are flagged there; here the single values of the others
    commits = {ds: next(iter(v)) for ds, v in per_cell(_commit).items() if len(v) == 1}
    if len(set(commits.values())) > 1:
        flags.append(Flag(ACROSS, "git commit", "; ".join(
            f"{ds} {_show_commit(json.loads(c))}" for ds, c in commits.items())))

    def table_of(get: Callable[[Mapping[str, Any]], Mapping[str, str]], absent: str) -> str:
        diffs = _key_differences({ds: [get(e.record) for e in es] for ds, es in cells.items()}, absent)
        # a key that varies inside one cell is already flagged there; here only between cells
        diffs = {k: seen for k, seen in diffs.items() if not _varies_within(seen)}
        return _list_keys(diffs) if diffs else ""

    versions = table_of(lambda r: {k: json.dumps(v) for k, v in _versions(r).items()}, '"(absent)"')
    if versions:
        flags.append(Flag(ACROSS, "versions", versions))
    config = table_of(lambda r: comparable_config(resolved_config(r), ACROSS_SECTIONS), NULL)
    if config:
        flags.append(Flag(ACROSS, "config", config))
    return flags


def _varies_within(seen: Mapping[str, Sequence[str]]) -> bool:
    """A data set listed under two values varies inside its own cell."""
    count = Counter(ds for labels in seen.values() for ds in labels)
    return any(n > 1 for n in count.values())


def reproducibility_flags(cells: Mapping[str, Sequence[Entry]]) -> list[Flag]:
    """Every disagreement among the seed records of one table row.

    ``cells`` maps each data set of the row to all its seed records (pooled over run folders,
    duplicates included). Within a cell: config (per-seed, path-like and cosmetic keys
    ignored, see :func:`ignored_key`), split, input fingerprint, package versions, git commit,
    resolved device, number of processes (torchrun), uncommitted changes, duplicated seeds.
    Across cells: the seed lists, versions, commit, and the model / trainer / task / fusion /
    features config.
    """
    flags: list[Flag] = []
    for ds, entries in cells.items():
        flags += cell_flags(ds, entries)
    return flags + across_cell_flags(cells)
