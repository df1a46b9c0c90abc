"""DGL parity: full-batch GCN / GraphSAGE / GAT epochs of mmgraph's models vs DGL models configured as MAGB's GNN scripts.

Usage (from the repository root; needs the ``dgl`` extra)::

    .venv/bin/python benchmarks/dgl_parity.py --acc-nodes 20000 --acc-edges 234000   # Reddit-M size timing
    .venv/bin/python benchmarks/dgl_parity.py --nodes 5000 --edges 50000 --repeats 3 --epochs-acc 30   # quick check

Goals: time per full-batch epoch of our GCN, SAGE and GAT <= 1.0x the DGL implementations
configured as in MAGB's GNN scripts, on a synthetic graph the size of MAGB's Reddit-M, measured
side by side in one run, with dropout 0 on both sides (the graph path alone) and with the same
dropout implementation on both sides; mmgraph's own, faster dropout mask is a third row of its
own. The GCN epoch within 1.2x of its dense matrix products alone. Our peak memory <= DGL's.
Test accuracy after the full training schedule the same within noise.

**Graph.** ``make_synthetic(num_nodes=--nodes, num_edges=--edges, num_classes=--classes,
text_dim=--dim // 2, image_dim=--dim - --dim // 2, homophily=--homophily,
text_informativeness=image_informativeness=--informativeness, feature_noise=--feature-noise,
seed=--seed)``: a degree-corrected SBM; the defaults (50 classes as Reddit-M, homophily 0.5,
informativeness 0.3, noise 1.0) make a task that needs features *and* graph (at 5,000 nodes /
50,000 edges, 30 epochs: a 2-layer MLP reaches ~15% test accuracy, a GCN ~87%; with the
generator's own defaults both frameworks sit at ~99%, too close to the ceiling to compare
accuracy), undirected with both directions
stored (exactly ``--edges`` directed edges, no self loops), ``x`` = text and image features
concatenated (768-d by default); MAGB's 60/20/20 split (seed 42). Both sides read the same
tensors, taken from :class:`mmgraph.tasks.NodeClassification` ``.setup`` (the homogeneous view the
library trains on). Generation is not timed.

**Ours.** ``mmgraph.nn.GCN`` / ``GraphSAGE`` / ``GAT`` instantiated from the project's
``configs/model/{gcn,sage,gat}.yaml`` (BatchNorm, ReLU, dropout 0.5, SAGE
``aggr: mean``, GAT 3 heads, 1 output head) with ``hidden_channels`` / ``num_layers`` from the
options below (GAT: ``hidden_channels = heads x --hidden``, MAGB's per-head width), called as
``model(x, graph)`` with ``graph = ours_graph(edge_index, num_nodes, model)`` built once (the one
place that decides what the library's layers take as graph argument).

**DGL (as MAGB).** Written here after reading MAGB's scripts (github.com/sktsherlock/MAGB,
commit 68c9308: ``GNN/Library/GCN.py``, ``GraphSAGE.py``, ``GAT.py``, ``GNN/Utils/model_config.py``,
``GNN/Utils/NodeClassification.py``):

- graph: reverse edges added (``graph.add_edges(dsts, srcs)``; our generated graph already holds
  both directions, so this step is implied), then ``remove_self_loop().add_self_loop()`` (one
  self loop per node) and ``create_formats_()``;
- defaults: ``--n-hidden 256``, ``--dropout 0.5``, ``--lr 0.005``, ``AdamW(weight_decay=0)``,
  ``--label-smoothing 0.1``, ReduceLROnPlateau on the training loss; ``--n-layers`` defaults to 3
  in ``model_config.py`` while the published commands (``GNN/COMMAND.md``) use
  ``--n-layers=2`` (as this project's configs do): ``--layers`` here, default 2;
- GCN: ``dgl.nn.GraphConv(in, out, norm="both")`` per layer (bias), ``BatchNorm1d`` + ReLU +
  ``Dropout`` between layers, no input dropout;
- SAGE: ``dgl.nn.SAGEConv(in, out, "mean")`` (``--aggregator`` default ``mean``), same stacking;
- GAT: MAGB's own DGL GAT layer (the ogbn-arxiv GAT): ``Linear(in, heads x 256, bias=False)``,
  attention from the *source* side only (``--no-attn-dst`` is a ``type=bool`` flag defaulting to
  ``True``, so ``use_attn_dst`` is always false), ``LeakyReLU(0.2)``, ``edge_softmax``, message
  ``u_mul_e`` + ``sum`` (fused in DGL), ``attn_drop = edge_drop = 0``, no residual, no symmetric
  norm; 3 heads of 256 in hidden layers (flattened to 768, ``BatchNorm1d(768)``, ReLU, dropout),
  1 head in the output layer, mean over heads, then a learnable output bias (``bias_last``);
  xavier-normal init with ReLU gain. ``--dgl-gat dglnn`` uses ``dgl.nn.GATConv`` instead (both
  attention sides and a bias, like PyG's and ours).

Known difference besides speed: DGL's ``SAGEConv`` initialises its linear layers xavier-uniform
with ReLU gain, PyG's (and ours) with torch's ``Linear`` default. On a 5,000-node check this alone
put DGL's SAGE ~10 points of test accuracy below ours after 20 epochs; ``--dgl-sage-init torch``
gives DGL's layers torch's initialisation, to tell an initialisation gap from an implementation
one.

**The same graph on both sides.** Every model aggregates over MAGB's graph, one self loop per node:
DGL's gets the loops in its preprocessing (below); our GCN and GAT layers remove and add them
themselves (PyG's convention); our SAGE, whose layer adds none, is given them in its graph. The
table states the edges each side aggregates over.

**Dropout modes** (``--modes``): ``zero``, p = 0 on both sides; ``same``, p = ``--dropout`` with
``torch.nn.Dropout`` on both sides (our models' ``mmgraph.nn.Dropout`` modules swapped for it);
``own``, p = ``--dropout``, ours with ``mmgraph.nn.Dropout`` (a cheaper CPU mask,
``benchmarks/results/dropout_speed.md``), DGL's with ``torch.nn.Dropout``.

**Measured.** (1) Time per training epoch (``zero_grad``, forward, label-smoothed cross-entropy
on the train nodes, backward, ``AdamW.step``) for every model and dropout mode: both sides built
in one process, ``--warmup`` untimed epochs each, then ``--repeats`` rounds (default 20) of one
epoch per side, the order rotating every round; median and minimum; the same torch and DGL thread
count (``--threads``, default torch's). For the GCN with dropout 0 the rotation has a third
participant: the same epoch's matrix products alone (forward ``X W`` per layer, backward
``X^T G`` per layer and ``G W^T`` below the top layer) on random matrices of the same shapes.
(2) Peak RSS for every model and mode: each side in its own subprocess (the same tensors loaded
from a temporary file, the graph built, ``--warmup`` + 2 epochs), ``VmHWM`` of that process, and
its increase over the RSS just before the first epoch; ``--memory-repeats`` (default 3) such
subprocesses per side, alternating, and their median (one peak varies by a few hundred MiB from
run to run with how glibc's heap fragments). (3) Test accuracy after MAGB's full
schedule (AdamW at lr 0.005, ReduceLROnPlateau(0.5, ``--lr-patience`` 100) on the training loss,
evaluation every epoch, early stopping after ``--patience`` 100 epochs without a better
validation accuracy, at most ``--epochs-acc`` 1000), dropout mode ``--acc-mode`` (default
``own``), for each seed of ``--seeds`` (default 0, 1, 2) a fresh model per side; the test accuracy
at the best validation accuracy (MAGB's selection); the difference ours − DGL paired by seed with
its 95 % Student-t interval. ``--acc-nodes`` / ``--acc-edges`` run it on a smaller graph from the
same generator (the full schedule at Reddit-M size takes hours on 2 cores). The tables go to
stdout and, with command, commit, machine, date and load average, to ``--out``
(``benchmarks/results/dgl_parity.md``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REDDIT_M = {"nodes": 99_638, "edges": 1_167_188, "dim": 768}


def ours_graph(edge_index: Tensor, num_nodes: int, model: nn.Module | None = None):
    """The graph argument of mmgraph's models, ``model(x, ours_graph(edge_index, n, model))``.

    The one place to change when the layers' graph argument changes. Today: the CSR
    ``mmgraph.nn.sparse.Adjacency`` when that module exists and the model accepts it (the
    ``accepts_adjacency`` flag the NodeClassification task honours), else ``edge_index``.
    """
    try:
        from mmgraph.nn.sparse import Adjacency
    except ModuleNotFoundError as exc:
        if exc.name not in ("mmgraph.nn.sparse", "mmgraph.nn"):
            raise
        return edge_index
    if model is not None and not getattr(model, "accepts_adjacency", True):
        return edge_index
    return Adjacency.from_edge_index(edge_index, num_nodes)


# ----------------------------------------------------------------------------- memory

def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- DGL models (MAGB)

def _dgl_models():
    """The DGL reference models; defined on first use so that ``import dgl`` stays optional."""
    import dgl
    import dgl.function as fn
    from dgl.nn import GATConv as DGLGATConv
    from dgl.nn import GraphConv, SAGEConv
    from dgl.ops import edge_softmax

    class Stack(nn.Module):
        """MAGB's stacking: conv -> (BatchNorm -> ReLU -> Dropout) between layers."""

        def __init__(self, convs: list[nn.Module], widths: list[int], dropout: float):
            super().__init__()
            self.convs = nn.ModuleList(convs)
            self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in widths)
            self.dropout = nn.Dropout(dropout)

        def forward(self, graph, feat: Tensor) -> Tensor:
            h = feat
            for i, conv in enumerate(self.convs):
                h = conv(graph, h)
                if i < len(self.convs) - 1:
                    h = self.dropout(F.relu(self.norms[i](h.flatten(1))))
            return self.head(h)

        def head(self, h: Tensor) -> Tensor:
            return h

    class SourceAttention(nn.Module):
        """MAGB's GAT layer with its defaults: attention logits from the source node only."""

        def __init__(self, in_feats: int, out_feats: int, heads: int, negative_slope: float = 0.2):
            super().__init__()
            self.heads, self.out_feats = heads, out_feats
            self.fc = nn.Linear(in_feats, heads * out_feats, bias=False)
            self.attn_l = nn.Parameter(torch.empty(1, heads, out_feats))
            self.leaky_relu = nn.LeakyReLU(negative_slope)
            self.reset_parameters()

        def reset_parameters(self) -> None:
            gain = nn.init.calculate_gain("relu")
            nn.init.xavier_normal_(self.fc.weight, gain=gain)
            nn.init.xavier_normal_(self.attn_l, gain=gain)

        def forward(self, graph, feat: Tensor) -> Tensor:
            with graph.local_scope():
                ft = self.fc(feat).view(-1, self.heads, self.out_feats)
                el = (ft * self.attn_l).sum(dim=-1, keepdim=True)           # [N, H, 1]
                graph.srcdata.update({"ft": ft, "el": el})
                graph.apply_edges(fn.copy_u("el", "e"))
                graph.edata["a"] = edge_softmax(graph, self.leaky_relu(graph.edata.pop("e")))
                graph.update_all(fn.u_mul_e("ft", "a", "m"), fn.sum("m", "ft"))
                return graph.dstdata["ft"]                                   # [N, H, F]

    class MAGBGAT(Stack):
        def __init__(self, convs, widths, dropout, n_classes):
            super().__init__(convs, widths, dropout)
            self.bias_last = nn.Parameter(torch.zeros(n_classes))

        def head(self, h: Tensor) -> Tensor:
            return h.mean(1) + self.bias_last

    def build(model: str, in_feats: int, hidden: int, n_classes: int, layers: int, dropout: float,
              heads: int, gat_kind: str, sage_init: str = "dgl") -> nn.Module:
        dims = [in_feats] + [hidden] * (layers - 1) + [n_classes]
        if model == "gcn":
            convs = [GraphConv(dims[i], dims[i + 1], norm="both") for i in range(layers)]
            return Stack(convs, dims[1:-1], dropout)
        if model == "sage":
            convs = [SAGEConv(dims[i], dims[i + 1], "mean") for i in range(layers)]
            if sage_init == "torch":  # torch.nn.Linear's own initialisation, as PyG's (and ours)
                for conv in convs:
                    conv.fc_self.reset_parameters()
                    conv.fc_neigh.reset_parameters()
            return Stack(convs, dims[1:-1], dropout)
        # GAT: hidden layers have `heads` heads of `hidden` channels, the output layer one head
        ins = [in_feats] + [heads * hidden] * (layers - 1)
        outs = [hidden] * (layers - 1) + [n_classes]
        nheads = [heads] * (layers - 1) + [1]
        if gat_kind == "dglnn":
            convs = [DGLGATConv(ins[i], outs[i], nheads[i]) for i in range(layers)]
            model_ = MAGBGAT(convs, [heads * hidden] * (layers - 1), dropout, n_classes)
            model_.bias_last.requires_grad_(False)     # DGL's GATConv has its own bias
            return model_
        convs = [SourceAttention(ins[i], outs[i], nheads[i]) for i in range(layers)]
        return MAGBGAT(convs, [heads * hidden] * (layers - 1), dropout, n_classes)

    def graph(edge_index: Tensor, num_nodes: int):
        """MAGB's preprocessing: (reverse edges already present) one self loop per node."""
        from mmgraph.interop import to_dgl
        from torch_geometric.data import Data

        g = to_dgl(Data(edge_index=edge_index, num_nodes=num_nodes))
        g = dgl.add_self_loop(dgl.remove_self_loop(g))
        g.create_formats_()
        return g

    return build, graph


