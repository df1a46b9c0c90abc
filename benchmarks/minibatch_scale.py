"""Mini-batch GraphSAGE on a large synthetic graph: ours (with and without layer trimming) beside DGL's pipeline.

Usage (from the repository root)::

    .venv/bin/python benchmarks/minibatch_scale.py                      # 1M nodes / 10M edges, one epoch per side
    .venv/bin/python benchmarks/minibatch_scale.py --nodes 100000 --edges 1000000   # small
    .venv/bin/python benchmarks/minibatch_scale.py --max-batches 20     # time 20 batches, extrapolate
    .venv/bin/python benchmarks/minibatch_scale.py --sides ours,trim    # without DGL
    .venv/bin/python benchmarks/minibatch_scale.py --out benchmarks/results/minibatch_dgl.md

Graph: :func:`mmgraph.data.make_synthetic` (degree-corrected SBM, 6 classes, homophily 0.8,
power-law degrees with exponent 2.5, no self loops; ``x`` = text + image features, 64 + 64 = 128
float32 by default), split with MAGB's protocol into 10% train / 10% val / 80% test
(``--train-ratio``). Generated once by this process (not timed), then saved to a temporary file
without the generator's raw texts and per-modality feature matrices (``x``, ``y``, the edges,
the split and modality masks remain); each side loads that file in **its own subprocess** (this
script with ``--_worker``), so every side's peak memory is its own process's high-water mark
(``VmHWM`` from ``/proc/self/status``), and sides run one after the other (``--sides``).

Every side takes its tensors from :class:`mmgraph.tasks.NodeClassification` ``.setup`` (the
homogeneous view the library trains on), uses the same training seeds, shuffled, in batches of
``--batch-size`` (1024; the last batch smaller, no ``drop_last``), the same fanouts (15 for the
seeds, then 10 for the nodes they reached), the same model and optimiser: GraphSAGE (mean), 2
layers, hidden 256, BatchNorm, ReLU, dropout 0.5, no self loops added (the graph has none;
SAGE's root weight takes the node itself), AdamW lr 0.005 (torch's default weight decay),
label-smoothed cross-entropy (0.1) on the seeds, and the same thread count (``--threads``; DGL's
own OpenMP threads are set to the same number).

Sides:

- ``ours``: training through ``NodeClassification(batch_size=1024, num_neighbors=[15, 10],
  trim_layers=False).train_epoch``, i.e. the path ``python -m mmgraph.bench
  task.batch_size=1024 task.trim_layers=false`` takes (each batch's sampled subgraph becomes one
  ``mmgraph.nn.sparse.Adjacency``, every layer computes every sampled node);
- ``trim``: the same with ``trim_layers=True`` (:mod:`mmgraph.nn.trim`: each layer computes
  only the nodes later layers need, the last layer the seeds only; the seeds' outputs are the
  same; in training BatchNorm's statistics then cover the rows each layer computes);
- ``dgl``: DGL's own pipeline, ``dgl.dataloading.NeighborSampler([10, 15],
  prefetch_node_feats=["feat"], prefetch_labels=["label"])`` (DGL lists fanouts from the input
  layer to the output layer, so ``[10, 15]`` samples 15 in-neighbours per seed, as our
  ``[15, 10]`` does) + ``dgl.dataloading.DataLoader`` (CPU, no workers, ``shuffle=True``,
  ``drop_last=False``) on ``dgl.graph((src, dst))`` built from the same ``edge_index`` (DGL's
  default formats: COO, and the CSC its first, untimed, sampling call creates), and the model
  written with ``dgl.nn.SAGEConv(in, out, "mean")`` on the sampled blocks (BatchNorm1d, ReLU,
  ``torch.nn.Dropout`` between the layers). DGL's ``SAGEConv`` initialises its weights
  xavier-uniform (ours: torch's ``Linear`` default); this does not change the work per batch.
  The samplers differ in one respect: a DGL block samples in-neighbours for *every* destination
  node of its layer, so the input layer's block samples 10 neighbours for the seeds too (ours,
  like PyG's, samples each node once, in the hop that first reaches it, and every layer reuses
  those edges); DGL's batches therefore hold more edges (the sampler rows show both counts).

Reported per side:

- *sampler alone*: the sampler on consecutive batches of one shuffled pass over the training
  seeds, ``--sampler-batches`` batches, the same seeds on every side, without features (ours:
  ``UniformNeighborSampler.sample``; DGL: ``NeighborSampler.sample``, which also builds the
  blocks);
- *loader*: sampling + gathering ``x`` and ``y`` of the sampled nodes, the same batches (ours:
  ``neighbor_loader`` into a PyG ``Data``; DGL: its ``DataLoader`` with feature prefetching),
  after one untimed batch (the first iteration of DGL's first DataLoader in a process takes
  ~0.3 s of one-time setup; this stage absorbs it before the training is timed); ours also
  PyG's NeighborLoader when pyg-lib or torch-sparse is importable;
- *training*: ``--epochs`` epochs (or ``--max-batches`` batches each, extrapolated to the epoch
  and labelled so), the median epoch, with the time spent inside the sampler measured by
  wrapping it;
- memory: the process's RSS after setup (the graph and the sampler's graph structure loaded) and
  its peak RSS (``VmHWM``) at the end, after the training.

The table goes to stdout and, with the command, the commit, the machine, the date and the load
average (``_provenance``), to ``--out`` when given.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402
from dgl_parity import _status_mb, set_threads  # noqa: E402  (one copy of each helper)

SIDES = ("ours", "trim", "dgl")
LABELS = {"ours": "ours", "trim": "ours, trimmed layers", "dgl": "DGL"}


def mib(*tensors) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


class Limited:
    """A loader that stops after ``n`` batches (attributes pass through to the loader)."""

    def __init__(self, loader, n: int):
        self._loader, self._n = loader, n

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def __iter__(self):
        return itertools.islice(iter(self._loader), self._n)

    def __len__(self):
        return min(self._n, len(self._loader))


class Stages:
    """Prints each stage's wall time and the peak RSS so far."""

    def __init__(self, side: str):
        self.side, self.t = side, time.perf_counter()

    def __call__(self, name: str, start: float | None = None, extra: str = "") -> None:
        now = time.perf_counter()
        print(f"[{self.side}] {name:<34s} {now - (self.t if start is None else start):8.2f} s   "
              f"peak RSS {_status_mb('VmHWM'):7.0f} MiB  {extra}", flush=True)
        self.t = now


