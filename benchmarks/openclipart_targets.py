"""Which openclipart text field makes a better generation target: title or description?

Scans the extracted Debian tree (the same metadata the loader reads, nothing cached) and, for
the items the default graph keeps, prints per field: how many items have it (after the loader's
cleaning of junk descriptions), how many distinct values there are, how often the most common
values repeat, how long the values are (words), and how often the field merely repeats the
other (title inside the description or the reverse). A target that is mostly missing, mostly
repeated or a copy of the input is a poor one.

    .venv/bin/python benchmarks/openclipart_targets.py [--tree datasets/openclipart/usr/share/openclipart] [--out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, default=ROOT / "datasets/openclipart/usr/share/openclipart")
    ap.add_argument("--root", type=Path, default=ROOT / "datasets")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from mmgraph.data.openclipart import load_openclipart
    from mmgraph.data.openclipart.metadata import scan
    from mmgraph.data.openclipart.text import _is_junk

    data = load_openclipart(args.root, download=False, tree=args.tree, progress=False)
    kept = set(data["clipart"].content_hash)
    items, _ = scan(args.tree, progress=False)
    by_key = {}
    for it in items:
        if it.key in kept and it.key not in by_key:
            by_key[it.key] = it
    reps = list(by_key.values())

    def norm(s: str) -> str:
        return " ".join((s or "").split()).casefold()

    fields = {"title": [norm(it.title) for it in reps],
              "description": [norm(it.description) if not _is_junk(it.description or "") else "" for it in reps]}
    lines = _provenance.header("openclipart: title or description as the generation target")
    lines += [f"{len(reps)} items of the default graph (one representative per kept content hash).", "",
              "| field | present | distinct | share of present in the 10 most common values | words: mean / median | equal to the other field | contained in the other |",
              "|---|---|---|---|---|---|---|"]
    other = {"title": "description", "description": "title"}
    for name, values in fields.items():
        present = [v for v in values if v]
        counts = Counter(present)
        top10 = sum(c for _, c in counts.most_common(10))
        words = [len(v.split()) for v in present]
        same = sum(1 for v, o in zip(values, fields[other[name]]) if v and v == o)
        inside = sum(1 for v, o in zip(values, fields[other[name]]) if v and o and v != o and v in o)
        lines.append(f"| {name} | {len(present)} ({100 * len(present) / len(values):.1f}%) | {len(counts)} | "
                     f"{100 * top10 / max(1, len(present)):.1f}% | "
                     f"{statistics.mean(words) if words else 0:.1f} / {statistics.median(words) if words else 0:g} | "
                     f"{same} | {inside} |")
    for name, values in fields.items():
        common = ", ".join(f"“{v[:40]}” × {c}" for v, c in Counter(v for v in values if v).most_common(5))
        lines += ["", f"Most common {name}s: {common}."]
    lines.append("")
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