# ----------------------------------------------------------------------------- the two sides

MODES = {
    "zero": "dropout 0 on both sides: the graph path alone",
    "same": "dropout --dropout on both sides, torch.nn.Dropout on both",
    "own": "dropout --dropout, mmgraph.nn.Dropout on ours, torch.nn.Dropout on DGL's (the headline)",
}


class Side:
    """How one framework builds its graph and model and runs a forward pass, in one dropout
    ``mode`` (:data:`MODES`)."""

    def __init__(self, name: str, model: str, args: argparse.Namespace, in_feats: int, n_classes: int,
                 mode: str = "own"):
        self.name, self.model, self.args, self.mode = name, model, args, mode
        self.in_feats, self.n_classes = in_feats, n_classes
        self.graph: Any = None
        self.aggregated_edges = 0
        if name == "dgl":
            self._build_dgl, self._graph_dgl = _dgl_models()

    @property
    def dropout(self) -> float:
        return 0.0 if self.mode == "zero" else self.args.dropout

    def build_model(self, seed: int) -> nn.Module:
        a = self.args
        torch.manual_seed(seed)
        if self.name == "dgl":
            return self._build_dgl(self.model, self.in_feats, a.hidden, self.n_classes, a.layers,
                                   self.dropout, a.heads, a.dgl_gat, a.dgl_sage_init)
        model = ours_model(self.model, self.in_feats, self.n_classes, a, self.dropout)
        return torch_dropout(model) if self.mode == "same" else model

    def build_graph(self, edge_index: Tensor, num_nodes: int, model: nn.Module) -> float:
        """The graph each side aggregates over is the same: MAGB's (one self loop per node, for
        every model). DGL's gets the loops in its preprocessing; our GCN and GAT layers add them
        themselves (PyG's convention), our SAGE is given them in its graph."""
        start = time.perf_counter()
        if self.name == "dgl":
            self.graph = self._graph_dgl(edge_index, num_nodes)
            self.aggregated_edges = int(self.graph.num_edges())
        else:
            if self.model == "sage":
                edge_index = with_self_loops(edge_index, num_nodes)
            self.graph = ours_graph(edge_index, num_nodes, model)
            self.aggregated_edges = aggregated_edges(self.model, self.graph, num_nodes)
        return time.perf_counter() - start

    def forward(self, model: nn.Module, x: Tensor) -> Tensor:
        return model(self.graph, x) if self.name == "dgl" else model(x, self.graph)

    def graph_kind(self) -> str:
        kind = "DGLGraph" if self.name == "dgl" else type(self.graph).__name__
        return f"{kind}, {self.aggregated_edges:,} edges aggregated (self loops included)"


