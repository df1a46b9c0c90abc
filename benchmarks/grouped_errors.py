"""Where the graph models lose on the grouped split: test accuracy by the size of a node's group
of identical texts.

Trains each model of ``--models`` (``model:fusion``) once (seed 42, the data set's default split
and MAGB's trainer defaults), takes its predictions at the epoch of best validation accuracy, and
splits val and test nodes by the size of their identical-text group (whitespace and case aside):
large groups are creators' theme sets and metadata twins that sit together on one side of the
split.

    .venv/bin/python benchmarks/grouped_errors.py [--models mlp:attention,gcn:concat,sage:attention] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

BUCKETS = ((1, 1), (2, 19), (20, 10**9))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="openclipart")
    ap.add_argument("--models", default="mlp:attention,gcn:concat,sage:attention")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import numpy as np
    import torch

    from mmgraph.bench.runner import make_model, prepare, trainer_config
    from mmgraph.cli import compose
    from mmgraph.data.splits import normalised_text
    from mmgraph.paths import config_dir
    from mmgraph.train import fit, seed_everything

    lines = _provenance.header(f"{args.dataset}, default split: accuracy by identical-text group size")
    head = " | ".join(f"{split} {lo}" + (f"–{hi}" if hi > lo and hi < 10**9 else "+" if hi > lo else "")
                      for split in ("val", "test") for lo, hi in BUCKETS)
    lines += [f"| model | val | test | {head} |", "|---|---|---|" + "---|" * 2 * len(BUCKETS)]
    sizes_line = None
    for spec in args.models.split(","):
        model, _, fusion = spec.partition(":")
        cfg = compose(config_dir(), [f"dataset={args.dataset}", f"model={model}", f"fusion={fusion or 'none'}"])
        device, data, task = prepare(cfg)
        seed_everything(args.seed)
        net = make_model(cfg, data, task, device)
        best = {"val": -1.0, "pred": None}

        def keep(epoch, row, selected, net=net, task=task, best=best):
            val = row.get("val/accuracy", -1.0)
            if val > best["val"]:
                net.eval()
                with torch.no_grad():
                    best["val"], best["pred"] = val, task._predict(net).argmax(-1).cpu()
                net.train()

        tc = trainer_config(cfg.trainer)
        tc.progress = False
        fit(task, net, tc, on_eval=keep)
        store = data[data.meta["target"]]
        texts = [normalised_text(t) for t in store.text]
        count = Counter(t for t in texts if t)
        size = np.array([count[t] if t else 1 for t in texts])
        y = task.y.cpu().numpy()
        cells, totals, sizes = [], [], []
        for split in ("val", "test"):
            idx = task.index[split].cpu().numpy()
            ok = best["pred"].numpy()[idx] == y[idx]
            totals.append(f"{100 * ok.mean():.1f}")
            for lo, hi in BUCKETS:
                m = (size[idx] >= lo) & (size[idx] <= hi)
                cells.append(f"{100 * ok[m].mean():.1f}" if m.any() else "–")
                sizes.append(str(int(m.sum())))
        sizes_line = f"| nodes | {len(task.index['val'])} | {len(task.index['test'])} | {' | '.join(sizes)} |"
        lines.append(f"| {model} + {fusion or 'none'} | {' | '.join(totals)} | {' | '.join(cells)} |")
    lines.append(sizes_line)
    lines += ["", f"One seed ({args.seed}); accuracy in % at the epoch of best validation accuracy; "
              "columns: nodes whose identical-text group has that many nodes in the whole graph.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
