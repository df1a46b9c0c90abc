"""How much each modality of the synthetic graph tells about the class: a linear probe.

For seeds 0-2, ``make_synthetic(num_nodes=2000, missing_rate=0.0, seed=s)`` (other settings
default), then held-out accuracy of scikit-learn's ``LogisticRegression(max_iter=1000)`` trained
on a random half of the nodes and scored on the other half (the probe of
``tests/data/test_synthetic.py``), on ``x_text``, ``x_image`` and both; then the same with
``text_informativeness=0`` and ``image_informativeness=0`` (chance is 1/6).

    .venv/bin/python benchmarks/synthetic_separability.py [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402


def probe(x: torch.Tensor, y: torch.Tensor) -> float:
    from sklearn.linear_model import LogisticRegression

    x, y = x.numpy(), y.numpy()
    order = np.random.default_rng(0).permutation(len(y))
    tr, te = order[: len(y) // 2], order[len(y) // 2:]
    return LogisticRegression(max_iter=1000).fit(x[tr], y[tr]).score(x[te], y[te])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from mmgraph.data import make_synthetic

    lines = _provenance.header("Synthetic graph: linear-probe accuracy per modality")
    lines += ["| informativeness (text, image) | seed | text | image | text + image |", "|---|---|---|---|---|"]
    for info in (0.6, 0.0):
        for seed in (0, 1, 2):
            data = make_synthetic(num_nodes=2000, missing_rate=0.0, seed=seed,
                                  text_informativeness=info, image_informativeness=info)
            s = data["item"]
            accs = [probe(s.x_text, s.y), probe(s.x_image, s.y), probe(s.x, s.y)]
            lines.append(f"| {info}, {info}{' (default)' if info == 0.6 else ''} | {seed} | "
                         + " | ".join(f"{a:.3f}" for a in accs) + " |")
            print(lines[-1], flush=True)
    lines += ["", f"Load average at end: {_provenance.load()}.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