def with_self_loops(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``edge_index`` without its self loops, then one per node (MAGB's DGL preprocessing)."""
    keep = edge_index[0] != edge_index[1]
    loops = torch.arange(num_nodes, dtype=edge_index.dtype).repeat(2, 1)
    return torch.cat([edge_index[:, keep], loops], dim=1)


def aggregated_edges(model: str, graph: Any, num_nodes: int) -> int:
    """Edges our layer of ``model`` aggregates over, given the graph argument it is called with."""
    if isinstance(graph, Tensor):
        if model in ("gcn", "gat"):  # PyG's layers remove self loops and add one per node
            return int((graph[0] != graph[1]).sum()) + num_nodes
        return int(graph.size(1))
    return int((graph.with_self_loops() if model in ("gcn", "gat") else graph).num_edges)


def ours_model(model: str, in_feats: int, n_classes: int, args: argparse.Namespace,
               dropout: float | None = None) -> nn.Module:
    """``mmgraph.nn`` model from the project's ``configs/model/<name>.yaml``, sizes overridden."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    name = {"gcn": "gcn", "sage": "sage", "gat": "gat"}[model]
    cfg = OmegaConf.load(ROOT / "configs" / "model" / f"{name}.yaml").module
    cfg.hidden_channels = args.hidden * (args.heads if model == "gat" else 1)
    cfg.num_layers = args.layers
    cfg.dropout = args.dropout if dropout is None else dropout
    if model == "gat":
        cfg.heads = args.heads
    return instantiate(cfg, in_channels=in_feats, out_channels=n_classes)


def torch_dropout(model: nn.Module) -> nn.Module:
    """``model`` with every ``mmgraph.nn.Dropout`` replaced by a ``torch.nn.Dropout`` of the same
    probability (the dropout DGL's side uses), in place."""
    from mmgraph.nn.dropout import Dropout

    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Dropout):
                setattr(parent, child_name, nn.Dropout(child.p))
    return model


def train_step(side: Side, model: nn.Module, opt: torch.optim.Optimizer, g: dict) -> float:
    """One epoch, as ``NodeClassification.train_epoch`` does it."""
    model.train()
    opt.zero_grad(set_to_none=True)
    out = side.forward(model, g["x"])
    idx = g["train"]
    loss = F.cross_entropy(out[idx], g["y"][idx], label_smoothing=side.args.label_smoothing)
    loss.backward()
    opt.step()
    return float(loss.detach())


@torch.no_grad()
def accuracies(side: Side, model: nn.Module, g: dict) -> dict[str, float]:
    model.eval()
    pred = side.forward(model, g["x"]).argmax(dim=-1)
    return {s: float((pred[g[s]] == g["y"][g[s]]).float().mean()) for s in ("val", "test")}


def new_optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                             weight_decay=0.0)


class DenseProducts:
    """The matrix products of a GCN epoch without the graph: forward ``X W1`` and ``H W2``,
    backward ``X^T G1``, ``H^T G2`` and ``G2 W2^T`` (the input needs no gradient), at the shapes
    of the timed GCN (layers beyond two add ``H W``, ``H^T G`` and ``G W^T`` per layer)."""

    def __init__(self, g: dict, args: argparse.Namespace):
        n, d, c = g["x"].size(0), g["x"].size(1), g["num_classes"]
        dims = [d] + [args.hidden] * (args.layers - 1) + [c]
        gen = torch.Generator().manual_seed(0)
        self.x = g["x"]
        self.w = [torch.randn(dims[i], dims[i + 1], generator=gen) for i in range(args.layers)]
        self.h = [torch.randn(n, w, generator=gen) for w in dims[1:-1]]
        self.grads = [torch.randn(n, w, generator=gen) for w in dims[1:]]

    def step(self) -> None:
        inputs = [self.x] + self.h
        for i, w in enumerate(self.w):             # forward
            torch.mm(inputs[i], w)
        for i in reversed(range(len(self.w))):     # backward
            torch.mm(inputs[i].t(), self.grads[i])
            if i > 0:
                torch.mm(self.grads[i], self.w[i].t())


# ----------------------------------------------------------------------------- measurements

def time_model(model_name: str, mode: str, g: dict, args: argparse.Namespace,
               gemm: DenseProducts | None = None) -> dict[str, Any]:
    """``--warmup`` untimed epochs per side, then ``--repeats`` rounds of one epoch per side, the
    order rotating every round (and the dense products as a third participant when given)."""
    sides = {s: Side(s, model_name, args, g["x"].size(1), g["num_classes"], mode) for s in ("ours", "dgl")}
    state: dict[str, Any] = {}
    steps: dict[str, Callable[[], Any]] = {}
    for name, side in sides.items():
        model = side.build_model(args.seed)
        build_s = side.build_graph(g["edge_index"], g["num_nodes"], model)
        opt = new_optimizer(model, args)
        steps[name] = (lambda side=side, model=model, opt=opt: train_step(side, model, opt, g))
        state[name] = {"times": [], "build_s": build_s,
                       "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                       "graph": side.graph_kind()}
        print(f"  {name:<4s} {type(model).__name__}, {state[name]['params']:,} parameters, graph "
              f"{state[name]['graph']}, built in {build_s:.2f} s", flush=True)
    if gemm is not None:
        steps["gemm"] = gemm.step
        state["gemm"] = {"times": []}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    names = list(steps)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        line = []
        for name in order:
            start = time.perf_counter()
            steps[name]()
            state[name]["times"].append(1000 * (time.perf_counter() - start))
            line.append(f"{name} {state[name]['times'][-1]:9.1f} ms")
        print(f"  round {r + 1}/{args.repeats}: " + ",  ".join(line), flush=True)
    return state


def fit(side: Side, g: dict, seed: int, args: argparse.Namespace) -> dict[str, float]:
    """MAGB's schedule: AdamW, ReduceLROnPlateau(0.5, ``--lr-patience``) on the training loss,
    evaluation every ``--eval-every`` epochs, early stopping after ``--patience`` epochs without a
    better validation accuracy, at most ``--epochs-acc`` epochs; the test accuracy at the best
    validation accuracy."""
    model = side.build_model(seed)
    side.build_graph(g["edge_index"], g["num_nodes"], model)
    opt = new_optimizer(model, args)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5,
                                                       patience=args.lr_patience)
    best = {"val": -1.0, "test": 0.0, "epoch": 0}
    epoch = 0
    for epoch in range(1, args.epochs_acc + 1):
        sched.step(train_step(side, model, opt, g))
        if epoch % args.eval_every == 0 or epoch == args.epochs_acc:
            acc = accuracies(side, model, g)
            if acc["val"] > best["val"]:
                best = {"val": acc["val"], "test": acc["test"], "epoch": epoch}
        if epoch - best["epoch"] >= args.patience:
            break
    return {"test": 100 * best["test"], "val": 100 * best["val"], "best_epoch": best["epoch"],
            "epochs": epoch}


def accuracy_model(model_name: str, g: dict, args: argparse.Namespace) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"ours": [], "dgl": []}
    for seed in args.seeds:
        for name in ("ours", "dgl"):
            side = Side(name, model_name, args, g["x"].size(1), g["num_classes"], args.acc_mode)
            start = time.perf_counter()
            res = fit(side, g, seed, args)
            out[name].append(res)
            print(f"  seed {seed} {name:<4s}: test accuracy {res['test']:6.2f} at best val "
                  f"{res['val']:.2f} (epoch {res['best_epoch']} of {res['epochs']}, "
                  f"{time.perf_counter() - start:.0f} s)", flush=True)
    return out