# ----------------------------------------------------------------------------- the sides

def setup_task(data, args: argparse.Namespace, side: str):
    """The task view every side reads (ours: with its mini-batch loaders)."""
    import torch

    from mmgraph.tasks import NodeClassification

    if side == "dgl":  # the same tensors, no loaders of ours
        task = NodeClassification(label_smoothing=0.1)
    else:
        task = NodeClassification(label_smoothing=0.1, batch_size=args.batch_size,
                                  num_neighbors=args.fanouts, sampler=args.backend,
                                  trim_layers=side == "trim")
    task.setup(data, torch.device("cpu"))
    return task


def measurement_seeds(train_idx, args: argparse.Namespace):
    """One shuffled pass's worth of seed batches, the same on every side."""
    import torch

    gen = torch.Generator().manual_seed(args.seed)
    perm = train_idx[torch.randperm(train_idx.numel(), generator=gen)]
    n_batches = math.ceil(train_idx.numel() / args.batch_size)
    k = min(args.sampler_batches, n_batches)
    return perm, [perm[i * args.batch_size:(i + 1) * args.batch_size] for i in range(k)]


def run_ours(data, args: argparse.Namespace, side: str, stage: Stages) -> dict[str, Any]:
    import torch

    from mmgraph.data.sampler import neighbor_loader, pyg_backend
    from mmgraph.nn import GraphSAGE
    from mmgraph.train import seed_everything

    task = setup_task(data, args, side)
    loader = task._loaders["train"]
    sampler = loader.node_sampler
    n_train = task.index["train"].numel()
    res: dict[str, Any] = {
        "backend": loader.backend, "n_train": n_train,
        "n_batches": math.ceil(n_train / args.batch_size),
        "sizes": (f"x {mib(task.x):.0f} MiB, edge_index {mib(task.edge_index):.0f} MiB"
                  + (f", CSC {mib(*sampler.csc):.0f} MiB" if hasattr(sampler, "csc") else ""))}
    perm, batches = measurement_seeds(task.index["train"].cpu(), args)
    if hasattr(sampler, "sample"):
        sampler.sample(batches[0])  # warm-up (allocates the id map)
    res["base_mb"] = _status_mb("VmRSS")
    stage(f"task setup (view, loaders; {loader.backend})", extra=res["sizes"])

    # 1. the sampler alone
    if hasattr(sampler, "sample"):
        start, edges, nodes = time.perf_counter(), 0, 0
        for seeds in batches:
            out = sampler.sample(seeds)
            edges += out.edge.numel()
            nodes += out.node.numel()
        res["sampler"] = {"batches": len(batches), "s": time.perf_counter() - start,
                          "edges": edges, "nodes": nodes}
        stage(f"sampler alone, {len(batches)} batches", start)

    # 2. the loader without a model (sampling + feature gathering), and PyG's if importable
    def time_loader(backend: str) -> dict[str, Any]:
        ld = neighbor_loader(loader.data, args.fanouts, input_nodes=perm[:len(batches) * args.batch_size],
                             batch_size=args.batch_size, shuffle=False, backend=backend,
                             seed=args.seed, csc=getattr(sampler, "csc", None))
        next(iter(ld))  # untimed first batch (one-time setup)
        start, edges = time.perf_counter(), 0
        for batch in ld:
            edges += batch.edge_index.size(1)
        return {"batches": len(batches), "s": time.perf_counter() - start, "edges": edges}

    if side == "ours":
        res["loader"] = time_loader("torch")
        stage(f"loader (torch), {len(batches)} batches")
        compiled = pyg_backend()
        res["pyg_backend"] = compiled
        if compiled:
            res["pyg_loader"] = time_loader("pyg")
            stage(f"loader ({compiled}), {len(batches)} batches")

    # 3. training through the task, the sampler's time measured by wrapping it
    seed_everything(args.seed)
    model = task.wrap(GraphSAGE(**task.model_kwargs(), hidden_channels=args.hidden,
                                num_layers=len(args.fanouts), aggr="mean", dropout=0.5,
                                norm="batch"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    inner = sampler.sample_from_nodes
    spent = {"s": 0.0, "edges": 0, "batches": 0}

    def timed(index, **kw):
        start = time.perf_counter()
        out = inner(index, **kw)
        spent["s"] += time.perf_counter() - start
        spent["edges"] += out.edge.numel() if out.edge is not None else out.row.numel()
        spent["batches"] += 1
        return out

    sampler.sample_from_nodes = timed
    if args.max_batches:
        task._loaders["train"] = Limited(loader, args.max_batches)
    epochs, losses = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        losses.append(task.train_epoch(model, optimizer))
        epochs.append(time.perf_counter() - start)
        stage(f"training, epoch {len(epochs)}", start, f"loss {losses[-1]:.4f}")
    res["train"] = {"epochs": epochs, "losses": losses, "batches": spent["batches"] // args.epochs,
                    "sampler_s": spent["s"], "sampler_edges": spent["edges"],
                    "sampler_batches": spent["batches"]}
    res["peak_mb"] = _status_mb("VmHWM")
    return res


def _dgl_model(in_feats: int, hidden: int, n_classes: int, layers: int, dropout: float):
    import torch.nn.functional as F
    from dgl.nn import SAGEConv
    from torch import nn

    class SAGE(nn.Module):
        """GraphSAGE on DGL blocks: SAGEConv (mean) -> BatchNorm -> ReLU -> Dropout between layers."""

        def __init__(self):
            super().__init__()
            dims = [in_feats] + [hidden] * (layers - 1) + [n_classes]
            self.convs = nn.ModuleList(SAGEConv(dims[i], dims[i + 1], "mean") for i in range(layers))
            self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers - 1))
            self.dropout = nn.Dropout(dropout)

        def forward(self, blocks, h):
            for i, (conv, block) in enumerate(zip(self.convs, blocks)):
                h = conv(block, h)
                if i < len(self.convs) - 1:
                    h = self.dropout(F.relu(self.norms[i](h)))
            return h

    return SAGE()


