"""The three tables of models/generation.md from the run folders of generation_study.sh.

Each row is one run folder (its summary.json and runs/seed_*.json): the model's choices, the
context level, trainable parameters, training tokens per second and generated tokens per second
(means over the seeds' records), the torch threads the records name, and BLEU-4, ROUGE-L, CIDEr-D on test at the epoch selected on
validation (mean ± std over seeds; BLEU-4 and ROUGE-L x100). Rows without a summary are listed
as not run.

    .venv/bin/python benchmarks/generation_tables.py results/generation/tuxpaint [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402
from _paired import beyond_noise, describe, paired, per_seed  # noqa: E402

TABLES = {
    "(a) context x encoding (LoRA, no positional encoding)": [
        "context/sa_e-none", "context/sa_e-text", "context/sa_e-multimodal", "context/sa_te-text",
        "context/sa_te-multimodal", "context/ca_e-none", "context/ca_e-text", "context/ca_e-multimodal"],
    "(b) positional encoding (SA-E, multimodal, LoRA)": [
        "context/sa_e-multimodal", "pe/sa_e-laplacian", "pe/sa_e-gnn"],
    "(c) fine-tuning (multimodal)": [
        "context/sa_e-multimodal", "peft/sa_e-prefix", "peft/sa_e-full", "context/ca_e-multimodal"],
}


def _cell(summary: dict, key: str, scale: float) -> str:
    s = summary.get(key)
    if not s:
        return "-"
    return f"{scale * s['mean']:.2f} ± {scale * s['std']:.2f}"


def _mean(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.mean(values):.0f}" if values else "-"


def row(folder: Path) -> str | None:
    path = folder / "summary.json"
    if not path.is_file():
        return None
    s = json.loads(path.read_text())
    g = s.get("generation", {})
    records = [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("seed_*.json"))]
    recs = [r.get("generation", {}) for r in records]
    threads = sorted({r.get("machine", {}).get("torch_threads") for r in records} - {None})
    return (f"| {g.get('encoding', '?')} | {g.get('context', '?')} | {g.get('pe', '?')} | {g.get('peft', '?')} | "
            f"{s['runs']} | {g.get('trainable_parameters', 0):,} | "
            f"{_mean([r.get('train_tokens_per_second') for r in recs])} | "
            f"{_mean([r.get('generation_tokens_per_second') for r in recs])} | "
            f"{', '.join(map(str, threads)) or '?'} | "
            f"{_cell(s['summary'], 'test/bleu4', 100)} | {_cell(s['summary'], 'test/rouge_l', 100)} | "
            f"{_cell(s['summary'], 'test/cider_d', 1)} | {_cell(s['summary'], 'val/rouge_l', 100)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = _provenance.header(f"Generation study tables from {args.root}")
    lines += ["The runs' own commits, dates and machines are in their records (runs/seed_*.json). "
              "The throughput columns depend on the torch threads a row ran with (the *threads* "
              "column, from its records) and on what else the machine ran meanwhile: compare them "
              "between rows of the same thread count only, as rough figures.", ""]
    for title, folders in TABLES.items():
        lines += [f"### {title}", "",
                  "| encoding | context | PE | fine-tuning | seeds | trainable parameters | train tokens/s "
                  "| generated tokens/s | threads | test BLEU-4 | test ROUGE-L | test CIDEr-D | val ROUGE-L |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        missing = []
        for f in folders:
            r = row(args.root / f)
            if r is None:
                missing.append(f)
            else:
                lines.append(r)
        if missing:
            lines += ["", f"Not run yet: {', '.join(missing)}."]
        lines.append("")
    lines += against_first(args.root)
    lines += goal_check(args.root)
    _provenance.emit(lines, args.out)


METRICS = (("bleu4", "BLEU-4", 100), ("rouge_l", "ROUGE-L", 100), ("cider_d", "CIDEr-D", 1))


def merged(folder: Path, metric: str) -> dict[int, float]:
    """``per_seed`` of a row and of its extra-seed folders (``<row>.seeds*``)."""
    out = per_seed(folder, metric)
    for extra in sorted(folder.parent.glob(f"{folder.name}.seeds*")):
        out.update(per_seed(extra, metric))
    return out


def _paired_line(label: str, name: str, scale: float, a: dict[int, float],
                 b: dict[int, float]) -> str | None:
    """One table line: ``a - b`` per shared seed (scaled), their mean and 95 % t interval;
    ``None`` with fewer than two shared seeds."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    diffs = [scale * (a[k] - b[k]) for k in seeds]
    p = paired(diffs)
    return (f"| {label} | {name} | {', '.join(f'{d:+.2f}' for d in diffs)} | {describe(p)} | "
            f"{beyond_noise(p)} |")


def against_first(root: Path) -> list[str]:
    """Tables (b) and (c): every other row against the table's first row (SA-E, multimodal, LoRA,
    no PE), paired by seed (the rows' own seeds, not the extra-seed folders)."""
    lines = ["### (b) and (c) against their first row (SA-E, multimodal, LoRA, no PE; paired by seed)",
             "", "| row | metric | row - first per seed | mean (95 % CI) | beyond noise? |",
             "|---|---|---|---|---|"]
    found = False
    for folders in list(TABLES.values())[1:]:
        first = root / folders[0]
        for f in folders[1:]:
            for key, name, scale in METRICS:
                line = _paired_line(f, name, scale, per_seed(root / f, key), per_seed(first, key))
                if line:
                    found = True
                    lines.append(line)
    return lines + [""] if found else []


def goal_check(root: Path) -> list[str]:
    """Multimodal neighbour context against no context, per encoding that has both rows (with their
    extra-seed folders): the difference per seed (same seeds, same evaluation sample) and its 95 %
    t interval."""
    lines = ["### Goal check: multimodal context vs no context (paired by seed)", "",
             "| encoding | metric | multimodal - none per seed | mean (95 % CI) | beyond noise? |",
             "|---|---|---|---|---|"]
    found = False
    for enc in ("sa_e", "sa_te", "ca_e"):
        mm, none = root / "context" / f"{enc}-multimodal", root / "context" / f"{enc}-none"
        for key, name, scale in METRICS:
            line = _paired_line(enc, name, scale, merged(mm, key), merged(none, key))
            if line:
                found = True
                lines.append(line)
    if not found:
        return []
    return lines + ["", "BLEU-4 and ROUGE-L x100; CIDEr-D as the scorer gives it. Beyond noise: the 95 % "
                        "interval (Student's t, n - 1 degrees of freedom) excludes 0.", ""]


if __name__ == "__main__":
    main()