def memory_model(model_name: str, mode: str, graph_file: str, args: argparse.Namespace) -> dict[str, dict]:
    """Peak RSS of each side in its own subprocess (this script with ``--_worker``), ``--memory-repeats``
    times per side, the order alternating; the median peak is reported, with every peak kept."""
    runs: dict[str, list[dict]] = {"ours": [], "dgl": []}
    for r in range(args.memory_repeats):
        for name in (("ours", "dgl") if r % 2 == 0 else ("dgl", "ours")):
            job = {"side": name, "model": model_name, "mode": mode, "graph_file": graph_file, "args": vars(args)}
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(job)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                print(f"  {name}: memory worker failed (rc {proc.returncode}): {' | '.join(tail)}", flush=True)
                continue
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(run)
            print(f"  {name:<4s}: peak RSS {run['peak_mb']:,.0f} MiB (before the first epoch "
                  f"{run['base_mb']:,.0f} MiB)", flush=True)
    res = {}
    for name, rs in runs.items():
        if not rs:
            res[name] = {"peak_mb": float("nan"), "base_mb": float("nan"), "peaks": []}
            continue
        res[name] = {"peak_mb": statistics.median(r["peak_mb"] for r in rs),
                     "base_mb": statistics.median(r["base_mb"] for r in rs),
                     "peaks": [r["peak_mb"] for r in rs]}
    return res


