"""The sparse-dense product alone: where the full-batch GCN / SAGE epoch differs from DGL's.

Usage (from the repository root; about a minute on 2 cores; needs the ``dgl`` extra)::

    .venv/bin/python benchmarks/spmm_kernels.py --out benchmarks/results/spmm_kernels.md

``benchmarks/dgl_parity.py`` times whole epochs. This script times the one operation in which
the GCN and GraphSAGE epochs of both sides differ most: aggregating a dense ``[N, w]`` matrix
over the graph, ``out = A h`` with ``A`` the graph's (weighted) adjacency, at Reddit-M's size
(99,638 nodes, 1,167,188 directed edges plus one self loop per node, as dgl_parity's graph) and
at the widths a 2-layer model with hidden width 256 and 50 classes aggregates (256 and 50).

Kernels, each on the same graph and the same ``h``, rotating order every round:

- ``ours``: ``mmgraph.nn.sparse.Adjacency.matmul`` with GCN's symmetric weights, the product the
  library's layers run (on CPU the compiled kernel of :mod:`mmgraph.nn.cpu_spmm` when it builds;
  the results file's header says which ran);
- ``ours^T``: ``Adjacency.t_matmul``, the same product with the transpose (the backward pass);
- ``torch CSR``: the same weighted product through torch's sparse CSR tensor (``addmm``), which on
  x86 calls MKL's sparse BLAS: what ``ours`` ran before the compiled kernel;
- ``torch reduce``: ``torch.sparse.mm(A, h, reduce="sum")``, torch's own CPU kernel (no MKL);
- ``dgl copy_u``: DGL's ``update_all(copy_u, sum)``, the unweighted aggregation MAGB's GCN and
  SAGE layers run (their normalisation is an elementwise scaling outside the kernel);
- ``dgl u_mul_e``: DGL's ``update_all(u_mul_e, sum)`` with the same edge weights as ours.

Reported: the median and minimum over ``--repeats`` rounds after ``--warmup`` untimed calls of
each, and the ratios to ``dgl copy_u``. Results agree to 1e-4 (checked before timing).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import _provenance  # noqa: E402


def kernels(edge_index: torch.Tensor, n: int):
    """Callables ``h -> A h`` of every kernel, on one graph with one self loop per node, and that graph
    as an ``Adjacency``."""
    import dgl
    import dgl.function as fn

    from mmgraph.nn.sparse import Adjacency, _product

    adj = Adjacency.from_edge_index(edge_index, n).with_self_loops()
    w = adj.gcn_weights()
    csr = torch.sparse_csr_tensor(adj.crow, adj.col, w, (n, n))
    row = torch.repeat_interleave(torch.arange(n), adj.crow.diff())
    g = dgl.graph((adj.col, row), num_nodes=n)          # edges in CSR order: edge e has weight w[e]

    def dgl_product(h: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        with g.local_scope():
            g.srcdata["h"] = h
            if weights is None:
                g.update_all(fn.copy_u("h", "m"), fn.sum("m", "o"))
            else:
                g.edata["w"] = weights
                g.update_all(fn.u_mul_e("h", "w", "m"), fn.sum("m", "o"))
            return g.dstdata["o"]

    return {
        "ours": lambda h: adj.matmul(w, h),
        "ours^T": lambda h: adj.t_matmul(w, h),
        "torch CSR": lambda h: _product(csr, h, None),
        "torch reduce": lambda h: torch.sparse.mm(csr, h, reduce="sum"),
        "dgl copy_u": lambda h: dgl_product(h, None),
        "dgl u_mul_e": lambda h: dgl_product(h, w),
    }, adj


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=99_638)
    ap.add_argument("--edges", type=int, default=1_167_188, help="directed edges (random, both directions)")
    ap.add_argument("--widths", type=lambda s: [int(v) for v in s.split(",")], default=[256, 50])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import dgl.utils

    if args.threads:
        torch.set_num_threads(args.threads)
    dgl.utils.set_num_threads(torch.get_num_threads())
    header = _provenance.header("Sparse-dense product kernels at Reddit-M size")
    print("\n".join(header), flush=True)

    gen = torch.Generator().manual_seed(args.seed)
    half = args.edges // 2
    src = torch.randint(0, args.nodes, (half,), generator=gen)
    dst = torch.randint(0, args.nodes, (half,), generator=gen)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    fns, adj = kernels(edge_index, args.nodes)
    lines = ["| width | kernel | ms (median / min) | ratio to dgl copy_u (median) |", "|---|---|---|---|"]
    raw = []
    for width in args.widths:
        h = torch.randn(args.nodes, width, generator=gen)
        ref = adj.matmul(adj.gcn_weights(), h)
        ref_t = adj.t_matmul(adj.gcn_weights(), h)
        for name, f in fns.items():
            want = ref_t if name == "ours^T" else ref
            if name == "dgl copy_u":   # unweighted: compare with the same product, weights 1
                want = adj.matmul(torch.ones(adj.num_edges), h)
            err = (f(h) - want).abs().max().item()
            if err > 1e-4 * max(1.0, want.abs().max().item()):
                sys.exit(f"spmm_kernels: {name} differs from the reference by {err:.2e} at width {width}")
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(args.warmup):
            for f in fns.values():
                f(h)
        names = list(fns)
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                fns[name](h)
                times[name].append(1000 * (time.perf_counter() - start))
        base = statistics.median(times["dgl copy_u"])
        for name, ts in times.items():
            med = statistics.median(ts)
            lines.append(f"| {width} | {name} | {med:.1f} / {min(ts):.1f} | {med / base:.2f} |")
            raw.append(f"width {width}, {name}: {['%.1f' % t for t in ts]}")
        print("\n".join(lines[-len(fns):]), flush=True)
    doc = header[:-1] + [f"- graph: {args.nodes:,} nodes, {edge_index.size(1):,} directed edges plus one self loop "
                         f"per node ({adj.num_edges:,} nonzeros); {torch.get_num_threads()} threads (torch and DGL); "
                         f"torch {torch.__version__}, DGL {dgl.__version__}",
                         f"- ours ran on: {_provenance.sparse_product()}", "",
                         "What each kernel is: the docstring of [`benchmarks/spmm_kernels.py`](../spmm_kernels.py).",
                         "", *lines, "", "```", *raw, f"load average at end: {_provenance.load()}", "```", ""]
    _provenance.emit(doc, args.out)


if __name__ == "__main__":
    main()
