"""Mini-batch GraphSAGE on a large synthetic graph: time per epoch, sampler throughput, peak RSS.

Usage::

    python benchmarks/minibatch_scale.py                      # 1M nodes / 10M edges, one epoch
    python benchmarks/minibatch_scale.py --nodes 100000 --edges 1000000   # small
    python benchmarks/minibatch_scale.py --max-batches 20     # time 20 batches, extrapolate

Graph: :func:`mmgraph.data.make_synthetic` (degree-corrected SBM, 6 classes, homophily 0.8,
power-law degrees with exponent 2.5; ``x`` = text + image features, 64 + 64 = 128 float32 by
default), split with MAGB's protocol into 10% train / 10% val / 80% test (``--train-ratio``).
Model: GraphSAGE (mean), 2 layers, hidden 256, BatchNorm, dropout 0.5; AdamW. Training runs
through :class:`mmgraph.tasks.NodeClassification` with ``batch_size=1024`` and
``num_neighbors=[15, 10]``, i.e. exactly the path ``python -m mmgraph.bench
task.batch_size=1024`` takes; one epoch is one pass over the training nodes.

Reported:

- *sampler alone*: ``sample()`` on consecutive batches of shuffled training seeds (no features);
- *loader*: the full mini-batch pipeline without the model (sampling + gathering ``x``, ``y``
  into a PyG ``Data``);
- *PyG NeighborLoader* (pyg-lib or torch-sparse) on the same seeds, when importable;
- *training*: one epoch (or ``--max-batches`` batches, extrapolated to the epoch and labelled so),
  with the time spent inside the sampler measured by wrapping it;
- peak RSS, ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the process high-water mark so
  far) after each stage, and the sizes of the graph's tensors.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import platform
import resource
import time
import warnings


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--edges", type=int, default=10_000_000)
    ap.add_argument("--dim", type=int, default=64, help="text and image feature size each")
    ap.add_argument("--train-ratio", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--fanouts", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--sampler-batches", type=int, default=50,
                    help="batches for the sampler-alone and loader-alone measurements")
    ap.add_argument("--max-batches", type=int, default=None,
                    help="train only this many batches and extrapolate to the epoch")
    ap.add_argument("--backend", default="auto", choices=["auto", "pyg", "torch"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--tune-malloc", action="store_true",
                    help="apply mmgraph._malloc.tune_malloc() as the mmgraph.bench CLI does")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    warnings.filterwarnings("ignore", message=".*(torch.jit.script|Sparse CSR).*")
    t0 = time.perf_counter()
    if args.tune_malloc:
        from mmgraph._malloc import tune_malloc

        print(f"glibc malloc tuning applied: {tune_malloc()}")
    import torch

    from mmgraph.data import make_split, make_synthetic
    from mmgraph.data.sampler import neighbor_loader, pyg_backend
    from mmgraph.nn import GraphSAGE
    from mmgraph.tasks import NodeClassification
    from mmgraph.train import seed_everything

    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[tuple[str, str]] = []

    def stage(name: str, start: float, extra: str = "") -> float:
        now = time.perf_counter()
        print(f"{name:<34s} {now - start:8.2f} s   peak RSS {peak_rss_mb():7.0f} MiB  {extra}",
              flush=True)
        return now

    print(f"{dt.datetime.now():%Y-%m-%d %H:%M}; {platform.machine()}, Python "
          f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads); nodes={args.nodes:,} edges={args.edges:,} x dim={2 * args.dim} "
          f"batch={args.batch_size} fanouts={args.fanouts} hidden={args.hidden}", flush=True)
    t = stage("import", t0)

    data = make_synthetic(num_nodes=args.nodes, num_edges=args.edges, text_dim=args.dim,
                          image_dim=args.dim, seed=args.seed)
    make_split(data, "magb", train_ratio=args.train_ratio, val_ratio=args.train_ratio, seed=42)
    t = stage("make_synthetic + split", t)

    task = NodeClassification(label_smoothing=0.1, batch_size=args.batch_size,
                              num_neighbors=args.fanouts, sampler=args.backend)
    task.setup(data, torch.device("cpu"))
    loader = task._loaders["train"]
    n_train = task.index["train"].numel()
    n_batches = math.ceil(n_train / args.batch_size)
    sizes = (f"x {mib(task.x):.0f} MiB, edge_index {mib(task.edge_index):.0f} MiB"
             + (f", CSC {mib(*loader.node_sampler.csc):.0f} MiB"
                if hasattr(loader.node_sampler, "csc") else ""))
    t = stage("task setup (view, loaders)", t, sizes)
    print(f"backend: {loader.backend}; training nodes {n_train:,} -> {n_batches} batches per epoch",
          flush=True)

    # Seeds of the measurement batches: one shuffled pass's worth.
    gen = torch.Generator().manual_seed(args.seed)
    train_idx = task.index["train"].cpu()
    perm = train_idx[torch.randperm(n_train, generator=gen)]
    k = min(args.sampler_batches, n_batches)
    seed_batches = [perm[i * args.batch_size:(i + 1) * args.batch_size] for i in range(k)]

    # 1. the sampler alone
    sampler = loader.node_sampler
    if hasattr(sampler, "sample"):
        sampler.sample(seed_batches[0])  # warm-up (allocates the id map)
        start, edges, nodes = time.perf_counter(), 0, 0
        for seeds in seed_batches:
            out = sampler.sample(seeds)
            edges += out.edge.numel()
            nodes += out.node.numel()
        sec = time.perf_counter() - start
        rows.append(("sampler alone (`UniformNeighborSampler.sample`)",
                     f"{k / sec:.1f} batches/s, {edges / sec / 1e6:.2f} M sampled edges/s, "
                     f"{nodes / k:,.0f} nodes and {edges / k:,.0f} edges per batch"))
        t = stage(f"sampler alone, {k} batches", start, rows[-1][1])

    # 2. the loader without a model (sampling + feature gathering), and PyG's if importable
    def time_loader(backend: str) -> str:
        ld = neighbor_loader(loader.data, args.fanouts, input_nodes=perm[:k * args.batch_size],
                             batch_size=args.batch_size, shuffle=False, backend=backend,
                             seed=args.seed, csc=getattr(sampler, "csc", None))
        start, edges = time.perf_counter(), 0
        for batch in ld:
            edges += batch.edge_index.size(1)
        sec = time.perf_counter() - start
        return f"{k / sec:.1f} batches/s, {edges / sec / 1e6:.2f} M sampled edges/s"

    rows.append(("loader, vectorised sampler (sample + gather x, y)", time_loader("torch")))
    t = stage(f"loader (torch), {k} batches", t, rows[-1][1])
    compiled = pyg_backend()
    if compiled:
        rows.append((f"loader, PyG NeighborLoader ({compiled})", time_loader("pyg")))
        t = stage(f"loader ({compiled}), {k} batches", t, rows[-1][1])
    else:
        rows.append(("loader, PyG NeighborLoader (pyg-lib / torch-sparse)",
                     "not measured: neither pyg-lib nor torch-sparse is installed here"))

    # 3. training: one epoch through the task, sampler time measured by wrapping it
    seed_everything(args.seed)
    model = task.wrap(GraphSAGE(**task.model_kwargs(), hidden_channels=args.hidden,
                                num_layers=len(args.fanouts), aggr="mean", dropout=0.5,
                                norm="batch"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.005)
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
    start = time.perf_counter()
    loss = task.train_epoch(model, optimizer)
    sec = time.perf_counter() - start
    done = spent["batches"]
    label = "one epoch" if done == n_batches else f"{done} of {n_batches} batches"
    t = stage(f"training, {label}", start, f"loss {loss:.4f}")
    per_batch = sec / done
    if done == n_batches:
        rows.append(("time per epoch (training)", f"{sec:.1f} s ({n_batches} batches, "
                     f"{per_batch:.2f} s/batch), loss {loss:.3f}"))
    else:
        rows.append(("time per epoch (training), EXTRAPOLATED",
                     f"{per_batch * n_batches:.0f} s = {per_batch:.2f} s/batch x {n_batches} "
                     f"batches, from {done} batches ({sec:.1f} s)"))
    rows.append(("sampler inside training", f"{spent['s']:.1f} s of {sec:.1f} s "
                 f"({100 * spent['s'] / sec:.0f}%), {spent['edges'] / spent['s'] / 1e6:.2f} M "
                 f"sampled edges/s, {done / sec:.2f} training batches/s"))
    rows.append(("peak RSS (whole process)", f"{peak_rss_mb():.0f} MiB"))
    rows.append(("graph tensors", sizes))

    print("\n| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
