"""The generation examples of the offline data sets, as ``task=generation`` builds them.

For each data set (default: openclipart and Tux Paint with their configs' generation settings and
default split, grouped on the target): examples per split, targets dropped as empty, context
items per example, target length, how many distinct targets there are, and the two overlap
rates the task records (a val/test target that is also a training target; a val/test target
contained in one of its context texts). Nothing is trained.

    .venv/bin/python benchmarks/generation_sets.py [--datasets openclipart,tuxpaint] [--out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="openclipart,tuxpaint")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    from mmgraph.bench.runner import build_task, load_dataset
    from mmgraph.cli import compose
    from mmgraph.paths import config_dir

    lines = _provenance.header("Generation examples of the offline data sets")
    lines += ["Per data set: the configs' generation settings (`model=sa_e`, `task.context=multimodal`), "
              "the default split (grouped on the target).", "",
              "| data set | target | relations | examples train / val / test | empty targets | distinct targets "
              "| target words: mean / median | context items per example | val: target in train / in a context text "
              "| test: target in train / in a context text |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name in args.datasets.split(","):
        cfg = compose(config_dir(), [f"dataset={name}", "model=sa_e", "task.cache_file=null"])
        data = load_dataset(cfg)
        task = build_task(cfg, data, torch.device("cpu"))
        gen, d = task.gen, task.describe()
        words = [len(e.target.split()) for e in gen.examples]
        c, ov = d["examples"], d["overlap"]
        rate = lambda s: (f"{100 * ov[s]['target_in_train']:.1f}% / {100 * ov[s]['target_in_context_text']:.1f}%"
                          if s in ov else "-")
        lines.append(f"| {name} | {d['target']} | {', '.join(r.split('/')[1] for r in d['relations'])} | "
                     f"{c['train']} / {c['val']} / {c['test']} | {gen.meta['empty_targets']} | "
                     f"{len({e.group for e in gen.examples})} | {statistics.mean(words):.1f} / "
                     f"{statistics.median(words):g} | {ov['mean_items']} | {rate('val')} | {rate('test')} |")
    lines.append("")
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
