"""Runner overhead: a full-batch GCN / GAT epoch through ``run(cfg)`` vs a minimal PyG loop.

Usage (from the repository root)::

    .venv/bin/python benchmarks/runner_overhead.py                  # 100k nodes, 1M edges, 768-d
    .venv/bin/python benchmarks/runner_overhead.py --nodes 5000 --edges 50000 --epochs 3 --repeats 2

One synthetic graph (``make_synthetic``, ``text_dim = image_dim = 384`` so ``x`` is 768-d, MAGB
split 60/20/20 with seed 42) is built once and shared by both sides; its generation is not timed.

*Runner side.* The real configs are composed with Hydra (``configs/config.yaml`` with
``model=gcn`` or ``model=gat`` and overrides) and :func:`mmgraph.bench.runner.run` is called
with ``runs=1``. ``dataset.loader._target_`` points at :func:`cached_synthetic` below, which calls
``make_synthetic`` with the config's own arguments but returns the graph already built, so
``run`` goes through its whole code path (load_dataset, task.setup with the MAGB split,
instantiate, reset_parameters, ``fit``, records) without regenerating the data. The time per
epoch is ``summary["seconds_per_run"] / summary["epochs"]``: ``fit``'s own wall time of the
epoch loop (optimizer construction is before its clock starts), which holds every epoch's
``task.train_epoch`` + ``task.evaluate`` (accuracy and macro-F1 through the Evaluator) +
selection / ReduceLROnPlateau / early-stopping bookkeeping. Work ``run`` does once per call
outside ``fit`` (building the homogeneous view, the model, the records, ``git`` calls) is
reported separately as "setup", not as per-epoch cost.

*Minimal side.* :func:`minimal_loop`, written the way a PyG example is: the same architecture
(``GCNConv`` x2 with ``cached=True``, or ``GATConv`` x2 with the same heads; ReLU and dropout
0.5 between layers, no normalisation), ``torch.optim.AdamW`` with the trainer's lr and weight
decay, and per epoch one full-batch train step (cross-entropy on the train nodes) and one
``no_grad`` eval forward computing the accuracy of train/val/test. It is timed the way ``fit``
times itself: a fresh model and optimizer, clock around the epoch loop only. Both sides
therefore pay GCN's one-off normalisation (``cached=True`` is filled on the first forward,
and ``reset_parameters`` clears it) once per repeat.

To make the work identical, the runner's config is overridden to the minimal model:
``model.module.norm=null`` (the configs default to BatchNorm), ``task.label_smoothing=0.0``
(MAGB's 0.1 by default; the minimal loop uses plain cross-entropy), ``trainer.patience=null``
(run every epoch) and ``trainer.progress=false``. GAT's hidden width defaults to 3 heads x 64
(``--gat-hidden 192``) instead of the config's 3 x 256: at 1.1M edges (with self loops) every
per-edge message tensor of ``GATConv`` is ``E x 768`` floats (3.4 GB), and a train step keeps
several of them alive, which is too much next to other work on a 24 GB machine.

Protocol: per model, one untimed warm-up (1 epoch) of each side, then ``--repeats`` rounds of
``--epochs`` epochs each, alternating the order (runner first in even rounds, minimal first in
odd ones) so drift and other load hit both sides. Reported: median and min ms/epoch of each
side, the ratio runner/minimal of the medians (and of the mins), the runner's setup seconds
outside ``fit``, and the process's peak RSS during each side (``VmHWM`` reset through
``/proc/self/clear_refs`` before every timed call; the number includes the shared graph).
The thread count is torch's default and is the same for both sides (one process).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Graphs built by ``cached_synthetic``, keyed by their generator arguments.
_GRAPHS: dict[tuple, Any] = {}


def cached_synthetic(**kwargs):
    """``make_synthetic(**kwargs)``, built once per distinct arguments (the runner's loader)."""
    from mmgraph.data.synthetic import make_synthetic

    key = tuple(sorted(kwargs.items()))
    if key not in _GRAPHS:
        _GRAPHS[key] = make_synthetic(**kwargs)
    return _GRAPHS[key]


# ----------------------------------------------------------------------------- memory

def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    """Peak RSS since the last reset (VmHWM), else the process high-water mark."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ----------------------------------------------------------------------------- minimal side
# What a PyG user writes (cf. examples/gcn.py, examples/gat.py), with the runner's architecture.

from torch_geometric.nn import GATConv, GCNConv  # noqa: E402


class MinimalGCN(nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels, dropout=0.5):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels, cached=True)
        self.conv2 = GCNConv(hidden_channels, out_channels, cached=True)
        self.dropout = dropout

    def forward(self, x, edge_index):
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


class MinimalGAT(nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels, heads=3, dropout=0.5):
        super().__init__()
        self.conv1 = GATConv(in_channels, hidden_channels // heads, heads=heads)
        self.conv2 = GATConv(hidden_channels, out_channels, heads=1, concat=False)
        self.dropout = dropout

    def forward(self, x, edge_index):
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


def make_minimal(model: str, in_channels: int, hidden: int, num_classes: int, heads: int) -> nn.Module:
    if model == "gcn":
        return MinimalGCN(in_channels, hidden, num_classes)
    return MinimalGAT(in_channels, hidden, num_classes, heads=heads)


def minimal_loop(model, x, edge_index, y, train, val, test, epochs, lr, weight_decay) -> float:
    """``epochs`` full-batch epochs (train step + eval forward); returns the loop's seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        out = model(x, edge_index)
        loss = F.cross_entropy(out[train], y[train])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, edge_index).argmax(dim=-1)
        # What an example prints each epoch: the loss and three accuracies as Python floats.
        float(loss.detach()), [float((pred[idx] == y[idx]).float().mean()) for idx in (train, val, test)]
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- runner side

