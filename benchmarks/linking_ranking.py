"""Full-KB ranking of entity linking: mmgraph's evaluation path against the plain loop.

Both sides rank the same mentions against every entity of a knowledge base, in the same chunks of
mentions, on the same embeddings of the same model (a ``DualEncoder``, seeded initial weights,
eval mode, no gradients):

* ``ours``: ``EntityLinking.ranks(model, index, entities)`` of a task set up on the KB's graph
  (``entities`` = ``model.encode_kb(task.kb)``, computed once and not timed, as ``evaluate`` does):
  per chunk of ``eval_chunk`` mentions, ``encode_mentions`` of the chunk's features,
  ``model.score`` against all entities, then the gold entity's rank with ties against the gold.
* ``reference``: the loop people write, on ``encode_mentions`` outputs of the same chunks
  (computed beforehand, not timed) and the same ``encode_kb`` output: per chunk ``scores =
  mentions_chunk @ kb.T``, ``torch.topk(scores, k=20)`` (Hits@K from the top 20) and the gold rank
  ``(scores > gold_score).sum(1) + 1``.

Check (asserted): Hits@1/5/10/20 of the two agree exactly (ours from its ranks, the reference from
its top 20). The features are random floats, so the two tie rules (ours: a tie counts against the
gold; the reference: ties ignored) can only part where float32 rounding makes two scores equal,
which over 100k entities happens for a few mentions (ours' scores are the reference's times the
model's scale, rounded once more); those ranks differ by the ties and are counted.

Settings: ``synthetic``: ``make_synthetic_kb(num_entities=--entities, mentions_per_entity=1,
seed=0)`` (the graph is built, not only the embeddings: 100k entities take seconds) and ``emoji``:
the emoji KB (``dataset=emoji`` composed and read with ``mmgraph.bench.runner.load_dataset``),
skipped with the reason when a feature it needs is not in the cache (the script never encodes:
the feature step is made to stop instead). Per setting, ``--mentions`` mentions drawn with seed 0
from those with an answer in the KB (all when fewer).

Throughput: per chunk size, one untimed pass per side, then ``--repeats`` rounds of one pass per
side, the order alternating (ours first in even rounds); mentions per second per pass, medians,
and the per-round ratio ours / reference of mentions per second (above 1: ours faster).

Peak memory: per side and chunk size ``--memory-runs`` child processes (the sides alternating;
the same setup, the same threads), each running an untimed pass of only that side over the first
two chunks, then frees what it can (``gc.collect``, glibc ``malloc_trim(0)``),
resets the kernel's peak-RSS mark (``5`` into ``/proc/self/clear_refs``), reads ``VmRSS`` as the
baseline, runs one pass and reports ``VmHWM`` (``/proc/self/status``) minus that baseline: the
memory the pass itself adds at its peak; median and range over the children (glibc places the
allocations below its mmap threshold, such as a 256-mention chunk's bool mask, in its heap, where
fragmentation varies from run to run). ``VmHWM`` is the counter behind
``getrusage(RUSAGE_SELF).ru_maxrss``, read directly because ``ru_maxrss`` also keeps the peak of
any thread that exited (one exiting during the setup pins it to the setup's peak).

    .venv/bin/python benchmarks/linking_ranking.py [--chunks 256 1024] [--mentions 5000] [--repeats 5] [--profile] [--out benchmarks/results/linking_ranking.md]
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

HITS = (1, 5, 10, 20)
TOP = max(HITS)
CHILD_TAG = "CHILD_RESULT "


class Skip(Exception):
    """A setting that cannot run here (the message says why)."""


@dataclass
class Setting:
    name: str
    desc: str
    task: object  # an EntityLinking task set up on the setting's graph
    model: torch.nn.Module
    index: torch.Tensor  # the mentions ranked
    entities: torch.Tensor  # model.encode_kb(task.kb)
    build_s: float


def synthetic_graph(args):
    from mmgraph.data.graph import set_model_input
    from mmgraph.data.synthetic_kb import make_synthetic_kb

    data = make_synthetic_kb(num_entities=args.entities, mentions_per_entity=1, seed=0)
    set_model_input(data)
    opts = data.meta["build_options"]
    desc = (f"synthetic KB: `make_synthetic_kb(num_entities={args.entities}, mentions_per_entity=1, seed=0)` "
            f"(other options default: {opts['num_groups']} groups, text {opts['text_dim']}-d and image "
            f"{opts['image_dim']}-d random float features, missing_rate {opts['missing_rate']}), graph built")
    return data, desc


def emoji_graph(args):
    """The emoji KB with its cached features, or :class:`Skip` when a feature entry is not complete."""
    import mmgraph.features.extract as extract
    from mmgraph.bench.runner import load_dataset
    from mmgraph.cli import compose
    from mmgraph.errors import MMGraphError
    from mmgraph.paths import config_dir

    def refuse(enc, items, cache, **_):
        where = f"{cache.final.parent.name}/{cache.final.name}" if cache is not None else "(no cache)"
        raise Skip(f"the {items.modality} features {where} are not in the cache (complete entries only; "
                   f"partial entry present: {cache is not None and cache.partial.is_dir()}); this script does "
                   f"not encode")

    cfg = compose(config_dir(), ["dataset=emoji", "dataset.loader.download=false", "device=cpu"])
    saved, extract.encode_items = extract.encode_items, refuse
    try:
        data = load_dataset(cfg)
    except MMGraphError as exc:
        raise Skip(f"the emoji KB could not be read: {exc}") from exc
    finally:
        extract.encode_items = saved
    desc = (f"emoji KB (`dataset=emoji`, read with `load_dataset`, cached features: "
            f"{', '.join(data.meta['input']['modalities'])} by {', '.join(sorted(set(cfg.dataset.encoders.values())))})")
    return data, desc


GRAPHS = {"synthetic": synthetic_graph, "emoji": emoji_graph}


def build_setting(name: str, args) -> Setting:
    from mmgraph.linking import DualEncoder
    from mmgraph.tasks import EntityLinking

    t0 = time.perf_counter()
    data, desc = GRAPHS[name](args)
    task = EntityLinking()
    task.setup(data, torch.device("cpu"))
    torch.manual_seed(0)
    model = DualEncoder(**task.model_kwargs(), channels=args.channels).eval()
    answered = torch.cat([task.index[s] for s in ("train", "val", "test")]).sort().values
    pick = torch.randperm(answered.numel(), generator=torch.Generator().manual_seed(0))[:args.mentions]
    with torch.no_grad():
        entities = model.encode_kb(task.kb)
    return Setting(name, desc, task, model, answered[pick].sort().values, entities, time.perf_counter() - t0)


def mention_embeddings(s: Setting, chunk: int) -> torch.Tensor:
    """``encode_mentions`` outputs for the chunks ours scores (bit for bit the same inputs)."""
    with torch.no_grad():
        return torch.cat([s.task._mentions(s.model, s.index[i:i + chunk]) for i in range(0, s.index.numel(), chunk)])


def run_ours(s: Setting, chunk: int, _men) -> torch.Tensor:
    s.task.eval_chunk = chunk
    return s.task.ranks(s.model, s.index, s.entities)


@torch.no_grad()
def run_reference(s: Setting, chunk: int, men: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kb, gold = s.entities, s.task.y[s.index]
    ranks, tops = [], []
    for start in range(0, men.size(0), chunk):
        scores = men[start:start + chunk] @ kb.T
        tops.append(torch.topk(scores, k=TOP, dim=1).indices)
        g = gold[start:start + chunk]
        gold_score = scores[torch.arange(scores.size(0)), g]
        ranks.append((scores > gold_score[:, None]).sum(1) + 1)
    return torch.cat(ranks), torch.cat(tops)


SIDES = {"ours": run_ours, "reference": run_reference}


def check(s: Setting, ours_rank: torch.Tensor, ref: tuple[torch.Tensor, torch.Tensor]) -> dict:
    ref_rank, top = ref
    gold = s.task.y[s.index]
    out = {"hits_ours": {k: int((ours_rank <= k).sum()) for k in HITS},
           "hits_reference": {k: int((top[:, :k] == gold[:, None]).any(1).sum()) for k in HITS},
           "ranks_differ": int((ours_rank != ref_rank.double()).sum()),
           "mrr_ours": float((1 / ours_rank).mean()), "mrr_reference": float((1 / ref_rank.double()).mean())}
    out["equal"] = out["hits_ours"] == out["hits_reference"]
    return out


def timed(side: str, s: Setting, chunk: int, men) -> float:
    t0 = time.perf_counter()
    SIDES[side](s, chunk, men)
    return time.perf_counter() - t0


# ------------------------------------------------------------------ peak memory (child processes)
def status_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (the peak since start or the last reset) of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def child(args) -> None:
    s = build_setting(args.setting, args)
    men = mention_embeddings(s, args.chunk)
    two = s.index.numel() if args.chunk >= s.index.numel() else 2 * args.chunk
    warm = Setting(**{**s.__dict__, "index": s.index[:two]})
    SIDES[args.child](warm, args.chunk, men[:two])  # untimed: one-time allocations out of the way
    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    base = status_kib("VmRSS")
    SIDES[args.child](s, args.chunk, men)
    # VmHWM, not ru_maxrss: getrusage also keeps the peak any exited thread saw (one from the
    # setup pins it to the setup's peak); VmHWM is the address space's own mark, which the reset clears
    peak = status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(CHILD_TAG + json.dumps({"baseline_kib": base, "peak_kib": peak, "delta_kib": peak - base,
                                  "peak_reset": reset}), flush=True)


def measure_memory(name: str, side: str, chunk: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--setting", name, "--chunk", str(chunk),
           "--entities", str(args.entities), "--mentions", str(args.mentions), "--channels", str(args.channels),
           "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith(CHILD_TAG):
            return json.loads(line[len(CHILD_TAG):])
    raise RuntimeError(f"memory child {side}/{name}/{chunk} failed ({proc.returncode}): {proc.stderr[-2000:]}")


# ------------------------------------------------------------------ the run
def measure_setting(s: Setting, args) -> dict:
    out = {"name": s.name, "desc": s.desc, "entities": int(s.entities.size(0)), "mentions": int(s.index.numel()),
           "build_s": s.build_s, "cells": []}
    for chunk in args.chunks:
        men = mention_embeddings(s, chunk)
        ours_rank, ref = run_ours(s, chunk, men), run_reference(s, chunk, men)  # also the warm-up pass
        verdict = check(s, ours_rank, ref)
        print(json.dumps({"setting": s.name, "chunk": chunk, "check": verdict}), flush=True)
        assert verdict["equal"], f"Hits@K differ: {verdict}"
        rounds = []
        for r in range(args.repeats):
            order = ("ours", "reference") if r % 2 == 0 else ("reference", "ours")
            row = {"order": order, **{f"{side}_s": timed(side, s, chunk, men) for side in order}}
            row["ratio"] = row["reference_s"] / row["ours_s"]  # mentions/s ours over reference
            rounds.append(row)
            print(json.dumps({"setting": s.name, "chunk": chunk, **row}), flush=True)
        mps = {side: [s.index.numel() / p[f"{side}_s"] for p in rounds] for side in SIDES}
        runs = [measure_memory(s.name, side, chunk, args) for _ in range(args.memory_runs) for side in SIDES]
        memory = {side: runs[i::len(SIDES)] for i, side in enumerate(SIDES)}
        print(json.dumps({"setting": s.name, "chunk": chunk, "memory": memory}), flush=True)
        out["cells"].append({"chunk": chunk, "check": verdict, "rounds": rounds, "mentions_per_s": mps,
                             "ratio": [p["ratio"] for p in rounds], "memory": memory,
                             "scores_mib": chunk * s.entities.size(0) * 4 / 2**20})
    return out


def profile_table(s: Setting, chunk: int) -> dict[str, str]:
    from torch.profiler import ProfilerActivity, profile

    men = mention_embeddings(s, chunk)
    tables = {}
    for side in SIDES:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            SIDES[side](s, chunk, men)
        tables[side] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
        print(side, tables[side], flush=True)
    return tables


def spread(v: list[float], fmt: str) -> str:
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"


def report(args, header: list[str], results: list[dict], skipped: dict[str, str], loads: tuple[str, str],
           profile: dict | None) -> list[str]:
    mib = lambda kib: f"{kib / 1024:,.0f}"
    lines = header + [
        f"{torch.get_num_threads()} torch threads on both sides (and in the memory children); torch "
        f"{torch.__version__}; glibc malloc with its default settings (mmgraph as a library).", "",
        f"Model: `DualEncoder(channels={args.channels})` as the task's `model_kwargs()` give it, initial weights "
        f"(seed 0), eval mode; the KB's representations `encode_kb(task.kb)` computed once, outside the timing, "
        f"and given to both sides.", "",
        "- **ours**: `EntityLinking.ranks(model, index, entities)` with `task.eval_chunk` = the chunk size (per "
        "chunk: `encode_mentions` of the chunk's features, `model.score` against all entities, the gold's rank "
        "counting every entity that scores at least as high; `gold_ranks(..., overwrite=True)` writes that "
        "comparison over the chunk's scores and sums it there, and the chunk's scores are freed before the "
        "next chunk's are computed);",
        "- **reference**: per chunk of the same `encode_mentions` outputs (computed beforehand, not timed): "
        f"`scores = mentions_chunk @ kb.T`, `torch.topk(scores, k={TOP})`, rank `(scores > gold_score).sum(1) + 1`.",
        "",
        f"Mentions: {args.mentions} drawn with seed 0 from those with an answer in the KB (all when fewer). "
        f"Throughput: one untimed pass per side, then {args.repeats} rounds of one pass per side, the order "
        "alternating (ours first in even rounds); the ratio is ours / reference in mentions per second per "
        "round (above 1: ours faster).", "",
        f"Peak memory: per side and chunk size {args.memory_runs} child processes (the sides alternating), each of "
        "which builds the same setting, runs an untimed pass of that side only over the first two chunks, calls "
        "`gc.collect()` and glibc `malloc_trim(0)`, resets the kernel's peak-RSS mark (`5` into "
        "`/proc/self/clear_refs`), reads `VmRSS` as the baseline, runs one pass and reports `VmHWM` "
        "(`/proc/self/status`) minus the baseline; median (min-max) over the children. glibc places "
        "allocations below its mmap threshold (up to 32 MiB; a 256 x 100k bool mask is 24 MiB) in its heap, "
        "where fragmentation varies from run to run. `VmHWM` is the counter behind "
        "`getrusage(RUSAGE_SELF).ru_maxrss`, read directly: `ru_maxrss` also keeps the peak of any thread "
        "that exited, which pinned it to the setup's peak in a first version of this script (both sides "
        "then showed the same number).", ""]
    for res in results:
        lines += [f"## {res['name']}: {res['entities']:,} entities, {res['mentions']:,} mentions", "",
                  f"{res['desc']}; setup (graph, task, model, `encode_kb`) {res['build_s']:.1f} s.", "",
                  "| chunk | Hits@" + "/".join(map(str, HITS)) + " ours | reference | equal | ranks that differ | "
                  "MRR ours / reference |", "|---|---|---|---|---|---|"]
        for c in res["cells"]:
            v = c["check"]
            lines.append(f"| {c['chunk']} | {'/'.join(str(v['hits_ours'][k]) for k in HITS)} | "
                         f"{'/'.join(str(v['hits_reference'][k]) for k in HITS)} | {'yes' if v['equal'] else 'NO'} | "
                         f"{v['ranks_differ']} | {v['mrr_ours']:.4f} / {v['mrr_reference']:.4f} |")
        lines += ["", "Ranks that differ: mentions with an entity scoring exactly as high as the gold one "
                  "after float32 rounding, counted against the gold by ours and not by the reference.", "",
                  "| chunk | mentions/s ours (median; min-max) | mentions/s reference | **ours / reference** "
                  "per round (median; min-max) | one chunk's scores (MiB) | peak over baseline ours (MiB) | "
                  "reference (MiB) | memory ours / reference (medians) |", "|---|---|---|---|---|---|---|---|"]
        for c in res["cells"]:
            m = {side: [r["delta_kib"] for r in runs] for side, runs in c["memory"].items()}
            lines.append(f"| {c['chunk']} | {spread(c['mentions_per_s']['ours'], '{:,.0f}')} | "
                         f"{spread(c['mentions_per_s']['reference'], '{:,.0f}')} | **{spread(c['ratio'], '{:.2f}')}** | "
                         f"{c['scores_mib']:,.0f} | {spread([v / 1024 for v in m['ours']], '{:,.0f}')} | "
                         f"{spread([v / 1024 for v in m['reference']], '{:,.0f}')} | "
                         f"{statistics.median(m['ours']) / max(statistics.median(m['reference']), 1):.2f} |")
        lines += ["", "Seconds per pass by round (ours, reference; the side that ran first is marked *):", ""]
        for c in res["cells"]:
            lines.append(f"- chunk {c['chunk']}: " + "; ".join(
                ", ".join(f"{p[f'{side}_s']:.3f}{'*' if p['order'][0] == side else ''}" for side in SIDES)
                for p in c["rounds"]))
        resets = {r["peak_reset"] for c in res["cells"] for runs in c["memory"].values() for r in runs}
        lines += ["", "Memory children (baseline RSS / peak, MiB): " + "; ".join(
            f"chunk {c['chunk']} {side} " + ", ".join(f"{mib(r['baseline_kib'])} / {mib(r['peak_kib'])}" for r in runs)
            for c in res["cells"] for side, runs in c["memory"].items())
            + ("" if resets == {True} else " (the peak mark could NOT be reset in some child: its number "
               "is `ru_maxrss`, which includes the setup's peak)") + ".", ""]
    for name, why in skipped.items():
        lines += [f"## {name}: skipped", "", why, ""]
    lines += [f"Load average at end: {loads[1]}."]
    busy = max([float(v.split()[0]) for v in loads if v != "unknown"], default=0.0)
    if busy > (os.cpu_count() or 1):
        lines.append(f"The 1-minute load average exceeded the {os.cpu_count()} cores: other jobs shared the "
                     "machine, so the absolute rates are rough; the per-round ratios (both sides under the same "
                     "load, alternating) are the measurement.")
    for chunk, tables in (profile or {}).get("chunks", {}).items():
        lines += ["", f"torch.profiler, one pass per side ({profile['setting']}, chunk {chunk}; "
                  "self CPU time, top operators). The reference's `aten::copy_` (under `aten::sum`, "
                  "`_to_copy`) is the int64 copy of its bool mask that `sum` makes; ours' `aten::mul` on the "
                  "`[chunk, entities]` scores is `DualEncoder.score`'s scale (the other `mul`, `index`, `addmm` "
                  "and `div` rows are `encode_mentions` of each chunk):", ""]
        for side in SIDES:
            lines += [f"{side}:", "", "```", tables[side].rstrip(), "```", ""]
    lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", nargs="+", choices=list(GRAPHS), default=list(GRAPHS))
    ap.add_argument("--entities", type=int, default=100_000, help="entities of the synthetic KB")
    ap.add_argument("--mentions", type=int, default=5000)
    ap.add_argument("--chunks", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-runs", type=int, default=3, help="child processes per side and chunk size")
    ap.add_argument("--profile", action="store_true", help="torch.profiler table of one pass per side "
                    "(first setting, every chunk size)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/linking_ranking.md"),
                    help="the results file ('-': print only)")
    ap.add_argument("--child", choices=list(SIDES), help=argparse.SUPPRESS)
    ap.add_argument("--setting", choices=list(GRAPHS), help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return

    header = _provenance.header("Entity linking: full-KB ranking, EntityLinking.ranks vs a plain matmul + topk loop")
    load_start = _provenance.load()
    results, skipped, profile = [], {}, None
    for name in args.settings:
        try:
            s = build_setting(name, args)
        except Skip as exc:
            skipped[name] = f"Skipped: {exc}"
            print(skipped[name], flush=True)
            continue
        results.append(measure_setting(s, args))
        if args.profile and profile is None:
            profile = {"setting": name, "chunks": {c: profile_table(s, c) for c in args.chunks}}
        del s
        gc.collect()
    lines = report(args, header, results, skipped, (load_start, _provenance.load()), profile)
    _provenance.emit(lines, None if str(args.out) == "-" else args.out)


if __name__ == "__main__":
    main()