def run_dgl(data, args: argparse.Namespace, stage: Stages) -> dict[str, Any]:
    import dgl
    import torch
    import torch.nn.functional as F

    from mmgraph.train import seed_everything

    task = setup_task(data, args, "dgl")
    src, dst = task.edge_index
    g = dgl.graph((src, dst), num_nodes=task.x.size(0))
    g.ndata["feat"], g.ndata["label"] = task.x, task.y
    train_idx = task.index["train"].cpu()
    n_train = train_idx.numel()
    fanouts = list(reversed(args.fanouts))  # DGL: input layer first; ours: the seeds' hop first
    sampler = dgl.dataloading.NeighborSampler(fanouts, prefetch_node_feats=["feat"],
                                              prefetch_labels=["label"])
    perm, batches = measurement_seeds(train_idx, args)
    sampler.sample(g, batches[0])  # warm-up: DGL creates the CSC it samples from
    res: dict[str, Any] = {"backend": f"dgl.dataloading.NeighborSampler({fanouts})",
                           "n_train": n_train, "n_batches": math.ceil(n_train / args.batch_size),
                           "formats": str(g.formats()), "base_mb": _status_mb("VmRSS"),
                           "self_loops": int((src == dst).sum())}
    stage("setup (view, DGL graph, CSC)", extra=f"formats {res['formats']}")

    def loader(indices, shuffle: bool, graph_sampler=sampler):
        return dgl.dataloading.DataLoader(g, indices, graph_sampler, batch_size=args.batch_size,
                                          shuffle=shuffle, drop_last=False, num_workers=0,
                                          device="cpu")

    # 1. the sampler alone
    start, edges, nodes = time.perf_counter(), 0, 0
    for seeds in batches:
        input_nodes, _, blocks = sampler.sample(g, seeds)
        edges += sum(b.num_edges() for b in blocks)
        nodes += input_nodes.numel()
    res["sampler"] = {"batches": len(batches), "s": time.perf_counter() - start, "edges": edges,
                      "nodes": nodes}
    stage(f"sampler alone, {len(batches)} batches", start)

    # 2. the loader without a model (sampling + feature gathering)
    ld = loader(perm[:len(batches) * args.batch_size], shuffle=False)
    next(iter(ld))  # untimed first batch (one-time setup: ~0.3 s for DGL's first DataLoader)
    start, edges = time.perf_counter(), 0
    for _, _, blocks in ld:
        edges += sum(b.num_edges() for b in blocks)
        blocks[0].srcdata["feat"], blocks[-1].dstdata["label"]  # noqa: B018 (gathered)
    res["loader"] = {"batches": len(batches), "s": time.perf_counter() - start, "edges": edges}
    stage(f"loader (DGL DataLoader), {len(batches)} batches", start)

    # 3. training, the sampler's time measured by wrapping it (before the DataLoader binds it)
    seed_everything(args.seed)
    model = _dgl_model(task.x.size(1), args.hidden, task.num_classes, len(args.fanouts), 0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    inner = sampler.sample
    spent = {"s": 0.0, "edges": 0, "batches": 0}

    def timed(graph, indices, *a, **kw):
        start = time.perf_counter()
        out = inner(graph, indices, *a, **kw)
        spent["s"] += time.perf_counter() - start
        spent["edges"] += sum(b.num_edges() for b in out[2])
        spent["batches"] += 1
        return out

    sampler.sample = timed
    train_loader = loader(train_idx, shuffle=True)
    epochs, losses = [], []
    for _ in range(args.epochs):
        model.train()
        start = time.perf_counter()
        total, count, done = 0.0, 0, 0
        for _, _, blocks in itertools.islice(train_loader, args.max_batches):
            x, y = blocks[0].srcdata["feat"], blocks[-1].dstdata["label"]
            optimizer.zero_grad(set_to_none=True)
            out = model(blocks, x)
            loss = F.cross_entropy(out, y, label_smoothing=0.1)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * y.numel()
            count += y.numel()
            done += 1
        epochs.append(time.perf_counter() - start)
        losses.append(total / max(count, 1))
        stage(f"training, epoch {len(epochs)}", start, f"loss {losses[-1]:.4f}")
    res["train"] = {"epochs": epochs, "losses": losses, "batches": done,
                    "sampler_s": spent["s"], "sampler_edges": spent["edges"],
                    "sampler_batches": spent["batches"]}
    res["peak_mb"] = _status_mb("VmHWM")
    return res


def worker(args: argparse.Namespace) -> None:
    """One side in this process: load the graph, measure, write the JSON result."""
    warnings.filterwarnings("ignore", message=".*(torch.jit.script|Sparse CSR|CPU affinity).*")
    side = args._worker
    stage = Stages(side)
    if args.tune_malloc:
        from mmgraph._malloc import tune_malloc
        tune_malloc()
    import torch

    threads = set_threads(args.threads, with_dgl=side == "dgl")
    if side == "dgl":
        import dgl  # noqa: F401  (imported before the graph is loaded, as ours imports torch_geometric)
    import torch_geometric  # noqa: F401
    stage("import")
    data = torch.load(args._data, weights_only=False)
    stage("load the graph")
    res = run_dgl(data, args, stage) if side == "dgl" else run_ours(data, args, side, stage)
    res["threads"] = threads
    Path(args._result).write_text(json.dumps(res))


# ----------------------------------------------------------------------------- report

def _rate(m: dict[str, Any] | None) -> str:
    if not m:
        return "not measured"
    per = m["s"] / m["batches"]
    text = (f"{m['batches'] / m['s']:.1f} batches/s ({1000 * per:.1f} ms/batch), "
            f"{m['edges'] / m['s'] / 1e6:.2f} M edges/s")
    if "nodes" in m:
        text += f"; {m['nodes'] / m['batches']:,.0f} nodes, {m['edges'] / m['batches']:,.0f} edges per batch"
    return text


def epoch_seconds(r: dict[str, Any]) -> tuple[float, bool]:
    """Median epoch time, extrapolated to the full epoch when fewer batches ran."""
    t = r["train"]
    sec = statistics.median(t["epochs"])
    full = t["batches"] == r["n_batches"]
    return (sec if full else sec / t["batches"] * r["n_batches"]), full


def table(results: dict[str, dict[str, Any]], dgl_version: str) -> list[str]:
    sides = list(results)
    labels = [LABELS[s] if s != "dgl" else f"DGL {dgl_version}" for s in sides]
    ratios = [s for s in sides if s != "dgl"] if "dgl" in results else []
    head = ["measurement", *labels, *[f"{LABELS[s]} / DGL" for s in ratios]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]

    def row(name: str, cells: list[str], values: list[float | None] | None = None) -> None:
        ratio = []
        if ratios:
            d = values[sides.index("dgl")] if values else None
            for s in ratios:
                v = values[sides.index(s)] if values else None
                ratio.append(f"{v / d:.2f}" if v is not None and d else "")
        lines.append("| " + " | ".join([name, *cells, *ratio]) + " |")

    ep = [epoch_seconds(results[s]) for s in sides]
    row("**time per epoch (training)**" + ("" if all(f for _, f in ep) else ", EXTRAPOLATED"),
        [f"**{sec:.1f} s**" + ("" if full else f" ({results[s]['train']['batches']} of "
                                               f"{results[s]['n_batches']} batches)")
         for s, (sec, full) in zip(sides, ep)], [sec for sec, _ in ep])
    row("time per training batch", [f"{1000 * sec / results[s]['n_batches']:.0f} ms"
                                    for s, (sec, _) in zip(sides, ep)],
        [sec for sec, _ in ep])
    row("**peak RSS (the side's own process)**", [f"**{results[s]['peak_mb']:,.0f} MiB**" for s in sides],
        [results[s]["peak_mb"] for s in sides])
    row("RSS after setup (graph loaded, sampler ready)", [f"{results[s]['base_mb']:,.0f} MiB" for s in sides],
        [results[s]["base_mb"] for s in sides])
    row("peak RSS minus RSS after setup", [f"{results[s]['peak_mb'] - results[s]['base_mb']:,.0f} MiB"
                                           for s in sides],
        [results[s]["peak_mb"] - results[s]["base_mb"] for s in sides])
    row("sampler alone (time per batch)", [_rate(results[s].get("sampler")) for s in sides],
        [results[s]["sampler"]["s"] / results[s]["sampler"]["batches"] if results[s].get("sampler")
         else None for s in sides])
    row("loader: sample + gather x, y (time per batch)",
        [_rate(results[s].get("loader")) if s != "trim" else "(the same loader as ours)" for s in sides],
        [results[s]["loader"]["s"] / results[s]["loader"]["batches"] if results[s].get("loader")
         else None for s in sides])
    cells, values = [], []
    for s in sides:
        t = results[s]["train"]
        total = sum(t["epochs"])
        cells.append(f"{t['sampler_s']:.2f} s of {total:.2f} s ({100 * t['sampler_s'] / total:.0f}%), "
                     f"{t['sampler_edges'] / max(t['sampler_s'], 1e-9) / 1e6:.2f} M edges/s")
        values.append(t["sampler_s"] / max(t["sampler_batches"], 1))
    row("sampler inside training (ratio: per batch)", cells, values)
    row("training loss (last epoch)", [f"{results[s]['train']['losses'][-1]:.3f}" for s in sides])
    row("sampler / loader used", [f"`{results[s]['backend']}`" for s in sides])
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--edges", type=int, default=10_000_000)
    ap.add_argument("--dim", type=int, default=64, help="text and image feature size each")
    ap.add_argument("--train-ratio", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--fanouts", type=int, nargs="+", default=[15, 10],
                    help="neighbours per hop, the seeds' hop first (as task.num_neighbors)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--sides", default=",".join(SIDES),
                    help="comma-separated, run in this order: ours (no trimming), trim (ours with "
                         "layer trimming), dgl (DGL's NeighborSampler + DataLoader + SAGEConv)")
    ap.add_argument("--epochs", type=int, default=1, help="training epochs per side (median reported)")
    ap.add_argument("--sampler-batches", type=int, default=50,
                    help="batches for the sampler-alone and loader-alone measurements")
    ap.add_argument("--max-batches", type=int, default=None,
                    help="train only this many batches per epoch and extrapolate to the epoch")
    ap.add_argument("--backend", default="auto", choices=["auto", "pyg", "torch"],
                    help="our sampler (task.sampler)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads, and DGL's (default: torch's)")
    ap.add_argument("--tune-malloc", action="store_true",
                    help="apply mmgraph._malloc.tune_malloc() in every process, as the mmgraph.bench "
                         "CLI does")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the results file here")
    ap.add_argument("--_worker", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--_data", help=argparse.SUPPRESS)
    ap.add_argument("--_result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        return worker(args)
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    bad = [s for s in sides if s not in SIDES]
    if bad or not sides:
        ap.error(f"--sides: choose from {', '.join(SIDES)}; got {args.sides!r}")

    warnings.filterwarnings("ignore", message=".*(torch.jit.script|Sparse CSR).*")
    t0 = time.perf_counter()
    if args.tune_malloc:
        from mmgraph._malloc import tune_malloc
        print(f"glibc malloc tuning applied: {tune_malloc()}")
    import torch
    import torch_geometric

    from mmgraph.data import make_split, make_synthetic

    if args.threads:
        torch.set_num_threads(args.threads)
    dgl_version = "not run"
    if "dgl" in sides:
        import dgl  # fail early, before generating the graph
        dgl_version = dgl.__version__
    lines = _provenance.header("Mini-batch GraphSAGE: ours (with and without layer trimming) "
                               "beside DGL's pipeline")
    full = (args.nodes, args.edges) == (1_000_000, 10_000_000)
    if not full:
        lines += ["**Reduced-size check**, not the 1M-node / 10M-edge measurement.", ""]
    lines += [f"- versions: torch-geometric {torch_geometric.__version__}, DGL {dgl_version}; "
              f"threads: {args.threads or torch.get_num_threads()} (torch, and DGL's)",
              f"- glibc malloc tuning: {'applied in every process' if args.tune_malloc else 'off'}"]
    print("\n".join(lines), flush=True)

    start = time.perf_counter()
    data = make_synthetic(num_nodes=args.nodes, num_edges=args.edges, text_dim=args.dim,
                          image_dim=args.dim, seed=args.seed)
    make_split(data, "magb", train_ratio=args.train_ratio, val_ratio=args.train_ratio, seed=42)
    store = data[data.meta["target"]]
    for key in ("text", "image", "x_text", "x_image"):  # the model reads x; keep the file small
        if key in store:
            del store[key]
    ei = data.edge_stores[0].edge_index
    n_train = int(store.train_mask.sum())
    desc = (f"graph: {args.nodes:,} nodes, {ei.size(1):,} directed edges ({int((ei[0] == ei[1]).sum())} "
            f"self loops; no side adds any), x {args.nodes:,} x {2 * args.dim} float32, "
            f"{len(data.meta['class_names'])} classes; {n_train:,} training seeds -> "
            f"{math.ceil(n_train / args.batch_size)} batches of {args.batch_size} per epoch; "
            f"fanouts {args.fanouts} (the seeds' hop first), hidden {args.hidden}, "
            f"{len(args.fanouts)} layers, AdamW lr {args.lr}; generated in "
            f"{time.perf_counter() - start:.1f} s (not timed)")
    print(desc, flush=True)
    del ei, store

    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="minibatch_scale_") as tmp:
        data_file = os.path.join(tmp, "graph.pt")
        torch.save(data, data_file)
        del data
        passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
        for side in sides:
            result_file = os.path.join(tmp, f"{side}.json")
            cmd = [sys.executable, str(Path(__file__).resolve()), *passthrough,
                   "--_worker", side, "--_data", data_file, "--_result", result_file]
            print(f"\n[{side}] own process", flush=True)
            proc = subprocess.run(cmd)
            if proc.returncode != 0 or not os.path.exists(result_file):
                failed[side] = f"worker failed (rc {proc.returncode}); see its output above"
                print(f"[{side}] {failed[side]}", flush=True)
                continue
            results[side] = json.loads(Path(result_file).read_text())

    lines += [f"- {desc}", ""]
    if results:
        lines += ["## Result", "", *table(results, dgl_version), ""]
    lines += [f"Failed: {side}: {why}" for side, why in failed.items()]
    lines += [
        "Each side ran in its own process (the script's `--_worker`), one after the other in the "
        f"order {', '.join(sides)}; times are wall-clock. Ratio columns: ours / DGL of the "
        "row's time (or MiB), so below 1 means ours is faster (smaller). Peak RSS is the "
        "process's `VmHWM`. *Sampler alone* and *loader*: the same "
        f"{min(args.sampler_batches, math.ceil(n_train / args.batch_size))} batches of seeds on "
        "every side. What each side runs: the "
        "docstring of [`benchmarks/minibatch_scale.py`](../minibatch_scale.py).", "",
        "Per side:", "", "```"]
    for side, r in results.items():
        t = r["train"]
        lines.append(f"{side}: epochs {['%.2f' % v for v in t['epochs']]} s ({t['batches']} batches "
                     f"each of {r['n_batches']}), losses {['%.4f' % v for v in t['losses']]}; "
                     f"sampler {r['backend']}; threads {r['threads']}"
                     + (f"; {r['sizes']}" if "sizes" in r else "")
                     + (f"; DGL graph formats {r['formats']}" if "formats" in r else ""))
        if side == "ours":
            lines.append("ours: PyG NeighborLoader " + (_rate(r["pyg_loader"]) if r.get("pyg_loader")
                                                        else "not measured: neither pyg-lib nor "
                                                             "torch-sparse is importable"))
    lines += [f"load average (1, 5, 15 min) at end: {_provenance.load()}; total wall time "
              f"{time.perf_counter() - t0:.0f} s", "```", ""]
    print()
    _provenance.emit(lines, args.out)
    if args.out:
        print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