def worker(job_json: str) -> None:
    job = json.loads(job_json)
    args = argparse.Namespace(**job["args"])
    set_threads(args.threads, with_dgl=job["side"] == "dgl")   # ours: no `import dgl` at all
    warnings.filterwarnings("ignore")
    g = torch.load(job["graph_file"], weights_only=True)
    side = Side(job["side"], job["model"], args, g["x"].size(1), int(g["num_classes"]), job["mode"])
    model = side.build_model(args.seed)
    side.build_graph(g["edge_index"], int(g["num_nodes"]), model)
    opt = new_optimizer(model, args)
    base = _status_mb("VmRSS")
    for _ in range(args.warmup + 2):
        train_step(side, model, opt, g)
    print(json.dumps({"peak_mb": _status_mb("VmHWM"), "base_mb": base}))


# ----------------------------------------------------------------------------- setup and report

def set_threads(n: int | None, with_dgl: bool = True) -> int:
    if n:
        torch.set_num_threads(n)
    n = torch.get_num_threads()
    if with_dgl:
        import dgl.utils
        dgl.utils.set_num_threads(n)
    return n


def load_graph(args: argparse.Namespace, nodes: int | None = None, edges: int | None = None) -> dict[str, Any]:
    from mmgraph.data import make_split, make_synthetic
    from mmgraph.tasks import NodeClassification

    data = make_synthetic(num_nodes=nodes or args.nodes, num_edges=edges or args.edges,
                          num_classes=args.classes,
                          text_dim=args.dim // 2, image_dim=args.dim - args.dim // 2,
                          homophily=args.homophily, text_informativeness=args.informativeness,
                          image_informativeness=args.informativeness,
                          feature_noise=args.feature_noise, seed=args.seed)
    make_split(data, "magb")
    task = NodeClassification(label_smoothing=args.label_smoothing)
    task.setup(data, torch.device("cpu"))
    ei = task.edge_index
    return {"x": task.x, "edge_index": ei, "y": task.y, "num_nodes": task.x.size(0),
            "num_classes": task.num_classes, "train": task.index["train"],
            "val": task.index["val"], "test": task.index["test"],
            "homophily": float((task.y[ei[0]] == task.y[ei[1]]).float().mean()) if ei.numel() else 0.0}


