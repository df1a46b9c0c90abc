"""Per-model cost on the default synthetic graph, and RevGAT's memory against depth.

Part 1, every homogeneous model of the zoo with its default config (``configs/model/<name>.yaml``)
on the default synthetic graph (``make_synthetic()``: 3,000 nodes, 30,000 directed edges, 256-d
input, 6 classes, MAGB split): parameters, and the time of one epoch as the runner spends it
(``NodeClassification.train_epoch`` = one full-batch training step with AdamW, then
``evaluate`` = one evaluation forward and the metrics of three splits), one warm-up epoch, then
the best of ``--repeats`` epochs, as CPU time of the process (``time.process_time``: with one
thread it is the epoch's own compute, less disturbed by other jobs than wall time) and as wall time.

Part 2, RevGAT (default width 768 = 3 heads x 256, 256 inputs, 6 classes) on 3,000 nodes and
30,000 random edges: the memory of the tensors autograd keeps for the backward pass (storages
still allocated when the forward pass returns, counted once each through
``torch.autograd.graph.saved_tensors_hooks``; parameters included, the adjacency's index
arrays not), and the CPU time (``time.process_time``) of one training step (forward,
cross-entropy on all nodes, backward), best of ``--repeats``; for 3 and 7 layers, reversible
and not, on the sparse ``Adjacency`` path the models use and on PyG's ``edge_index`` message
passing (the path before the ``Adjacency``; reached by handing the layers ``edge_index``).

Run from the repository root:

    .venv/bin/python benchmarks/model_zoo.py                 # both parts, 1 thread
    .venv/bin/python benchmarks/model_zoo.py --out benchmarks/results/model_zoo.md
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["mlp", "gcn", "sage", "gat", "sgc", "appnp", "gcnii", "jknet", "revgat"]


def build(name: str, **kwargs):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "configs" / "model" / f"{name}.yaml")
    return instantiate(cfg.module, **kwargs)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def zoo(models: list[str], repeats: int) -> list[tuple[str, int, float]]:
    from mmgraph.data import make_split, make_synthetic
    from mmgraph.tasks import NodeClassification

    data = make_synthetic(seed=0)
    make_split(data, "magb")
    task = NodeClassification(label_smoothing=0.1)
    task.setup(data, torch.device("cpu"))
    rows = []
    for name in models:
        torch.manual_seed(0)
        model = task.wrap(build(name, **task.model_kwargs()))
        model.reset_parameters()
        opt = torch.optim.AdamW(model.parameters(), lr=0.005)
        times, cpu = [], []
        for i in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            task.train_epoch(model, opt)
            task.evaluate(model)
            if i:  # the first epoch is the warm-up (caches, lazy shapes)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        rows.append((name, n_params(model), min(cpu), min(times)))
        print(f"{name:8s} params {n_params(model):>10,d}  epoch best CPU {min(cpu) * 1e3:8.1f} ms, wall "
              f"{min(times) * 1e3:8.1f} ms; wall all {[round(t * 1e3, 1) for t in times]}", flush=True)
    return rows


def saved_mib(model, x, graph) -> float:
    """MiB of distinct storages saved for backward that are still allocated after forward."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, graph)
    seen, total = set(), 0
    for t in saved:
        s = t.untyped_storage()
        key = s.data_ptr()
        if key in seen or s.nbytes() == 0:
            continue
        seen.add(key)
        total += s.nbytes()
    del out, saved
    return total / 2**20


def step_cpu_seconds(model, x, graph, y, repeats: int) -> float:
    best = float("inf")
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        t0 = time.process_time()
        loss = torch.nn.functional.cross_entropy(model(x, graph), y)
        loss.backward()
        dt = time.process_time() - t0
        if i:
            best = min(best, dt)
    return best


class _PassEdgeIndex(torch.nn.Module):
    """Stands in for RevGAT's ``ToAdjacency``: hands the layers ``edge_index`` unchanged."""

    def forward(self, edge_index, num_nodes):
        return edge_index


def revgat(repeats: int) -> list[tuple]:
    from mmgraph.nn import RevGAT
    from mmgraph.nn.sparse import Adjacency

    g = torch.Generator().manual_seed(0)
    n, e, d, c = 3000, 30000, 256, 6
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    adj = Adjacency.from_edge_index(edge_index, n)
    rows = []
    for layers in (3, 7):
        for reversible in (True, False):
            out = [layers, reversible]
            for path in ("adjacency", "edge_index"):
                torch.manual_seed(0)
                model = RevGAT(d, 768, c, num_layers=layers, reversible=reversible)
                model.train()
                if path == "adjacency":
                    graph = adj
                else:  # PyG's message passing: every GATConv gets edge_index (adds self loops)
                    model.to_adjacency = _PassEdgeIndex()
                    graph = edge_index
                mem = saved_mib(model, x, graph)
                cpu = step_cpu_seconds(model, x, graph, y, repeats)
                out += [mem, cpu]
                print(f"revgat layers={layers} reversible={reversible} {path:10s}: saved {mem:7.1f} MiB, "
                      f"step {cpu:6.2f} s CPU", flush=True)
            rows.append(tuple(out))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--skip-revgat", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="write the results as Markdown here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    head = _provenance.header("Model zoo: parameters, time per epoch, RevGAT memory")
    t0 = time.time()
    rows = zoo(args.models.split(","), args.repeats)
    rev = [] if args.skip_revgat else revgat(args.repeats)
    lines = head + [f"Threads: {args.threads} (`torch.set_num_threads`); best of {args.repeats} "
                    f"after one warm-up. What is timed: the docstring of "
                    f"[`benchmarks/model_zoo.py`](../model_zoo.py).", "",
                    "## Default configs on the default synthetic graph (3,000 nodes, 256 inputs, 6 classes)", "",
                    "| model | parameters | CPU ms per epoch (train step + evaluation) | wall ms per epoch |",
                    "|---|---:|---:|---:|"]
    lines += [f"| {m} | {p:,d} | {c * 1e3:.1f} | {t * 1e3:.1f} |" for m, p, c, t in rows]
    if rev:
        lines += ["", "## RevGAT (768 wide, 3,000 nodes, 30,000 random edges, 256 inputs)", "",
                  "| num_layers | reversible | saved for backward (Adjacency) | training step CPU s (Adjacency) "
                  "| saved (edge_index path) | step CPU s (edge_index path) |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {l} | {str(r).lower()} | {m1:.0f} MiB | {c1:.2f} | {m2:.0f} MiB | {c2:.2f} |"
                  for l, r, m1, c1, m2, c2 in rev]
    lines += ["", f"Load average at end: {_provenance.load()}; total {time.time() - t0:.0f} s.", ""]
    _provenance.emit(lines, args.out)


if __name__ == "__main__":
    main()
