"""The remedies table of models/gnn.md from the run folders of ``benchmarks/remedies.sh``.

One row per run folder: validation and test accuracy (mean ± std over seeds), test macro-F1,
epochs and seconds per run (the cost), and the test difference to the reference graph-free row
with its standard error ``sqrt(s1^2/n1 + s2^2/n2)``. The reference is the graph-free row with
the highest mean *validation* accuracy (the one a user would pick); the strongest graph-free
row on test is named too, so the comparison can be read against either.

    .venv/bin/python benchmarks/remedies_table.py results/remedies [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

GRAPH_FREE = {"mlp"}


def _row(folder: Path) -> dict | None:
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        return None
    s = json.loads(summary_path.read_text())
    records = [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("seed_*.json"))]
    task = records[0].get("task", {}) if records else {}
    label = s["model"] + (", plain concatenation" if s["fusion"] == "none" else f" + {s['fusion']} fusion")
    if s["modalities"] != "text+image":
        label = f"{s['model']} ({s['modalities']} only)"
    relations = task.get("edge_types") or []
    if relations and len(relations) == 1:
        label += f", {relations[0]} edges only"
    if task.get("correct_and_smooth"):
        label += " + C&S"
    acc = {k: [r["selected"]["accuracy"][k] for r in records] for k in ("val", "test")}
    f1 = [r["selected"]["macro_f1"]["test"] for r in records]
    return {"label": label, "model": s["model"], "folder": folder, "n": len(records),
            "val": acc["val"], "test": acc["test"], "f1": f1,
            "epochs": statistics.mean(r["epochs"] for r in records),
            "seconds": statistics.mean(r["seconds"] for r in records),
            "split": (s.get("split") or {}).get("name")}


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * sd:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = [r for r in (_row(p) for p in sorted(args.runs_dir.glob("*/*")) if p.is_dir()) if r]
    if not rows:
        sys.exit(f"no run folders (*/<n>/summary.json) under {args.runs_dir}")
    free = [r for r in rows if r["model"] in GRAPH_FREE and "C&S" not in r["label"]]
    ref = max(free, key=lambda r: statistics.mean(r["val"]))
    best_test = max(free, key=lambda r: statistics.mean(r["test"]))
    lines = _provenance.header("openclipart (grouped split): does the graph pay off?",
                               f".venv/bin/python benchmarks/remedies_table.py {args.runs_dir}")
    lines += [f"Reference (graph-free row with the best mean validation accuracy): **{ref['label']}**; "
              f"the best graph-free row on test: {best_test['label']}. Split: {ref['split']}. "
              f"Δ test = row − reference, in points, ± its standard error.", "",
              "| model | seeds | val accuracy | test accuracy | test macro-F1 | Δ test vs reference | epochs | s/run |",
              "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -statistics.mean(r["val"])):
        if r is ref:
            delta = "reference"
        else:
            d = 100 * (statistics.mean(r["test"]) - statistics.mean(ref["test"]))
            se = 100 * math.sqrt(statistics.variance(r["test"]) / r["n"] + statistics.variance(ref["test"]) / ref["n"])
            delta = f"{d:+.2f} ± {se:.2f} ({d / se:+.1f} SE)" if se else f"{d:+.2f}"
        lines.append(f"| {r['label']} | {r['n']} | {_ms(r['val'])} | {_ms(r['test'])} | {_ms(r['f1'])} | "
                     f"{delta} | {r['epochs']:.0f} | {r['seconds']:.1f} |")
    lines += ["", "Rows sorted by mean validation accuracy. Run folders: "
              f"`{args.runs_dir}/<group>/<n>/` (records with config, seeds, split and feature fingerprints).", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
