"""DGL parity: full-batch GCN / GraphSAGE / GAT epochs of mmgraph's models vs DGL models configured as MAGB's GNN scripts.

Usage (from the repository root; needs the ``dgl`` extra)::

    .venv/bin/python benchmarks/dgl_parity.py              # Reddit-M size: 99,638 nodes, 1,167,188 edges, 768-d
    .venv/bin/python benchmarks/dgl_parity.py --nodes 5000 --edges 50000 --repeats 2 --epochs-acc 20   # quick check

Acceptance criterion (issue): time per full-batch epoch of our GCN, SAGE and GAT <= 1.0x the DGL
implementations configured as in MAGB's GNN scripts, on a synthetic graph the size of MAGB's
Reddit-M, measured side by side in one run, with test accuracy on a synthetic task within noise.

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
``configs/model/{gcn,sage,gat}.yaml`` (BatchNorm, ReLU, dropout 0.5, GCN ``cached: true``, SAGE
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
with ReLU gain, PyG's (and ours) with torch's ``Linear`` default. On the 5,000-node check this
alone put DGL's SAGE ~10 points of test accuracy below ours after 20 epochs (65.8 vs 76.5) and
~7 after 60; re-initialising DGL's layers with torch's default closed the gap (75.9 vs 76.0).

**Measured.** (1) Time per training epoch (``zero_grad``, forward, label-smoothed cross-entropy
on the train nodes, backward, ``AdamW.step``), ours and DGL alternating in one process (ours
first in even rounds, DGL first in odd ones) after ``--warmup`` untimed epochs of each, one
epoch per round, ``--repeats`` rounds: median and minimum, same torch and DGL thread count
(``--threads``, default torch's). (2) Peak RSS: each side in its own subprocess (the same
tensors loaded from a temporary file, the graph built, ``--warmup`` + 2 epochs), ``VmHWM`` of
that process, and its increase over the RSS just before the first epoch. (3) Test accuracy:
for each seed in ``--seeds``, ``torch.manual_seed(seed)``, a fresh model, ``--epochs-acc``
epochs at lr 0.005, evaluation every ``--eval-every`` epochs, test accuracy at the best
validation accuracy (MAGB's selection); mean +- std over seeds, and whether the difference of
the means lies within 2 standard errors. The table goes to stdout and, with the command, the
machine and the date, to ``--out`` (``benchmarks/results/dgl_parity.md``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
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
              heads: int, gat_kind: str) -> nn.Module:
        dims = [in_feats] + [hidden] * (layers - 1) + [n_classes]
        if model == "gcn":
            convs = [GraphConv(dims[i], dims[i + 1], norm="both") for i in range(layers)]
            return Stack(convs, dims[1:-1], dropout)
        if model == "sage":
            convs = [SAGEConv(dims[i], dims[i + 1], "mean") for i in range(layers)]
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

class Side:
    """How one framework builds its graph and model and runs a forward pass."""

    def __init__(self, name: str, model: str, args: argparse.Namespace, in_feats: int, n_classes: int):
        self.name, self.model, self.args = name, model, args
        self.in_feats, self.n_classes = in_feats, n_classes
        self.graph: Any = None
        if name == "dgl":
            self._build_dgl, self._graph_dgl = _dgl_models()

    def build_model(self, seed: int) -> nn.Module:
        a = self.args
        torch.manual_seed(seed)
        if self.name == "dgl":
            return self._build_dgl(self.model, self.in_feats, a.hidden, self.n_classes, a.layers,
                                   a.dropout, a.heads, a.dgl_gat)
        return ours_model(self.model, self.in_feats, self.n_classes, a)

    def build_graph(self, edge_index: Tensor, num_nodes: int, model: nn.Module) -> float:
        start = time.perf_counter()
        self.graph = (self._graph_dgl(edge_index, num_nodes) if self.name == "dgl"
                      else ours_graph(edge_index, num_nodes, model))
        return time.perf_counter() - start

    def forward(self, model: nn.Module, x: Tensor) -> Tensor:
        return model(self.graph, x) if self.name == "dgl" else model(x, self.graph)

    def graph_kind(self) -> str:
        if self.name == "dgl":
            return f"DGLGraph ({self.graph.num_edges():,} edges incl. self loops)"
        return type(self.graph).__name__


def ours_model(model: str, in_feats: int, n_classes: int, args: argparse.Namespace) -> nn.Module:
    """``mmgraph.nn`` model from the project's ``configs/model/<name>.yaml``, sizes overridden."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    name = {"gcn": "gcn", "sage": "sage", "gat": "gat"}[model]
    cfg = OmegaConf.load(ROOT / "configs" / "model" / f"{name}.yaml").module
    cfg.hidden_channels = args.hidden * (args.heads if model == "gat" else 1)
    cfg.num_layers, cfg.dropout = args.layers, args.dropout
    if model == "gat":
        cfg.heads = args.heads
    return instantiate(cfg, in_channels=in_feats, out_channels=n_classes)


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