def describe_graph(g: dict, seconds: float) -> str:
    return (f"{g['num_nodes']:,} nodes, {g['edge_index'].size(1):,} directed edges "
            f"(edge homophily {g['homophily']:.3f}), x {tuple(g['x'].shape)}, {g['num_classes']} classes, "
            f"split {g['train'].numel():,}/{g['val'].numel():,}/{g['test'].numel():,}; built in "
            f"{seconds:.1f} s (not timed)")


def versions() -> str:
    import torch_geometric
    try:
        import dgl
        dgl_v = dgl.__version__
    except Exception as exc:  # noqa: BLE001
        dgl_v = f"unavailable ({type(exc).__name__})"
    return (f"DGL {dgl_v}, PyG {torch_geometric.__version__}; threads: torch "
            f"{torch.get_num_threads()}, DGL the same (dgl.utils.set_num_threads)")


def _mean_sd(v: list[float]) -> str:
    sd = statistics.stdev(v) if len(v) > 1 else float("nan")
    return f"{statistics.fmean(v):.2f} ± {sd:.2f}"


def _span(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}" if values else "-"


def speed_table(results: list[dict[str, Any]]) -> str:
    head = ["model", "dropout", "params ours / DGL", "edges aggregated ours / DGL",
            "ours ms/epoch (median / min)", "DGL ms/epoch (median / min)", "ratio (median)",
            "ratio (min)", "<= 1.0x", "peak RSS ours / DGL, MiB (training +)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in results:
        t, m = r["time"], r["memory"]
        om, on = statistics.median(t["ours"]["times"]), min(t["ours"]["times"])
        dm, dn = statistics.median(t["dgl"]["times"]), min(t["dgl"]["times"])
        mem = ("not measured" if m is None else " / ".join(
            f"{m[s]['peak_mb']:,.0f} (+{m[s]['peak_mb'] - m[s]['base_mb']:,.0f})" for s in ("ours", "dgl"))
               + ("" if len(m["ours"].get("peaks", [])) < 2 else
                  f"; range {_span(m['ours']['peaks'])} / {_span(m['dgl']['peaks'])}"))
        edges = " / ".join(t[s]["graph"].split(", ")[1].split(" ")[0] for s in ("ours", "dgl"))
        lines.append("| " + " | ".join([
            r["model"].upper(), r["mode"], f"{t['ours']['params']:,} / {t['dgl']['params']:,}", edges,
            f"{om:,.1f} / {on:,.1f}", f"{dm:,.1f} / {dn:,.1f}", f"{om / dm:.3f}", f"{on / dn:.3f}",
            "yes" if om / dm <= 1.0 else "**no**", mem]) + " |")
    return "\n".join(lines)


def gemm_table(results: list[dict[str, Any]], limit: float) -> str:
    rows = [r for r in results if "gemm" in r["time"]]
    if not rows:
        return ""
    lines = ["| model | dropout | GCN epoch, ms (median) | its dense products alone, ms (median) | "
             f"ratio | <= {limit}x |", "|---|---|---|---|---|---|"]
    for r in rows:
        ep, mm = statistics.median(r["time"]["ours"]["times"]), statistics.median(r["time"]["gemm"]["times"])
        lines.append(f"| {r['model'].upper()} | {r['mode']} | {ep:,.1f} | {mm:,.1f} | {ep / mm:.3f} | "
                     f"{'yes' if ep / mm <= limit else '**no**'} |")
    return "\n".join(lines)


def accuracy_table(acc: dict[str, dict[str, list[dict]]]) -> str:
    from _paired import beyond_noise, describe, paired

    lines = ["| model | test acc ours | test acc DGL | ours − DGL, paired by seed | differ beyond noise | "
             "epochs run ours / DGL (mean) |", "|---|---|---|---|---|---|"]
    for model, a in acc.items():
        ours, dgl = [r["test"] for r in a["ours"]], [r["test"] for r in a["dgl"]]
        p = paired([o - d for o, d in zip(ours, dgl)])
        ep = " / ".join(f"{statistics.fmean(r['epochs'] for r in a[s]):.0f}" for s in ("ours", "dgl"))
        lines.append(f"| {model.upper()} | {_mean_sd(ours)} | {_mean_sd(dgl)} | {describe(p)} | "
                     f"{beyond_noise(p)} | {ep} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=REDDIT_M["nodes"])
    ap.add_argument("--edges", type=int, default=REDDIT_M["edges"], help="directed edges (both directions)")
    ap.add_argument("--dim", type=int, default=REDDIT_M["dim"], help="feature size (text dim//2 + image)")
    ap.add_argument("--classes", type=int, default=50, help="classes (Reddit-M: 50)")
    ap.add_argument("--homophily", type=float, default=0.5, help="edge homophily of the generator")
    ap.add_argument("--informativeness", type=float, default=0.3,
                    help="text and image informativeness of the generator")
    ap.add_argument("--feature-noise", type=float, default=1.0, help="feature noise std of the generator")
    ap.add_argument("--models", default="gcn,sage,gat", help="comma-separated: gcn, sage, gat")
    ap.add_argument("--modes", default="zero,same,own",
                    help="comma-separated dropout modes: " + "; ".join(f"{k}: {v}" for k, v in MODES.items()))
    ap.add_argument("--repeats", type=int, default=20, help="timed epochs per side, model and mode")
    ap.add_argument("--warmup", type=int, default=3, help="untimed epochs per side first")
    ap.add_argument("--gemm-limit", type=float, default=1.2,
                    help="the GCN epoch's goal, as a multiple of its dense products alone")
    ap.add_argument("--epochs-acc", type=int, default=1000, help="most epochs per accuracy run (0: skip)")
    ap.add_argument("--patience", type=int, default=100, help="accuracy runs: early-stopping patience")
    ap.add_argument("--lr-patience", type=int, default=100, help="accuracy runs: ReduceLROnPlateau patience")
    ap.add_argument("--eval-every", type=int, default=1)
    ap.add_argument("--acc-mode", choices=tuple(MODES), default="own", help="dropout mode of the accuracy runs")
    ap.add_argument("--acc-nodes", type=int, default=None,
                    help="nodes of the accuracy runs' graph (default --nodes; the same generator)")
    ap.add_argument("--acc-edges", type=int, default=None, help="its directed edges (default --edges)")
    ap.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2],
                    help="comma-separated seeds of the accuracy runs")
    ap.add_argument("--hidden", type=int, default=256, help="hidden width (GAT: per head)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--dgl-gat", choices=("magb", "dglnn"), default="magb",
                    help="DGL GAT: MAGB's layer (source-side attention) or dgl.nn.GATConv")
    ap.add_argument("--dgl-sage-init", choices=("dgl", "torch"), default="dgl",
                    help="DGL SAGE's linear layers: DGL's xavier init (as MAGB) or torch.nn.Linear's (as ours)")
    ap.add_argument("--threads", type=int, default=None, help="torch and DGL threads (default: torch's)")
    ap.add_argument("--memory-repeats", type=int, default=3,
                    help="peak-RSS subprocesses per side, model and mode (alternating; median reported)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    ap.add_argument("--seed", type=int, default=0, help="graph and timing-model seed")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dgl_parity.md"))
    ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                    help="tuned: glibc keeps freed memory, as `python -m mmgraph.bench` does "
                         "(mmgraph._malloc); applies to both sides alike")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.malloc == "tuned":
        from mmgraph._malloc import tune_malloc
        args.malloc = "tuned" if tune_malloc() else "default (tuning unavailable)"
    if args._worker:
        return worker(args._worker)
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in models if m not in ("gcn", "sage", "gat")] + [m for m in modes if m not in MODES]
    if bad:
        ap.error(f"unknown model or mode {bad[0]!r}; models: gcn, sage, gat; modes: {', '.join(MODES)}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    args.threads = set_threads(args.threads)
    import dgl  # noqa: F401  (fail early, before building the graph)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _provenance

    header = _provenance.header("DGL parity: full-batch GCN / GraphSAGE / GAT, mmgraph vs DGL configured as MAGB")
    header.insert(-1, f"- libraries: {versions()}; glibc malloc: {args.malloc}")
    print("\n".join(header), flush=True)

    start = time.perf_counter()
    g = load_graph(args)
    desc = "timing graph: " + describe_graph(g, time.perf_counter() - start)
    print(desc, flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="dgl_parity_") as tmp:
        graph_file = os.path.join(tmp, "graph.pt")
        if not args.no_memory:
            torch.save({k: v for k, v in g.items() if k != "homophily"}, graph_file)
        for m in models:
            for mode in modes:
                gemm = DenseProducts(g, args) if m == "gcn" and mode == "zero" else None
                print(f"\n[{m}, dropout {mode}] timing: {args.warmup} warm-up + {args.repeats} rotating "
                      f"epochs per side{' (and the dense products alone)' if gemm else ''}", flush=True)
                res = {"model": m, "mode": mode, "time": time_model(m, mode, g, args, gemm), "memory": None}
                del gemm
                if not args.no_memory:
                    print(f"[{m}, dropout {mode}] peak RSS, {args.memory_repeats} subprocess(es) per side, "
                          "alternating", flush=True)
                    res["memory"] = memory_model(m, mode, graph_file, args)
                results.append(res)
    accuracy: dict[str, Any] = {}
    acc_desc = ""
    if args.epochs_acc > 0:
        if (args.acc_nodes or args.nodes, args.acc_edges or args.edges) != (args.nodes, args.edges):
            t0 = time.perf_counter()
            g = load_graph(args, args.acc_nodes, args.acc_edges)
            acc_desc = "accuracy graph (same generator settings): " + describe_graph(g, time.perf_counter() - t0)
            print(acc_desc, flush=True)
        else:
            acc_desc = "accuracy graph: the timing graph"
        for m in models:
            print(f"\n[{m}] accuracy, dropout {args.acc_mode}: up to {args.epochs_acc} epochs, patience "
                  f"{args.patience}, seeds {args.seeds}", flush=True)
            accuracy[m] = accuracy_model(m, g, args)

    elapsed = time.perf_counter() - start
    speed = speed_table(results)
    gemm = gemm_table(results, args.gemm_limit)
    acc = accuracy_table(accuracy) if accuracy else "not run (--epochs-acc 0)"
    raw = []
    for r in results:
        t = r["time"]
        raw.append(f"{r['model']}, {r['mode']}: " + "; ".join(
            f"{name} {['%.1f' % v for v in st['times']]} ms" for name, st in t.items())
            + f"; graph build ours {t['ours']['build_s']:.2f} s ({t['ours']['graph']}), DGL "
              f"{t['dgl']['build_s']:.2f} s ({t['dgl']['graph']})")
    for m, a in accuracy.items():
        raw.append(f"{m} accuracy: " + "; ".join(
            f"{s} " + ", ".join(f"{r['test']:.2f} (epoch {r['best_epoch']}/{r['epochs']})" for r in a[s])
            for s in ("ours", "dgl")))
    footer = (f"load average at end: {_provenance.load()}; total {elapsed / 60:.1f} min; "
              f"{args.repeats} timed epochs per side after {args.warmup} warm-up; "
              f"hidden {args.hidden}{' per head x ' + str(args.heads) + ' heads (GAT)' if 'gat' in models else ''}, "
              f"{args.layers} layers, dropout {args.dropout} (modes {', '.join(modes)}), AdamW lr {args.lr}, "
              f"label smoothing {args.label_smoothing}; DGL GAT: {args.dgl_gat}; DGL SAGE init: {args.dgl_sage_init}; accuracy: dropout mode "
              f"{args.acc_mode}, up to {args.epochs_acc} epochs, patience {args.patience}, lr patience "
              f"{args.lr_patience}, eval every {args.eval_every}, seeds {args.seeds}")
    full = (args.nodes, args.edges, args.dim) == tuple(REDDIT_M.values())
    note = ("" if full else
            f"**Reduced-size check, not the acceptance measurement** (Reddit-M is "
            f"{REDDIT_M['nodes']:,} nodes / {REDDIT_M['edges']:,} edges / {REDDIT_M['dim']}-d; run "
            f"`.venv/bin/python benchmarks/dgl_parity.py` without size options for it).\n")
    doc = header[:-1] + [f"- {desc}", f"- {acc_desc}" if acc_desc else "- accuracy: not run",
                         f"- our sparse-dense products: {_provenance.sparse_product()}", "", note,
                         "What is compared, the dropout modes and MAGB's configuration of the DGL models: "
                         "see the docstring of [`benchmarks/dgl_parity.py`](../dgl_parity.py).", "",
                         "## Time per epoch and peak memory", "", speed, "",
                         "Dropout modes: " + "; ".join(f"`{k}`: {v}" for k, v in MODES.items() if k in modes)
                         + ". ms per training epoch (forward + backward + AdamW step), median and minimum "
                         "over the rounds; ratio = ours / DGL; peak RSS = VmHWM of a subprocess per side, the median "
                         f"over {args.memory_repeats} such subprocesses per side (in parentheses: its increase "
                         "during training; then the range of the peaks).", ""]
    if gemm:
        doc += ["## The GCN epoch against its dense products", "", gemm, "",
                "The dense products: the matrix products of the same GCN's epoch (forward X W per layer; "
                "backward X^T G per layer and G W^T below the top layer) on random matrices of the same "
                "shapes, without the graph, timed in the same rotation.", ""]
    doc += ["## Accuracy", "", acc, "",
            "Test accuracy (%) at the best validation accuracy (MAGB's selection), mean ± std over seeds; "
            "the difference ours − DGL paired by seed, with its 95 % Student-t interval.", "",
            "```", *raw, "", footer, "```", ""]
    _provenance.emit(doc, Path(args.out))
    print(f"\nwritten: {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