def compose_cfg(model: str, epochs: int, args: argparse.Namespace):
    from hydra import compose, initialize_config_dir
    from mmgraph.paths import config_dir

    overrides = [
        f"model={model}",
        f"dataset.loader._target_={__name__}.cached_synthetic",
        f"dataset.loader.num_nodes={args.nodes}",
        f"dataset.loader.num_edges={args.edges}",
        f"dataset.loader.text_dim={args.dim}",
        f"dataset.loader.image_dim={args.dim}",
        f"dataset.loader.seed={args.seed}",
        "dataset.split.name=magb",
        "runs=1",
        f"seed={args.seed}",
        "device=cpu",
        f"trainer.max_epochs={epochs}",
        "trainer.patience=null",
        "trainer.progress=false",
        "task.label_smoothing=0.0",
        "model.module.norm=null",
        "model.module.dropout=0.5",
        "model.module.input_dropout=0.0",
        "model.module.activation=relu",
        "model.module.num_layers=2",
    ]
    if model == "gcn":
        overrides += [f"model.module.hidden_channels={args.gcn_hidden}", "model.module.cached=true"]
    else:
        overrides += [f"model.module.hidden_channels={args.gat_hidden}",
                      f"model.module.heads={args.heads}", "model.module.out_heads=1",
                      "model.module.attn_dropout=0.0"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def runner_once(cfg) -> tuple[float, float, int]:
    """``run(cfg)``; returns (seconds of fit's epoch loop, total seconds of run, epochs)."""
    from mmgraph.bench.runner import run

    start = time.perf_counter()
    row = run(cfg)
    total = time.perf_counter() - start
    s = row["summary"]
    return float(s["seconds_per_run"]), total, int(s["epochs"])


# ----------------------------------------------------------------------------- benchmark

def bench_model(model: str, graph: dict, args: argparse.Namespace) -> dict[str, Any]:
    cfg = compose_cfg(model, args.epochs, args)
    cfg_warm = compose_cfg(model, 1, args)
    tr = cfg.trainer
    assert tr.optimizer == "adamw", tr.optimizer
    in_ch, n_cls = graph["x"].size(1), graph["num_classes"]
    hidden = args.gcn_hidden if model == "gcn" else args.gat_hidden

    def new_minimal(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return make_minimal(model, in_ch, hidden, n_cls, args.heads)

    def minimal(epochs: int, seed: int) -> float:
        m = new_minimal(seed)
        return minimal_loop(m, graph["x"], graph["edge_index"], graph["y"], graph["train"],
                            graph["val"], graph["test"], epochs, float(tr.lr), float(tr.weight_decay))

    n_params = sum(p.numel() for p in new_minimal(0).parameters())
    print(f"\n[{model}] hidden={hidden}{f' ({args.heads} heads)' if model == 'gat' else ''}, "
          f"{n_params:,} parameters; warm-up (1 epoch each side) ...", flush=True)
    runner_once(cfg_warm)
    minimal(1, args.seed)

    res: dict[str, Any] = {"model": model, "hidden": hidden, "params": n_params, "runner": [],
                           "minimal": [], "setup": [], "peak_runner": 0.0, "peak_minimal": 0.0}
    for r in range(args.repeats):
        order = ("runner", "minimal") if r % 2 == 0 else ("minimal", "runner")
        for side in order:
            _reset_peak()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            if side == "runner":
                fit_s, total_s, epochs = runner_once(cfg)
                assert epochs == args.epochs, (epochs, args.epochs)
                res["runner"].append(1000 * fit_s / epochs)
                res["setup"].append(total_s - fit_s)
            else:
                res["minimal"].append(1000 * minimal(args.epochs, args.seed + r) / args.epochs)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            res[f"peak_{side}"] = max(res[f"peak_{side}"], _peak_mb())
            print(f"  round {r + 1}/{args.repeats} {side:<7s} {res[side][-1]:9.1f} ms/epoch  "
                  f"(peak RSS {_peak_mb():,.0f} MiB; whole call: user {ru1.ru_utime - ru0.ru_utime:.1f} s, "
                  f"sys {ru1.ru_stime - ru0.ru_stime:.1f} s, "
                  f"{(ru1.ru_minflt - ru0.ru_minflt) / 1e6:.1f}M page faults)", flush=True)
    return res


def profile_model(model: str, graph: dict, args: argparse.Namespace, top: int) -> None:
    """cProfile one runner round and one minimal round (where does the time go?)."""
    import cProfile
    import io
    import pstats

    cfg = compose_cfg(model, args.epochs, args)
    tr = cfg.trainer
    hidden = args.gcn_hidden if model == "gcn" else args.gat_hidden
    in_ch, n_cls = graph["x"].size(1), graph["num_classes"]
    for side in ("runner", "minimal"):
        prof = cProfile.Profile()
        if side == "runner":
            prof.runcall(runner_once, cfg)
        else:
            torch.manual_seed(args.seed)
            m = make_minimal(model, in_ch, hidden, n_cls, args.heads)
            prof.runcall(minimal_loop, m, graph["x"], graph["edge_index"], graph["y"],
                         graph["train"], graph["val"], graph["test"], args.epochs,
                         float(tr.lr), float(tr.weight_decay))
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
        print(f"\n---- cProfile {model} {side} ({args.epochs} epochs), top {top} by own time ----")
        print(out.getvalue().split("\n", 4)[-1].rstrip())


def load_graph(args: argparse.Namespace) -> dict[str, Any]:
    """Build the one graph through the runner's own loader config and extract plain tensors."""
    from hydra.utils import instantiate
    from mmgraph.data.splits import make_split

    cfg = compose_cfg("gcn", 1, args)
    data = instantiate(cfg.dataset.loader)          # cached_synthetic -> make_synthetic
    split = {k: v for k, v in cfg.dataset.split.items() if k != "name"}
    make_split(data, "magb", **split)
    store = data["item"]
    (et,) = data.edge_types
    idx = {k: store[f"{k}_mask"].nonzero().view(-1) for k in ("train", "val", "test")}
    return {"data": data, "x": store.x, "edge_index": data[et].edge_index, "y": store.y,
            "num_classes": len(data.meta["class_names"]), **idx}


def fmt_table(results: list[dict[str, Any]], epochs: int, repeats: int) -> str:
    head = ["model", "hidden", "params", "runner ms/epoch (median / min)",
            "minimal ms/epoch (median / min)", "ratio (median)", "ratio (min)", "<= 1.10x",
            "runner setup s/run", "peak RSS runner / minimal (MiB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in results:
        rm, rn = statistics.median(r["runner"]), min(r["runner"])
        mm, mn = statistics.median(r["minimal"]), min(r["minimal"])
        hidden = f"{r['hidden']}" + (" (3x%d)" % (r["hidden"] // 3) if r["model"] == "gat" else "")
        lines.append("| " + " | ".join([
            r["model"].upper(), hidden, f"{r['params']:,}", f"{rm:,.1f} / {rn:,.1f}",
            f"{mm:,.1f} / {mn:,.1f}", f"{rm / mm:.3f}", f"{rn / mn:.3f}",
            "yes" if rm / mm <= 1.10 else "**no**", f"{statistics.median(r['setup']):.2f}",
            f"{r['peak_runner']:,.0f} / {r['peak_minimal']:,.0f}"]) + " |")
    return "\n".join(lines) + f"\n\n({repeats} rounds x {epochs} epochs per side and model)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384, help="text_dim = image_dim (x is 2 x dim)")
    ap.add_argument("--models", default="gcn,gat", help="comma-separated: gcn, gat")
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per round and side")
    ap.add_argument("--repeats", type=int, default=5, help="alternating rounds per model")
    ap.add_argument("--gcn-hidden", type=int, default=256)
    ap.add_argument("--gat-hidden", type=int, default=192, help="total width (heads x per head)")
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after the table, cProfile one runner round and one minimal round per "
                         "model and print the top N functions by own time")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")

    load1 = os.getloadavg()
    print(f"{datetime.datetime.now().isoformat(timespec='seconds')}  machine: {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
          f"PyG {__import__('torch_geometric').__version__}, torch threads {torch.get_num_threads()}, "
          f"load average {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}", flush=True)
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}", flush=True)

    start = time.perf_counter()
    graph = load_graph(args)
    print(f"graph: {graph['x'].size(0):,} nodes, {graph['edge_index'].size(1):,} edges, "
          f"x {tuple(graph['x'].shape)}, {graph['num_classes']} classes, split "
          f"{graph['train'].numel():,}/{graph['val'].numel():,}/{graph['test'].numel():,}; "
          f"built in {time.perf_counter() - start:.1f} s (not timed), RSS {_rss_mb():,.0f} MiB",
          flush=True)

    results = [bench_model(m.strip(), graph, args) for m in args.models.split(",") if m.strip()]
    load2 = os.getloadavg()
    print(f"\nload average after: {load2[0]:.2f} {load2[1]:.2f} {load2[2]:.2f}; process peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB\n")
    print(fmt_table(results, args.epochs, args.repeats))
    for r in results:
        print(f"{r['model']}: runner {['%.1f' % v for v in r['runner']]} ms/epoch; "
              f"minimal {['%.1f' % v for v in r['minimal']]} ms/epoch")
    if args.profile:
        for r in results:
            profile_model(r["model"], graph, args, args.profile)


if __name__ == "__main__":
    main()