# ----------------------------------------------------------------------------- measurements

def time_model(model_name: str, g: dict, args: argparse.Namespace) -> dict[str, Any]:
    sides = {s: Side(s, model_name, args, g["x"].size(1), g["num_classes"]) for s in ("ours", "dgl")}
    state: dict[str, Any] = {}
    for name, side in sides.items():
        model = side.build_model(args.seed)
        build_s = side.build_graph(g["edge_index"], g["num_nodes"], model)
        opt = new_optimizer(model, args)
        for _ in range(args.warmup):
            train_step(side, model, opt, g)
        state[name] = {"model": model, "opt": opt, "times": [], "build_s": build_s,
                       "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                       "graph": side.graph_kind()}
        print(f"  {name:<4s} {type(model).__name__}, {state[name]['params']:,} parameters, graph "
              f"{state[name]['graph']} built in {build_s:.2f} s", flush=True)
    for r in range(args.repeats):
        order = ("ours", "dgl") if r % 2 == 0 else ("dgl", "ours")
        line = []
        for name in order:
            st = state[name]
            start = time.perf_counter()
            train_step(sides[name], st["model"], st["opt"], g)
            st["times"].append(1000 * (time.perf_counter() - start))
            line.append(f"{name} {st['times'][-1]:9.1f} ms")
        print(f"  round {r + 1}/{args.repeats}: " + ",  ".join(line), flush=True)
    return {name: {k: v for k, v in st.items() if k not in ("model", "opt")} for name, st in state.items()}


def accuracy_model(model_name: str, g: dict, args: argparse.Namespace) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ours": [], "dgl": []}
    for seed in args.seeds:
        for name in ("ours", "dgl"):
            side = Side(name, model_name, args, g["x"].size(1), g["num_classes"])
            model = side.build_model(seed)
            side.build_graph(g["edge_index"], g["num_nodes"], model)
            opt = new_optimizer(model, args)
            best_val, best_test = -1.0, 0.0
            for epoch in range(1, args.epochs_acc + 1):
                train_step(side, model, opt, g)
                if epoch % args.eval_every == 0 or epoch == args.epochs_acc:
                    acc = accuracies(side, model, g)
                    if acc["val"] > best_val:
                        best_val, best_test = acc["val"], acc["test"]
            out[name].append(100 * best_test)
            print(f"  seed {seed} {name:<4s}: test accuracy {100 * best_test:6.2f} "
                  f"(at best val {100 * best_val:.2f})", flush=True)
    return out


def memory_model(model_name: str, graph_file: str, args: argparse.Namespace) -> dict[str, dict]:
    """Peak RSS of each side in its own subprocess (this script with ``--_worker``)."""
    res = {}
    for name in ("ours", "dgl"):
        job = {"side": name, "model": model_name, "graph_file": graph_file, "args": vars(args)}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(job)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            print(f"  {name}: memory worker failed (rc {proc.returncode}): {' | '.join(tail)}", flush=True)
            res[name] = {"peak_mb": float("nan"), "base_mb": float("nan")}
            continue
        res[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {name:<4s}: peak RSS {res[name]['peak_mb']:,.0f} MiB (before the first epoch "
              f"{res[name]['base_mb']:,.0f} MiB)", flush=True)
    return res


def worker(job_json: str) -> None:
    job = json.loads(job_json)
    args = argparse.Namespace(**job["args"])
    set_threads(args.threads, with_dgl=job["side"] == "dgl")   # ours: no `import dgl` at all
    warnings.filterwarnings("ignore")
    g = torch.load(job["graph_file"], weights_only=True)
    side = Side(job["side"], job["model"], args, g["x"].size(1), int(g["num_classes"]))
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


def load_graph(args: argparse.Namespace) -> dict[str, Any]:
    from mmgraph.data import make_split, make_synthetic
    from mmgraph.tasks import NodeClassification

    data = make_synthetic(num_nodes=args.nodes, num_edges=args.edges, num_classes=args.classes,
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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    import torch_geometric
    try:
        import dgl
        dgl_v = dgl.__version__
    except Exception as exc:  # noqa: BLE001
        dgl_v = f"unavailable ({type(exc).__name__})"
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM; Python {platform.python_version()}, "
            f"torch {torch.__version__}, DGL {dgl_v}, PyG {torch_geometric.__version__}; "
            f"threads: torch {torch.get_num_threads()}, DGL the same (dgl.utils.set_num_threads)")


def _mean_sd(v: list[float]) -> tuple[float, float]:
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else float("nan"))


def table(results: list[dict[str, Any]]) -> str:
    head = ["model", "params ours / DGL", "ours ms/epoch (median / min)", "DGL ms/epoch (median / min)",
            "ratio (median)", "ratio (min)", "<= 1.0x", "peak RSS ours / DGL, MiB (training +)",
            "test acc ours", "test acc DGL", "diff (2 SE)", "within noise"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in results:
        t, m, a = r["time"], r["memory"], r["acc"]
        om, on = statistics.median(t["ours"]["times"]), min(t["ours"]["times"])
        dm, dn = statistics.median(t["dgl"]["times"]), min(t["dgl"]["times"])
        mem = " / ".join(f"{m[s]['peak_mb']:,.0f} (+{m[s]['peak_mb'] - m[s]['base_mb']:,.0f})"
                         for s in ("ours", "dgl"))
        if a["ours"] and a["dgl"]:
            (mo, so), (md, sd) = _mean_sd(a["ours"]), _mean_sd(a["dgl"])
            se = math.sqrt(((so ** 2) if so == so else 0) / len(a["ours"])
                           + ((sd ** 2) if sd == sd else 0) / len(a["dgl"]))
            acc_o, acc_d = f"{mo:.2f} ± {so:.2f}", f"{md:.2f} ± {sd:.2f}"
            diff = f"{mo - md:+.2f} ({2 * se:.2f})"
            noise = ("yes" if abs(mo - md) <= 2 * se else "**no**") if len(a["ours"]) > 1 else "n/a (1 seed)"
        else:
            acc_o = acc_d = diff = noise = "not run"
        lines.append("| " + " | ".join([
            r["model"].upper(), f"{t['ours']['params']:,} / {t['dgl']['params']:,}",
            f"{om:,.1f} / {on:,.1f}", f"{dm:,.1f} / {dn:,.1f}", f"{om / dm:.3f}", f"{on / dn:.3f}",
            "yes" if om / dm <= 1.0 else "**no**", mem, acc_o, acc_d, diff, noise]) + " |")
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
    ap.add_argument("--repeats", type=int, default=10, help="timed epochs per side and model")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs per side first")
    ap.add_argument("--epochs-acc", type=int, default=50, help="training epochs per accuracy run (0: skip)")
    ap.add_argument("--eval-every", type=int, default=5)
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
    ap.add_argument("--threads", type=int, default=None, help="torch and DGL threads (default: torch's)")
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
    bad = [m for m in models if m not in ("gcn", "sage", "gat")]
    if bad:
        ap.error(f"unknown model {bad[0]!r}; choose from gcn, sage, gat")

    threads = set_threads(args.threads)
    args.threads = threads
    import dgl  # noqa: F401  (fail early, before building the graph)

    started = datetime.datetime.now()
    load1 = os.getloadavg()
    command = " ".join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
                        else os.path.basename(sys.executable), *sys.argv])
    header = [f"date: {started.isoformat(timespec='seconds')}", f"machine: {machine()}",
              f"command: {command}", f"glibc malloc: {args.malloc}", f"load average at start: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}"]
    print("\n".join(header), flush=True)

    start = time.perf_counter()
    g = load_graph(args)
    desc = (f"graph: {g['num_nodes']:,} nodes, {g['edge_index'].size(1):,} directed edges "
            f"(edge homophily {g['homophily']:.3f}), x {tuple(g['x'].shape)}, {g['num_classes']} classes, "
            f"split {g['train'].numel():,}/{g['val'].numel():,}/{g['test'].numel():,}; built in "
            f"{time.perf_counter() - start:.1f} s (not timed)")
    print(desc, flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="dgl_parity_") as tmp:
        graph_file = os.path.join(tmp, "graph.pt")
        if not args.no_memory:
            torch.save({k: v for k, v in g.items() if k != "homophily"}, graph_file)
        for m in models:
            print(f"\n[{m}] timing: {args.warmup} warm-up + {args.repeats} alternating epochs per side", flush=True)
            res = {"model": m, "time": time_model(m, g, args)}
            if args.no_memory:
                res["memory"] = {s: {"peak_mb": float("nan"), "base_mb": float("nan")} for s in ("ours", "dgl")}
            else:
                print(f"[{m}] peak RSS, one subprocess per side", flush=True)
                res["memory"] = memory_model(m, graph_file, args)
            if args.epochs_acc > 0:
                print(f"[{m}] accuracy: {args.epochs_acc} epochs, seeds {args.seeds}", flush=True)
                res["acc"] = accuracy_model(m, g, args)
            else:
                res["acc"] = {"ours": [], "dgl": []}
            results.append(res)

    load2 = os.getloadavg()
    elapsed = time.perf_counter() - start
    tab = table(results)
    raw = "\n".join(f"{r['model']}: ours {['%.1f' % v for v in r['time']['ours']['times']]} ms; "
                    f"DGL {['%.1f' % v for v in r['time']['dgl']['times']]} ms; graph build ours "
                    f"{r['time']['ours']['build_s']:.2f} s ({r['time']['ours']['graph']}), DGL "
                    f"{r['time']['dgl']['build_s']:.2f} s; test acc ours {['%.2f' % v for v in r['acc']['ours']]}, "
                    f"DGL {['%.2f' % v for v in r['acc']['dgl']]}"
                    for r in results)
    footer = (f"load average at end: {load2[0]:.2f} {load2[1]:.2f} {load2[2]:.2f}; total {elapsed / 60:.1f} min; "
              f"{args.repeats} timed epochs per side after {args.warmup} warm-up; accuracy: "
              f"{args.epochs_acc} epochs, eval every {args.eval_every}, seeds {args.seeds}; "
              f"hidden {args.hidden}{' per head x ' + str(args.heads) + ' heads (GAT)' if 'gat' in models else ''}, "
              f"{args.layers} layers, dropout {args.dropout}, AdamW lr {args.lr}, label smoothing "
              f"{args.label_smoothing}; DGL GAT: {args.dgl_gat}")
    print(f"\n{tab}\n\n{raw}\n\n{footer}")

    full = (args.nodes, args.edges, args.dim) == tuple(REDDIT_M.values())
    note = ("" if full else
            f"**Reduced-size check, not the acceptance measurement** (Reddit-M is "
            f"{REDDIT_M['nodes']:,} nodes / {REDDIT_M['edges']:,} edges / {REDDIT_M['dim']}-d; run "
            f"`.venv/bin/python benchmarks/dgl_parity.py` without size options for it).\n\n")
    doc = (f"# DGL parity: full-batch GCN / GraphSAGE / GAT, mmgraph vs DGL configured as MAGB\n\n{note}"
           + "\n".join(f"- {h}" for h in header) + f"\n- {desc}\n\n"
           f"What is compared, and MAGB's configuration of the DGL models: see the docstring of "
           f"[`benchmarks/dgl_parity.py`](../dgl_parity.py).\n\n## Result\n\n{tab}\n\n"
           f"Columns: ms per training epoch (forward + backward + AdamW step), median and minimum over "
           f"the alternating rounds; ratio = ours / DGL; peak RSS = VmHWM of a subprocess per side "
           f"(in parentheses: its increase during training); test accuracy (%) at the best "
           f"validation accuracy, mean ± std over seeds; diff = ours − DGL with two standard errors "
           f"of that difference.\n\n```\n{raw}\n\n{footer}\n```\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(doc)
    print(f"\nwritten: {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
