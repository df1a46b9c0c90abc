"""Feature extraction: mmgraph's pipeline vs a naive one-item-at-a-time loop over the same models.

Usage (from the repository root)::

    .venv/bin/python benchmarks/feature_extraction.py                      # 800 openclipart nodes
    .venv/bin/python benchmarks/feature_extraction.py --nodes 200 --repeats 1

Data: the openclipart graph (``load_openclipart`` with the config defaults, downloaded and
built if needed), a seeded random sample of ``--nodes`` nodes (seed 0, kept in node order), so
the sample has the data set's own share of repeated texts. Models: ``minilm`` for the text and
``efficientnet_lite0`` for the images; both sides call the very same encoder objects, so the
features are identical (checked) and only the way items are fed differs.

*Naive* (the way MAGB's extractors for CLIP and VLM features work): for every node, one forward
pass; a text is tokenised alone (no padding), an image is decoded and preprocessed in the main
process right before its forward pass. No caching.

*Pipeline* (:func:`mmgraph.features.encode_nodes` with ``cache_dir=False``, so no cache hit can
help): identical items are encoded once; texts are sorted by token length and batched (16,
the CPU default); images are decoded and preprocessed by 2 worker processes while the model
runs on pairs of images (the CPU default), channels-last. The row "pipeline, no dedup" switches deduplication off to show what batching
and workers alone give.

Protocol: one untimed warm-up of each side on 16 nodes, then ``--repeats`` rounds, alternating
which side goes first. Reported: nodes per second (median over rounds) for text, image and both
(the sum of the two times), and the ratio pipeline / naive. Thread count is torch's default
(2 on the 2-core machine) on both sides.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmgraph.data.images import load_image  # noqa: E402
from mmgraph.data.openclipart import load_openclipart  # noqa: E402
from mmgraph.features import encode_nodes, get_encoder  # noqa: E402
from mmgraph.paths import default_data_root  # noqa: E402


def naive(data, modality, enc):
    store = data[data.meta["target"]]
    rows = []
    with torch.inference_mode():
        for i in range(store.num_nodes):
            if modality == "text":
                t = store.text[i]
                rows.append(enc.encode_text([t.strip()]) if t and t.strip() else torch.zeros(1, enc.dim))
            else:
                img = load_image(store.image[i], root=data.meta["image_root"], max_side=enc.image_size)
                rows.append(enc.encode_image([enc.prepare_image(img)]))
    return torch.cat(rows)


def pipeline(data, modality, enc, deduplicate=True):
    return encode_nodes(data, modality, enc, cache_dir=False, attach=False, progress=False,
                        deduplicate=deduplicate).x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "feature_extraction.md"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    full = load_openclipart(default_data_root(), progress=False)
    nt = full.meta["target"]
    idx = torch.randperm(full[nt].num_nodes, generator=torch.Generator().manual_seed(0))[: args.nodes].sort().values
    data = full.subgraph({nt: idx})
    n = data[nt].num_nodes
    distinct = len({t for t in data[nt].text if t})
    encoders = {"text": get_encoder("minilm").load(), "image": get_encoder("efficientnet_lite0").load()}
    warm = full.subgraph({nt: idx[:16]})
    for m, enc in encoders.items():
        naive(warm, m, enc)
        pipeline(warm, m, enc)

    sides = {"naive": lambda m: naive(data, m, encoders[m]),
             "pipeline, no dedup": lambda m: pipeline(data, m, encoders[m], deduplicate=False),
             "pipeline": lambda m: pipeline(data, m, encoders[m])}
    times = {s: {m: [] for m in encoders} for s in sides}
    outputs = {}
    for r in range(args.repeats):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for s in order:
            for m in encoders:
                t0 = time.perf_counter()
                outputs[(s, m)] = sides[s](m)
                times[s][m].append(time.perf_counter() - t0)
                print(f"round {r}: {s:20s} {m:5s} {n / times[s][m][-1]:7.1f} nodes/s", flush=True)
    for m in encoders:
        for s in sides:
            diff = (outputs[(s, m)] - outputs[("naive", m)]).abs().max().item()
            assert diff < 1e-3, f"{s} {m} features differ from the naive loop by {diff}"

    med = {s: {m: statistics.median(v) for m, v in d.items()} for s, d in times.items()}
    rows = []
    for s in sides:
        both = med[s]["text"] + med[s]["image"]
        rows.append((s, n / med[s]["text"], n / med[s]["image"], n / both))
    base = rows[0]
    lines = [
        "# Feature extraction: pipeline vs one item at a time",
        "",
        f"Command: `.venv/bin/python benchmarks/feature_extraction.py --nodes {args.nodes} --repeats {args.repeats}`",
        f"Date: {datetime.date.today()}; machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"Python {platform.python_version()}, torch {torch.__version__}.",
        f"Data: {n} openclipart nodes (seeded sample), {distinct} distinct texts; models minilm (text) and "
        f"efficientnet_lite0 (image); features identical on all sides (max abs diff < 1e-3).",
        "",
        "| side | text nodes/s | image nodes/s | text+image nodes/s | speed-up text | image | text+image |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, t, i, b in rows:
        lines.append(f"| {s} | {t:.1f} | {i:.1f} | {b:.1f} | {t / base[1]:.2f}x | {i / base[2]:.2f}x | "
                     f"{b / base[3]:.2f}x |")
    lines += ["", "Median over rounds; per-round numbers:", ""]
    for s in sides:
        for m in encoders:
            lines.append(f"- {s}, {m}: " + ", ".join(f"{n / t:.1f}" for t in times[s][m]) + " nodes/s")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
