"""The entity-linking goal check of models/linking.md: each graph linker against the linker it
extends (graph_linker: dual_encoder; graph_mimic: mimic) and against the best non-graph linker on
unseen entities, paired by seed (the same seeds, split and KB), from the run folders of
linking_study.sh.

    .venv/bin/python benchmarks/linking_goal.py results/linking/emoji --out benchmarks/results/linking_goal.md
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402
from _paired import beyond_noise, describe, paired, per_seed  # noqa: E402

GRAPH = {"graph_linker": "dual_encoder", "graph_mimic": "mimic"}  # graph linker -> the linker it extends
PLAIN = ["dual_encoder", "dual_encoder-image", "dual_encoder-text", "mimic"]
METRICS = ["mrr_unseen", "hits@1_unseen", "hits@5_unseen", "mrr"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = _provenance.header(f"Entity-linking goal check from {args.root}")
    lines += ["Test metrics x100 at the epoch selected on validation MRR; differences paired by seed; "
              "beyond noise: the 95 % interval (Student's t, n - 1 degrees of freedom) excludes 0.", ""]
    plain = [p for p in PLAIN if (args.root / p / "summary.json").is_file()]
    unseen = {p: list(per_seed(args.root / p, "mrr_unseen").values()) for p in plain}
    best = max(plain, key=lambda p: sum(unseen[p]) / len(unseen[p])) if plain else None
    if best:
        lines += [f"Best non-graph linker on unseen entities (mean test MRR over seeds): **{best}**.", ""]
    lines += ["| graph linker | against | metric | difference per seed | mean (95 % CI) | beyond noise? |",
              "|---|---|---|---|---|---|"]
    pairs = []
    for g, base in GRAPH.items():
        for p in (base, best):
            if p in plain and (g, p) not in pairs:
                pairs.append((g, p))
    for g, p in pairs:
        for m in METRICS:
            a, b = per_seed(args.root / g, m), per_seed(args.root / p, m)
            seeds = sorted(set(a) & set(b))
            if len(seeds) < 2:
                continue
            diffs = [100 * (a[k] - b[k]) for k in seeds]
            r = paired(diffs)
            lines.append(f"| {g} | {p} | {m} | {', '.join(f'{d:+.2f}' for d in diffs)} | {describe(r)} | "
                         f"{beyond_noise(r)} |")
    lines.append("")
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
