"""How much of a split's test score can be lookup: texts shared across the split, and a linear
probe on the text features scored on test nodes whose text does or does not occur in train.

For each split (MAGB's node-level random split, the grouped split keyed on identical text) it
prints the sizes, how many val/test nodes have a text that occurs (case and spacing aside) on a
training node and how many of those share that node's label, and the test accuracy of a
logistic regression on the data set's cached text features (MiniLM for openclipart), on all
test nodes and on the seen/unseen parts. Features must be cached (run ``make bench`` or
``python -m mmgraph.features dataset=openclipart`` first).

    .venv/bin/python benchmarks/split_overlap.py [--dataset openclipart] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = _provenance.ROOT
SPLITS = {"magb (node-level, MAGB's protocol)": ["split=magb"],
          "grouped on text (the openclipart default)": ["split=grouped"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="openclipart")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    from mmgraph.bench.runner import load_dataset, split_config
    from mmgraph.cli import compose
    from mmgraph.data.splits import make_split, normalised_text
    from mmgraph.paths import config_dir

    lines = _provenance.header(f"{args.dataset}: texts shared across the split, seen and unseen test accuracy")
    lines += ["| split | train / val / test | val texts seen in train | test texts seen in train "
              "(same label) | probe test acc. | on seen | on unseen |", "|---|---|---|---|---|---|---|"]
    for label, overrides in SPLITS.items():
        cfg = compose(config_dir(), [f"dataset={args.dataset}", "features.modalities=[text]", *overrides])
        data = load_dataset(cfg)
        make_split(data, **split_config(cfg))
        store = data[data.meta["target"]]
        texts = [normalised_text(t) for t in store.text]
        y = store.y.numpy()
        idx = {k: store[f"{k}_mask"].nonzero().view(-1).numpy() for k in ("train", "val", "test")}
        label_of = {}
        for i in idx["train"]:
            if texts[i]:
                label_of.setdefault(texts[i], set()).add(int(y[i]))
        seen = {k: np.array([bool(texts[i]) and texts[i] in label_of for i in idx[k]]) for k in ("val", "test")}
        same = sum(int(y[i]) in label_of[texts[i]] for i, s in zip(idx["test"], seen["test"]) if s)
        x = store.x.numpy()
        probe = LogisticRegression(max_iter=2000, C=10.0).fit(x[idx["train"]], y[idx["train"]])
        right = probe.predict(x[idx["test"]]) == y[idx["test"]]
        part = lambda m: f"{100 * right[m].mean():.1f} ({int(m.sum())})" if m.any() else "–"  # noqa: E731
        lines.append(f"| {label} | {' / '.join(str(len(idx[k])) for k in ('train', 'val', 'test'))} | "
                     f"{int(seen['val'].sum())} | {int(seen['test'].sum())} ({same}) | "
                     f"{100 * right.mean():.1f} | {part(seen['test'])} | {part(~seen['test'])} |")
        groups = data.meta["split"].get("groups")
        if groups:
            lines.append(f"|  | {groups['count']} groups, largest {groups['largest']} nodes | | | | | |")
    lines += ["", "Probe: scikit-learn's `LogisticRegression(C=10, max_iter=2000)` on the cached text "
              "features, trained on the training nodes; seen/unseen: test nodes whose text does/does not "
              "occur on a training node (node counts in brackets)."]
    _provenance.emit(lines + [""], args.out)


if __name__ == "__main__":
    main()
