"""Largest graph for full-batch training: how far mmgraph's GCN / GraphSAGE and DGL's scale within a memory budget.

Usage (from the repository root; needs the ``dgl`` extra)::

    .venv/bin/python benchmarks/largest_graph.py                         # 24 GiB budget, GCN and SAGE
    .venv/bin/python benchmarks/largest_graph.py --limit-gib 12 --predict
    .venv/bin/python benchmarks/largest_graph.py --limit-gib 1 --start-nodes 5000 --bisect 2 --out /tmp/l.md

Question: on a graph shaped like MAGB's Reddit-M but with more nodes, what is the largest node
count on which one side (ours = ``mmgraph.nn``, or the DGL models as MAGB configures them) can
still run full-batch training epochs without its process exceeding ``--limit-gib`` GiB of
resident memory, and how long does an epoch take at that size?

**Models.** Built exactly as ``benchmarks/dgl_parity.py`` builds them (this script imports its
:class:`dgl_parity.Side`, ``ours_model``, ``_dgl_models``, ``train_step`` and ``ours_graph``
rather than restating them), with dgl_parity's defaults: hidden width 256, 2 layers, BatchNorm +
ReLU + dropout 0.5 between layers, dropout mode ``--mode`` (default ``own``: our
``mmgraph.nn.Dropout`` against ``torch.nn.Dropout`` on DGL's side; ``zero`` and ``same`` as
in dgl_parity), AdamW (lr 0.005, no weight decay), label-smoothed (0.1) cross-entropy on the
training nodes, DGL's SAGE with its own (xavier) initialisation, DGL's GAT as MAGB's layer
(``--models gat`` is accepted; GCN and SAGE are the default). Both sides aggregate over the same
graph, one self loop per node: DGL's gets them in MAGB's preprocessing
(``remove_self_loop().add_self_loop()``, then ``create_formats_()``); our GCN adds them in its
layers; our SAGE is given them (``dgl_parity.with_self_loops``) before ``ours_graph`` turns the
edges into the library's graph argument (today ``mmgraph.nn.sparse.Adjacency``).

**Graph family.** Reddit-M (99,638 nodes, 1,167,188 directed edges, 768-d features, 50 classes)
scaled by its node count N: ``E = 2 * round(N * 583,594 / 99,638)`` directed edges (Reddit-M's
edges per node, rounded to an even count because both directions of every edge are stored),
no self loops, ``x`` float32 ``[N, --dim]``, ``--classes`` classes, a random 60/20/20
train/val/test split. The graph is generated inside each trial's process by a lean generator
written here, *not* by :func:`mmgraph.data.make_synthetic`: at 50,000 nodes the latter (with
dgl_parity's ``NodeClassification.setup`` path, glibc malloc defaults) raised the process's high-water mark by ~560 MiB
and kept ~390 MiB resident for ~156 MiB of output tensors (it also makes per-modality feature
matrices, texts, image references and masks), which at millions of nodes would put the
generator, not training, at the limit. The lean generator, from one ``torch.Generator`` seeded
with ``--seed`` (so both sides get the identical graph at a given N):

- labels ``y`` uniform over the classes (int64);
- features: class means ``0.5 * randn(classes, dim)``; ``x`` allocated once and filled in
  blocks of 16,384 rows in place (``normal_``, then the rows' class means gathered into one
  reused buffer and added), so the only temporary is that buffer (48 MiB at 768-d; gathering
  into a fresh tensor per block left several of them resident under the tuned malloc);
- edges: ``edge_index`` ``[2, E]`` int64 allocated once; its first E/2 columns filled with
  uniform random (source, destination) pairs in place, the (rare) self loops among them moved
  to a random other destination, and the second half is the first half reversed: an undirected
  Erdos-Renyi-like multigraph (Poisson degrees, mean E/N ~ 11.7; duplicate pairs are not
  removed, a handful at these sizes; neither side removes them either), edges in random order;
- split: one ``randperm(N)``, the first 60% train, the next 20% val, the rest test (only the
  training nodes enter an epoch).

Held in the process while training: ``x``, ``y``, ``edge_index`` and the split (~3.3 KB per
node at 768-d, ``x`` ~94% of it), as dgl_parity's memory workers and the library's task hold
them, plus each side's own graph object, model, optimizer state and the epoch's activations.
The graph's class structure is weak (random edges, homophily ~1/classes): this measures memory
and time, not accuracy, and neither depends on the values.

**A trial** (one side, one model, one N) runs in its own process (this script with
``--_worker``; ours never imports DGL): libraries imported and the side's graph builder set up
(the RSS then is the *base*), the graph generated (not timed; RSS then: *graph*), the model,
the side's graph object and the optimizer built (RSS: *ready*), one untimed warm-up epoch and
``--epochs`` (default 2) timed epochs (``dgl_parity.train_step``: zero_grad, forward,
loss on the training nodes, backward, AdamW step; ``time.perf_counter`` around each). It
prints one JSON line: the RSS values, ``VmHWM`` (the peak) and the epoch times. glibc's
malloc is tuned as ``python -m mmgraph.bench`` and dgl_parity tune it (``--malloc``).

**Fitting the budget.** A trial *fits* when it finishes and its peak stays at or below the
limit. The peak counts the whole process (interpreter, torch, DGL, the graph, training), not
only training. While a trial runs, this process polls the child's ``/proc/<pid>/status`` every
``--poll`` s (0.2) and kills it as soon as ``max(VmHWM, VmRSS + VmSwap)`` exceeds the limit;
such a trial, one the OS kills (SIGKILL, e.g. the OOM killer), one whose allocation fails
(``MemoryError`` or torch's "can't allocate memory", reported by the worker) and one whose
final ``VmHWM`` exceeds the limit (a peak between two polls) all count as *over*. Any other
failure is an *error*: it stops that side's search and is shown in the table. A limit above
``MemAvailable`` at the start is allowed but warned about (the OOM killer may then end a trial
first); so is a limit above the machine's RAM (``MemTotal``), which makes the result what the
machine holds rather than the budget (this is the case for the default 24 GiB on a machine whose
"24 GB" is 23.5 GiB). Each trial sets its own ``oom_score_adj`` to 1000, so that the OOM killer, if it acts,
picks the trial before any other process.

**Search**, per model and side: N = ``--start-nodes`` (100,000); while it fits, double it
(``--max-nodes`` caps the growth); if the start does not fit, halve it until one fits (down to
1,000). Then ``--bisect`` (3) bisection steps between the largest N that fitted and the
smallest that did not. Node counts are rounded to multiples of 1,000. With ``--predict``, once
two sizes have fitted, a straight line through their peaks (peak = a + b N) is solved for the
limit, N*, and the next two growth steps try 0.9 N* and then 1.1 N* (each only when it exceeds
the last fit by 5% or more; doubling resumes afterwards), so large budgets need fewer big
trials; the bisection then starts from a narrower interval.

**Reported**, one table per model: each side's largest N that fitted (and the smallest that did
not, which bounds it), its directed edges, the peak RSS there, the RSS once the graph existed
(the graph alone, plus the base) and once the side's graph object and model existed, the median
epoch time there, and every trial (N: fits with its peak, or over and why); then the ratio
ours / DGL of the largest N, with the range the two sides' (fit, first over) brackets allow.
Noise: a trial's peak at a given N varies between runs by a few tens of MiB (malloc placement,
the moment of the watchdog's poll; the watchdog's kills land up to ~0.1 GiB above the limit at
0.2 s polls), so with a small budget, where one bisection step is worth less than that (at 1 GiB
a 5,000-node step is ~0.08 GiB, and the ~0.4 GiB of libraries dominate the peak), the larger side
can change from run to run; at the default 24 GiB that noise is a fraction of a percent of N. The tables, with command, commit, machine, date and load average
(``benchmarks/_provenance.py``), go to stdout and ``--out``
(``benchmarks/results/largest_graph.md``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import dgl_parity  # noqa: E402  (benchmarks/dgl_parity.py: the two sides' models and graphs)

REDDIT_M = dgl_parity.REDDIT_M          # 99,638 nodes, 1,167,188 directed edges, 768-d
MODELS = ("gcn", "sage", "gat")
SIDES = ("ours", "dgl")
ROUND = 1_000                           # node counts are multiples of this
BLOCK_ROWS = 16_384                     # rows of x filled per block by the generator
OOM_EXIT = 3                            # the worker's exit status when an allocation failed


# ----------------------------------------------------------------------------- pure helpers

def edges_for(nodes: int) -> int:
    """Directed edges of the N-node member of the family: Reddit-M's edges per node, an even
    count (both directions of each undirected edge)."""
    return 2 * round(nodes * (REDDIT_M["edges"] // 2) / REDDIT_M["nodes"])


def round_nodes(n: float) -> int:
    """``n`` rounded to a multiple of :data:`ROUND`, at least ``ROUND``."""
    return max(ROUND, int(round(n / ROUND)) * ROUND)


def predict_nodes(points: list[tuple[int, float]], limit_mb: float) -> int | None:
    """N where the line through the first two (N, peak MiB) points reaches ``limit_mb``; None
    when the peak does not grow with N."""
    (n0, p0), (n1, p1) = points[:2]
    if n1 == n0 or p1 <= p0:
        return None
    slope = (p1 - p0) / (n1 - n0)
    return int(n0 + (limit_mb - p0) / slope)


class Search:
    """Doubling (or halving), optional prediction, then bisection, for one (model, side).

    ``next()`` gives the next N to try (None: done); ``record(n, fits)`` reports its outcome.
    """

    def __init__(self, start: int, bisect: int, max_nodes: int, predict: bool, limit_mb: float):
        self.start, self.bisect_left, self.max_nodes = start, bisect, max_nodes
        self.predict, self.limit_mb = predict, limit_mb
        self.fit: int | None = None        # largest N that fitted
        self.over: int | None = None       # smallest N that did not
        self.fit_points: list[tuple[int, float]] = []
        self.prediction: int | None = None
        self.predicted_steps: list[int] = []
        self.capped = False
        self._next: int | None = start

    def record(self, n: int, fits: bool, peak_mb: float | None = None) -> None:
        if fits:
            self.fit = n if self.fit is None else max(self.fit, n)
            if peak_mb is not None:
                self.fit_points.append((n, peak_mb))
        else:
            self.over = n if self.over is None else min(self.over, n)
        self._next = self._choose(n, fits)

    def next(self) -> int | None:
        return self._next

    def _choose(self, n: int, fits: bool) -> int | None:
        if self.fit is None:                                 # nothing fitted yet: halve
            smaller = round_nodes(n / 2)
            return smaller if smaller < n else None
        if self.over is None:                                # growing
            grown = self._predicted(n) or round_nodes(2 * n)
            if grown > self.max_nodes:
                grown = self.max_nodes
                if grown <= n:
                    self.capped = True
                    return None
            return grown
        if self.bisect_left <= 0:                            # bisecting
            return None
        mid = round_nodes((self.fit + self.over) / 2)
        if not self.fit < mid < self.over:
            return None
        self.bisect_left -= 1
        return mid

    def _predicted(self, n: int) -> int | None:
        if not self.predict or len(self.fit_points) < 2:
            return None
        if self.prediction is None:
            self.prediction = predict_nodes(sorted(self.fit_points), self.limit_mb) or 0
        while len(self.predicted_steps) < 2:
            factor = (0.9, 1.1)[len(self.predicted_steps)]
            target = round_nodes(factor * self.prediction)
            self.predicted_steps.append(target)
            if self.prediction and target >= 1.05 * n:
                return target
        return None


# ----------------------------------------------------------------------------- the worker

def _status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS / VmHWM / VmSwap / VmData of a process, MiB ({} when it is gone)."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM", "VmSwap", "VmData"):
                    out[key] = int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def generate(nodes: int, dim: int, classes: int, seed: int) -> dict[str, Any]:
    """The lean generator of the module docstring: x, y, edge_index and a 60/20/20 split."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (nodes,), generator=gen)
    means = 0.5 * torch.randn(classes, dim, generator=gen)
    x = torch.empty(nodes, dim)
    buf = torch.empty(min(BLOCK_ROWS, nodes), dim)        # the one temporary, reused by every block
    for i in range(0, nodes, BLOCK_ROWS):
        block = x[i:i + BLOCK_ROWS]
        block.normal_(generator=gen)
        rows = buf[:block.size(0)]
        torch.index_select(means, 0, y[i:i + BLOCK_ROWS], out=rows)
        block += rows
    del buf
    num_edges = edges_for(nodes)
    half = num_edges // 2
    edge_index = torch.empty(2, num_edges, dtype=torch.long)
    src, dst = edge_index[0, :half], edge_index[1, :half]
    src.random_(0, nodes, generator=gen)
    dst.random_(0, nodes, generator=gen)
    loops = (src == dst).nonzero().flatten()
    if loops.numel():
        shift = torch.randint(1, max(nodes, 2), (loops.numel(),), generator=gen)
        dst[loops] = (dst[loops] + shift) % nodes
    edge_index[0, half:] = dst
    edge_index[1, half:] = src
    perm = torch.randperm(nodes, generator=gen)
    n_train, n_val = int(0.6 * nodes), int(0.2 * nodes)
    return {"x": x, "y": y, "edge_index": edge_index, "num_nodes": nodes, "num_classes": classes,
            "train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    msg = str(exc).lower()
    return "can't allocate memory" in msg or "defaultcpuallocator" in msg or "out of memory" in msg


def worker(job_json: str) -> int:
    job = json.loads(job_json)
    args = argparse.Namespace(**job["args"])
    try:   # if memory runs out before the watchdog acts, the OOM killer should pick this process
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
    try:
        import torch

        dgl_parity.set_threads(args.threads, with_dgl=job["side"] == "dgl")  # ours: no DGL import
        warnings.filterwarnings("ignore")
        side = dgl_parity.Side(job["side"], job["model"], args, args.dim, args.classes, args.mode)
        import mmgraph.nn  # noqa: F401  (library imports belong to the base)
        base = _status()["VmRSS"]
        t0 = time.perf_counter()
        g = generate(job["nodes"], args.dim, args.classes, args.seed)
        gen_s = time.perf_counter() - t0
        after_gen = _status()
        model = side.build_model(args.seed)
        build_s = side.build_graph(g["edge_index"], g["num_nodes"], model)
        opt = dgl_parity.new_optimizer(model, args)
        ready = _status()["VmRSS"]
        dgl_parity.train_step(side, model, opt, g)                 # warm-up, untimed
        times = []
        for _ in range(args.epochs):
            start = time.perf_counter()
            dgl_parity.train_step(side, model, opt, g)
            times.append(time.perf_counter() - start)
        end = _status()
        print(json.dumps({
            "base_mb": base, "graph_mb": after_gen["VmRSS"], "graph_peak_mb": after_gen["VmHWM"],
            "ready_mb": ready, "peak_mb": end["VmHWM"], "epoch_s": times, "gen_s": gen_s,
            "build_s": build_s, "edges": int(g["edge_index"].size(1)),
            "aggregated_edges": side.aggregated_edges, "threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad)}), flush=True)
        return 0
    except BaseException as exc:  # noqa: BLE001  (report allocation failures as such)
        if _out_of_memory(exc):
            print(json.dumps({"oom": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                              "peak_mb": _status().get("VmHWM")}), flush=True)
            return OOM_EXIT
        raise


# ----------------------------------------------------------------------------- the parent

def run_trial(side: str, model: str, nodes: int, args: argparse.Namespace, limit_mb: float) -> dict[str, Any]:
    """One trial in a subprocess under the RSS watchdog; returns its outcome."""
    job = {"side": side, "model": model, "nodes": nodes,
           "args": {k: v for k, v in vars(args).items() if not k.startswith("_")}}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(job)]
    start = time.perf_counter()
    watched = 0.0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=ROOT)
        killed = None
        while proc.poll() is None:
            st = _status(proc.pid)
            seen = max(st.get("VmHWM", 0.0), st.get("VmRSS", 0.0) + st.get("VmSwap", 0.0))
            watched = max(watched, seen)
            if seen > limit_mb:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed = seen
                break
            time.sleep(args.poll)
        rc = proc.returncode
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    res: dict[str, Any] = {"nodes": nodes, "edges": edges_for(nodes), "wall_s": time.perf_counter() - start,
                           "watched_mb": watched}
    last = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    try:
        payload = json.loads(last) if last.startswith("{") else {}
    except json.JSONDecodeError:
        payload = {}
    if killed is not None:
        res.update(fits=False, why=f"watchdog kill at {killed / 1024:.2f} GiB")
    elif rc == OOM_EXIT:
        res.update(fits=False, why=f"allocation failed ({payload.get('oom', '?')})")
    elif rc == -signal.SIGKILL:
        res.update(fits=False, why="killed by the OS (SIGKILL)")
    elif rc != 0 or "peak_mb" not in payload:
        lines = (stderr or stdout).strip().splitlines()
        res.update(fits=None, why=f"error (rc {rc}): {lines[-1] if lines else 'no output'}")
    else:
        res.update(payload)
        if payload["peak_mb"] > limit_mb:
            res.update(fits=False, why=f"peak {payload['peak_mb'] / 1024:.2f} GiB above the limit between polls")
        else:
            res["fits"] = True
    return res


def describe_trial(r: dict[str, Any]) -> str:
    if r["fits"]:
        return (f"fits, peak {r['peak_mb'] / 1024:.2f} GiB (graph {r['graph_mb'] / 1024:.2f}, ready "
                f"{r['ready_mb'] / 1024:.2f}), epochs {', '.join(f'{t:.2f}' for t in r['epoch_s'])} s")
    return ("over: " if r["fits"] is False else "") + r["why"]


def search(model: str, side: str, args: argparse.Namespace, limit_mb: float) -> dict[str, Any]:
    s = Search(args.start_nodes, args.bisect, args.max_nodes, args.predict, limit_mb)
    trials: list[dict[str, Any]] = []
    error = None
    while (n := s.next()) is not None:
        r = run_trial(side, model, n, args, limit_mb)
        trials.append(r)
        print(f"  [{model} {side:<4s}] N={n:>11,} ({r['edges']:,} edges): {describe_trial(r)} "
              f"[{r['wall_s']:.0f} s]", flush=True)
        if r["fits"] is None:
            error = r["why"]
            break
        s.record(n, r["fits"], r.get("peak_mb"))
    best = max((r for r in trials if r["fits"]), key=lambda r: r["nodes"], default=None)
    return {"best": best, "over": s.over, "trials": trials, "error": error, "capped": s.capped,
            "prediction": s.prediction}


def _gib(mb: float) -> str:
    return f"{mb / 1024:.2f}"


def model_table(model: str, res: dict[str, dict[str, Any]]) -> list[str]:
    head = ["side", "largest N that fits (first N over)", "its edges", "peak RSS (GiB)",
            "RSS with the graph generated (GiB)", "RSS with model + side's graph (GiB)",
            "epoch time there (s, median)", "trials (N: fits, peak GiB / over)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for side, r in res.items():
        b = r["best"]
        trials = "; ".join(f"{t['nodes']:,}: " + (f"fits, {_gib(t['peak_mb'])}" if t["fits"]
                                                    else "over" if t["fits"] is False else "error")
                           for t in sorted(r["trials"], key=lambda t: t["nodes"]))
        bound = (f" ({r['over']:,})" if r["over"] is not None
                 else " (capped by --max-nodes)" if r["capped"] else "")
        if b is None:
            cells = [("none" if not r["error"] else "error") + bound, "", "", "", "", ""]
        else:
            cells = [f"{b['nodes']:,}{bound}", f"{b['edges']:,}", _gib(b["peak_mb"]), _gib(b["graph_mb"]),
                     _gib(b["ready_mb"]), f"{statistics.median(b['epoch_s']):.2f}"]
        lines.append("| " + " | ".join([side] + cells + [trials]) + " |")
    if all(side in res and res[side]["best"] for side in SIDES):
        o, d = res["ours"], res["dgl"]
        no, nd = o["best"]["nodes"], d["best"]["nodes"]
        line = f"Largest N, ours / DGL: **{no / nd:.2f}** ({no:,} / {nd:,} nodes)"
        if o["over"] is not None and d["over"] is not None:   # each side's largest N lies in [fit, over)
            line += (f"; from the trials' bounds on each side's largest N, between "
                     f"{no / (d['over'] - ROUND):.2f} and {(o['over'] - ROUND) / nd:.2f} (if a trial's "
                     f"outcome at a given N repeats; see the docstring on noise)")
        lines += ["", line + "."]
    for side, r in res.items():
        if r["error"]:
            lines += ["", f"{side}: search stopped at an {r['error']}"]
    return lines


def _meminfo_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _positive(kind: type, minimum: float, name: str):
    def parse(text: str):
        try:
            v = kind(text.replace("_", "").replace(",", "")) if kind is int else kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a {'whole ' if kind is int else ''}number; got {text!r}")
        if not v >= minimum:
            raise argparse.ArgumentTypeError(f"{name} must be at least {minimum}; got {text}")
        return v
    return parse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-gib", type=_positive(float, 0.1, "--limit-gib"), default=24.0,
                    help="memory budget per trial process (its RSS), GiB (default 24)")
    ap.add_argument("--models", default="gcn,sage", help="comma-separated: gcn, sage, gat (default gcn,sage)")
    ap.add_argument("--sides", default="ours,dgl", help="comma-separated: ours, dgl")
    ap.add_argument("--start-nodes", type=_positive(int, ROUND, "--start-nodes"), default=100_000)
    ap.add_argument("--max-nodes", type=_positive(int, ROUND, "--max-nodes"), default=100_000_000,
                    help="no trial above this node count")
    ap.add_argument("--bisect", type=_positive(int, 0, "--bisect"), default=3,
                    help="bisection steps after the first size that does not fit")
    ap.add_argument("--predict", action="store_true",
                    help="after two fits, try 0.9x and 1.1x the node count a straight line predicts")
    ap.add_argument("--epochs", type=_positive(int, 1, "--epochs"), default=2,
                    help="timed epochs per trial (after one warm-up)")
    ap.add_argument("--poll", type=_positive(float, 0.01, "--poll"), default=0.2, help="watchdog period, s")
    ap.add_argument("--mode", choices=tuple(dgl_parity.MODES), default="own",
                    help="dropout mode: " + "; ".join(f"{k}: {v}" for k, v in dgl_parity.MODES.items()))
    ap.add_argument("--dim", type=_positive(int, 1, "--dim"), default=REDDIT_M["dim"])
    ap.add_argument("--classes", type=_positive(int, 2, "--classes"), default=50)
    ap.add_argument("--hidden", type=_positive(int, 1, "--hidden"), default=256)
    ap.add_argument("--layers", type=_positive(int, 1, "--layers"), default=2)
    ap.add_argument("--heads", type=_positive(int, 1, "--heads"), default=3, help="GAT only")
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--threads", type=_positive(int, 1, "--threads"), default=None,
                    help="torch and DGL threads in each trial (default: torch's)")
    ap.add_argument("--seed", type=int, default=0, help="graph and model seed")
    ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                    help="tuned: glibc keeps freed memory, as `python -m mmgraph.bench` and dgl_parity do")
    ap.add_argument("--out", default=str(HERE / "results" / "largest_graph.md"))
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.dgl_gat, args.dgl_sage_init = "magb", "dgl"        # dgl_parity's defaults
    if args.malloc == "tuned":
        from mmgraph._malloc import tune_malloc
        args.malloc = "tuned" if tune_malloc() else "default (tuning unavailable)"
    if args._worker:
        return worker(args._worker)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not models or any(m not in MODELS for m in models):
        ap.error(f"--models: choose from {', '.join(MODELS)}; got {args.models!r}")
    if not sides or any(s not in SIDES for s in sides):
        ap.error(f"--sides: choose from {', '.join(SIDES)}; got {args.sides!r}")
    if args.max_nodes < args.start_nodes:
        ap.error(f"--max-nodes ({args.max_nodes:,}) is below --start-nodes ({args.start_nodes:,})")
    if not 0.0 <= args.dropout < 1.0:
        ap.error(f"--dropout must be in [0, 1); got {args.dropout}")
    if "dgl" in sides and importlib.util.find_spec("dgl") is None:
        ap.error("DGL is not installed (the `dgl` extra); use --sides ours")
    limit_mb = args.limit_gib * 1024
    total, available = _meminfo_mb("MemTotal"), _meminfo_mb("MemAvailable")
    warn = ""
    if total is not None and limit_mb > total:
        warn = (f"warning: the limit exceeds this machine's RAM ({total / 1024:.1f} GiB MemTotal): trials near "
                "it end by the OOM killer, so the result is what the machine holds, not the budget")
    elif available is not None and limit_mb > available:
        warn = (f"warning: the limit exceeds the memory available at the start ({available / 1024:.1f} GiB); "
                "the OOM killer may end a trial before the watchdog does")
    if warn:
        print(warn, file=sys.stderr, flush=True)
    args.start_nodes = round_nodes(args.start_nodes)
    args.max_nodes = round_nodes(args.max_nodes)

    import _provenance
    import torch

    header = _provenance.header("Largest graph for full-batch training within a memory budget, mmgraph vs DGL")
    header.insert(-1, f"- budget: {args.limit_gib:g} GiB RSS per trial process (whole process); "
                      f"MemTotal {total / 1024:.1f} GiB, MemAvailable at start {available / 1024:.1f} GiB"
                  if total and available else f"- budget: {args.limit_gib:g} GiB RSS per trial process")
    header.insert(-1, f"- libraries: {dgl_parity.versions() if 'dgl' in sides else 'torch ' + torch.__version__}; "
                      f"trial threads: {args.threads or torch.get_num_threads()}; glibc malloc: {args.malloc}")
    print("\n".join(header), flush=True)
    if warn:
        header.insert(-1, "- " + warn)

    start = time.perf_counter()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for m in models:
        results[m] = {}
        for side in sides:
            print(f"\n[{m} {side}] search from {args.start_nodes:,} nodes, {args.bisect} bisection steps"
                  f"{', predicted jump' if args.predict else ''}", flush=True)
            results[m][side] = search(m, side, args, limit_mb)
    elapsed = time.perf_counter() - start

    doc = header[:-1] + [
        f"- graph family: Reddit-M scaled by its node count N: {edges_for(REDDIT_M['nodes']):,} directed "
        f"edges per {REDDIT_M['nodes']:,} nodes (both directions, no self loops; each side aggregates over it "
        f"plus one self loop per node), x [N, {args.dim}] float32, {args.classes} classes, 60/20/20 split; "
        f"the lean generator of the docstring, seed {args.seed}, not timed", "",
        "Models, generator, watchdog and search: see the docstring of "
        "[`benchmarks/largest_graph.py`](../largest_graph.py).", ""]
    for m in models:
        doc += [f"## {m.upper()}", "", *model_table(m, results[m]), ""]
    doc += ["Columns: the largest node count whose trial stayed within the budget (in parentheses the "
            "smallest that did not, which bounds it), its directed edges (before self loops), the trial's "
            "peak RSS (VmHWM, whole process), its RSS once the graph tensors existed (libraries + graph "
            "alone) and once the side's model, graph object and optimizer existed, the median of its "
            "timed epochs; every trial with its peak (fits) or 'over' (watchdog kill, OS kill, failed "
            "allocation or a final peak above the limit).", ""]
    raw = []
    for m in models:
        for side in sides:
            r = results[m][side]
            pred = f" (predicted N at the limit {r['prediction']:,})" if r["prediction"] else ""
            raw.append(f"{m} {side}{pred}:")
            for t in r["trials"]:
                extra = ""
                if t["fits"]:
                    extra = (f"; base {_gib(t['base_mb'])}, graph-generation peak {_gib(t['graph_peak_mb'])} GiB, "
                             f"{t['aggregated_edges']:,} edges aggregated, generated in {t['gen_s']:.1f} s, "
                             f"side's graph built in {t['build_s']:.2f} s")
                raw.append(f"  N={t['nodes']:,}: {describe_trial(t)}{extra} [{t['wall_s']:.0f} s]")
    footer = (f"load average at end: {_provenance.load()}; total {elapsed / 60:.1f} min; 1 warm-up + "
              f"{args.epochs} timed epochs per trial; hidden {args.hidden}, {args.layers} layers, dropout "
              f"{args.dropout} (mode {args.mode}), AdamW lr {args.lr}, label smoothing {args.label_smoothing}; "
              f"start {args.start_nodes:,}, bisect {args.bisect}, predict {args.predict}, watchdog every "
              f"{args.poll} s")
    doc += ["```", *raw, "", footer, "```", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _provenance.emit(doc, out)
    shown = out.resolve()
    print(f"\nwritten: {shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
