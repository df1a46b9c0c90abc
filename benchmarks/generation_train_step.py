"""Training-step cost of SA-E with LoRA (``NeighborLM``) against a plain peft LoRA fine-tune.

Target checked: a training step of SA-E with LoRA costs at most 1.15x a plain peft LoRA
fine-tune of the same LM on the same token batches.

Sides, all SmolLM2-135M-Instruct from the same local folder
(``mmgraph.zeroshot.generate.smollm2_folder()``), float32, CPU, sdpa attention, in train mode:

* ``sa_e``: ``NeighborLM(lm="smollm2-135m-instruct", encoding="sa_e", peft="lora",
  feature_dims={"text": 384, "image": 1280})`` (lora_r 64, lora_alpha 16, lora_dropout 0.05,
  peft's default targets ``q_proj, v_proj``; 4 embedding tokens per item): a step is
  ``model.loss(batch)`` on the collated batch (projectors, slot filling, ``inputs_embeds``,
  ``logits_to_keep`` = the target span, cross-entropy on that span).
* ``plain``: ``peft.get_peft_model(AutoModelForCausalLM.from_pretrained(folder),
  LoraConfig(r=64, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
  task_type="CAUSAL_LM"))`` called with ``input_ids``, ``attention_mask`` and ``labels`` of the
  collated batch (the soft-token slots hold their placeholder ids; the same shape and the same
  label positions), the loss transformers computes from ``labels`` (logits at every position).
  This is the comparison the target names.
* ``plain_span`` (``--no-span`` drops it): the same plain peft model, but called as NeighborLM
  calls its LM: ``input_ids``, ``attention_mask``, NeighborLM's ``position_ids``,
  ``logits_to_keep`` = the target span, cross-entropy on the same span. Against it the ratio
  isolates what SA-E itself adds (projectors, slot filling, gradients down to the embeddings,
  the projectors' optimizer state), without the full-vocabulary logits ``plain`` pays for.

Batches: real Tux Paint examples (``dataset=tuxpaint model=sa_e``: ``task=generation`` with
target ``text``, relations ``in_category, same_category``, context ``multimodal``, the
dataset's grouped split), training examples in a seeded order, collated once by NeighborLM;
``--data random`` uses random examples instead (10 neighbour items, 8-word targets). Every side
uses AdamW (lr 1e-4, torch's defaults otherwise) over its trainable parameters.

A step is ``zero_grad(set_to_none=True)``, forward + loss, ``backward``, ``optimizer.step``,
timed with ``perf_counter`` (collation is not timed). After ``--warmup`` untimed steps per side,
each of ``--pairs`` rounds runs every side once on the same batch, the order rotating from round
to round (A B C, B C A, C A B, ...). Reported per batch size: per-round ratio sa_e / plain (and
sa_e / plain_span), median and min-max; tokens (attention-mask ones) per second; trainable
parameters; the verdict against 1.15. ``--profile`` adds a torch.profiler breakdown of one step
of each side after the timed rounds.

    .venv/bin/python benchmarks/generation_train_step.py [--batch-sizes 8 4] [--pairs 10] [--out benchmarks/results/generation_train_step]

writes ``<out>.json`` and ``<out>.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

TARGET = 1.15
FEATURE_DIMS = {"text": 384, "image": 1280}
LR = 1e-4


def tuxpaint_examples():
    """Training examples and feature tables of ``dataset=tuxpaint model=sa_e``."""
    from mmgraph.bench.runner import prepare
    from mmgraph.cli import compose
    from mmgraph.paths import config_dir

    cfg = compose(config_dir(), ["dataset=tuxpaint", "model=sa_e", "task.cache_file=null", "device=cpu"])
    _, _, task = prepare(cfg)
    desc = (f"Tux Paint (`dataset=tuxpaint model=sa_e`: target `{task.target}`, relations "
            f"{', '.join(task.relations or [])}, context {task.context}, max_neighbors "
            f"{task.max_neighbors}, own image), {len(task.train_examples)} training examples")
    return task.train_examples, task.gen.features, desc


def random_examples(n: int, seed: int = 0):
    """Random examples with 384/1280-wide features: an input image, 10 neighbour items (5 texts,
    5 images on 5 neighbour nodes of a star), an 8-word target."""
    from mmgraph.generation.examples import Example, Item

    gen = torch.Generator().manual_seed(seed)
    words = ["red", "blue", "cat", "dog", "tree", "house", "sun", "car", "a", "the", "small", "green"]
    examples, nt, ni = [], 0, 0
    for i in range(n):
        pick = torch.randint(0, len(words), (8,), generator=gen).tolist()
        items = [Item("image", 0, ni, "input")]
        ni += 1
        for node in range(1, 6):
            items += [Item("text", node, nt, "context", "a neighbour text"), Item("image", node, ni, "context")]
            nt, ni = nt + 1, ni + 1
        ei = torch.tensor([[0] * 5 + list(range(1, 6)), list(range(1, 6)) + [0] * 5])
        examples.append(Example(f"r{i}", "train", " ".join(words[j] for j in pick), "", items, 6, ei))
    feats = {"text": torch.randn(nt, FEATURE_DIMS["text"], generator=gen),
             "image": torch.randn(ni, FEATURE_DIMS["image"], generator=gen)}
    return examples, feats, f"random examples ({n}; 1 input image + 10 neighbour items, 8-word targets)"


def plain_model(folder):
    import peft
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    config = peft.LoraConfig(r=64, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                             task_type="CAUSAL_LM")
    model = peft.get_peft_model(lm, config)
    model.train()
    return model


def span_of(labels: torch.Tensor) -> int:
    return int((labels != -100).sum(1).max()) + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8])
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per side and batch size")
    ap.add_argument("--pairs", type=int, default=10, help="timed rounds (one step of every side each)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", choices=["tuxpaint", "random"], default="tuxpaint")
    ap.add_argument("--no-span", action="store_true", help="leave out the plain_span side")
    ap.add_argument("--profile", action="store_true", help="torch.profiler breakdown of one step per side")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/generation_train_step"),
                    help="path prefix of the .json and .md files written ('-': print only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import peft
    import transformers

    from mmgraph.generation import NeighborLM
    from mmgraph.zeroshot.generate import smollm2_folder

    folder = smollm2_folder()
    if folder is None:
        sys.exit("SmolLM2 could not be converted to a model folder (see the warning above)")
    if args.data == "tuxpaint":
        examples, features, data_desc = tuxpaint_examples()
    else:
        examples, features, data_desc = random_examples(8 * (args.warmup + args.pairs))
    dims = {m: int(t.size(1)) for m, t in features.items()}
    if dims != FEATURE_DIMS:
        sys.exit(f"feature widths {dims}, expected {FEATURE_DIMS}")

    torch.manual_seed(0)
    sae = NeighborLM(lm="smollm2-135m-instruct", encoding="sa_e", peft="lora", feature_dims=dict(FEATURE_DIMS),
                     device="cpu")
    sae.train()
    torch.manual_seed(0)
    plain = plain_model(folder)
    params = {"sa_e": [p for p in sae.parameters() if p.requires_grad],
              "plain": [p for p in plain.parameters() if p.requires_grad]}
    count = lambda ps: sum(p.numel() for p in ps)
    trainable = {
        "sa_e": count(params["sa_e"]),
        "sa_e_lora": sum(p.numel() for n, p in sae.named_parameters() if p.requires_grad and "lora_" in n),
        "sa_e_projectors": count([p for p in sae.projectors.parameters()]),
        "plain": count(params["plain"]),
    }
    opts = {"sa_e": torch.optim.AdamW(params["sa_e"], lr=LR), "plain": torch.optim.AdamW(params["plain"], lr=LR)}
    # plain_span shares plain's model and optimizer: both train the same LoRA weights, which
    # does not change a step's cost
    opts["plain_span"] = opts["plain"]
    sides = ["sa_e", "plain"] + ([] if args.no_span else ["plain_span"])
    attn = {"sa_e": sae.lm.config._attn_implementation, "plain": plain.config._attn_implementation}
    dropout = {"sa_e": sae.lora_dropout, "plain": plain.peft_config["default"].lora_dropout,
               "attention_dropout": [sae.lm.config.attention_dropout, plain.config.attention_dropout]}
    dtypes = {"sa_e": str(sae.lm.dtype), "plain": str(plain.dtype)}

    def loss_of(side: str, batch: dict) -> torch.Tensor:
        if side == "sa_e":
            return sae.loss(batch)
        if side == "plain":
            return plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         labels=batch["labels"]).loss
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        span, L = span_of(labels), ids.size(1)
        logits = plain(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                       logits_to_keep=span, use_cache=False).logits
        logits, gold = logits[:, -span:][:, :-1], labels[:, L - span + 1:]
        return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), gold.reshape(-1),
                                                 ignore_index=-100)

    def step(side: str, batch: dict) -> tuple[float, float]:
        opt = opts[side]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_of(side, batch)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0, float(loss.detach())

    header = _provenance.header("Training step: SA-E with LoRA vs plain peft LoRA")
    load_start = _provenance.load()
    git_commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_provenance.ROOT, capture_output=True,
                                text=True).stdout.strip()  # at the start, as the header's commit line
    tree = _provenance.commit()
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(0)).tolist()
    cells, checks = [], {}
    for bs in args.batch_sizes:
        need = (args.warmup + args.pairs) * bs
        if need > len(examples):
            sys.exit(f"{need} examples needed at batch size {bs}, {len(examples)} available")
        chosen = [examples[i] for i in order[:need]]
        batches = [sae.collate(chosen[i:i + bs], features, with_target=True) for i in range(0, need, bs)]
        if bs == args.batch_sizes[0]:
            # the label positions agree: on the same weights, plain's transformers loss (given
            # NeighborLM's position ids) equals the span loss plain_span computes
            b = batches[0]
            with torch.no_grad():
                plain.eval(), sae.eval()
                pos = (b["attention_mask"].cumsum(1) - 1).clamp(min=0)
                hf = float(plain(input_ids=b["input_ids"], attention_mask=b["attention_mask"], position_ids=pos,
                                 labels=b["labels"]).loss)
                mine = float(loss_of("plain_span", b))
                plain.train(), sae.train()
            checks = {"plain_labels_loss": hf, "plain_span_loss": mine, "same": abs(hf - mine) < 1e-4}
            print(json.dumps({"check": checks}), flush=True)
        for i in range(args.warmup):
            for side in sides:
                step(side, batches[i])
        rounds = []
        for r in range(args.pairs):
            b = batches[args.warmup + r]
            turn = sides[r % len(sides):] + sides[:r % len(sides)]
            row = {"round": r, "order": turn, "tokens": int(b["attention_mask"].sum()),
                   "shape": list(b["input_ids"].shape), "target_tokens": int((b["labels"] != -100).sum())}
            for side in turn:
                row[f"{side}_s"], row[f"{side}_loss"] = step(side, b)
            row["ratio_plain"] = row["sa_e_s"] / row["plain_s"]
            if "plain_span" in sides:
                row["ratio_span"] = row["sa_e_s"] / row["plain_span_s"]
            rounds.append(row)
            print(json.dumps(row), flush=True)
        tok_s = {s: [p["tokens"] / p[f"{s}_s"] for p in rounds] for s in sides}
        overall = {s: sum(p["tokens"] for p in rounds) / sum(p[f"{s}_s"] for p in rounds) for s in sides}
        cell = {"batch_size": bs, "rounds": rounds, "tokens_per_s_per_round": tok_s,
                "tokens_per_s_overall": overall,
                "seconds_median": {s: statistics.median(p[f"{s}_s"] for p in rounds) for s in sides},
                "ratio_plain": [p["ratio_plain"] for p in rounds],
                "ratio_span": [p["ratio_span"] for p in rounds] if "plain_span" in sides else None,
                "seq_len": [p["shape"][1] for p in rounds],
                "items_per_example": statistics.mean(len(e.items) for e in chosen)}
        cell["ratio_plain_median"] = statistics.median(cell["ratio_plain"])
        cell["meets_target"] = cell["ratio_plain_median"] <= TARGET
        cells.append(cell)
    load_end = _provenance.load()

    profile = None
    if args.profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        b = batches[-1]
        profile = {}
        for side in sides:
            step(side, b)
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                step(side, b)
            profile[side] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
            print(side, profile[side], flush=True)

    record = {
        "title": "SA-E LoRA training step vs plain peft LoRA",
        "command": _provenance.command(), "date_utc": _provenance.now(),
        "git_commit": git_commit, "tree": tree, "machine": _provenance.machine(), "cores": os.cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_start": load_start, "load_average_end": load_end,
        "model_folder": str(folder), "attn_implementation": attn, "dtype": dtypes, "dropout": dropout,
        "data": data_desc, "warmup": args.warmup, "pairs": args.pairs, "sides": sides, "lr": LR,
        "trainable_parameters": trainable, "label_check": checks, "target": TARGET,
        "cells": cells, "profile": profile,
    }
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")

    med = statistics.median
    span = lambda v, f="{:.2f}": f"{f.format(med(v))} ({f.format(min(v))}-{f.format(max(v))})"
    lines = header + [
        f"SmolLM2-135M-Instruct (`{folder}`), float32, {attn['sa_e']} attention, train mode "
        f"(LoRA dropout {dropout['sa_e']} on both, attention dropout {dropout['attention_dropout'][0]}), "
        f"{torch.get_num_threads()} torch threads; torch {torch.__version__}, transformers "
        f"{transformers.__version__}, peft {peft.__version__}; git commit `{record['git_commit']}`.", "",
        f"Data: {data_desc}, in a seeded order (seed 0), collated once by NeighborLM (left-padded prompt + "
        f"target + EOS); every side trains on the same batches.", "",
        "Sides (LoRA r 64, alpha 16, dropout 0.05 on `q_proj, v_proj`; AdamW lr 1e-4 over the side's "
        "trainable parameters):", "",
        "- `sa_e`: `NeighborLM(lm=\"smollm2-135m-instruct\", encoding=\"sa_e\", peft=\"lora\", "
        "feature_dims={\"text\": 384, \"image\": 1280})`, `model.loss(batch)` (projectors, slot filling, "
        "`inputs_embeds`, logits of the target span only);",
        "- `plain`: `get_peft_model(AutoModelForCausalLM.from_pretrained(folder), LoraConfig(...))` called "
        "with the batch's `input_ids` (placeholder ids at the soft-token slots), `attention_mask`, `labels` "
        "(transformers' loss: logits at every position) — the comparison the 1.15x target names;",
    ]
    if "plain_span" in sides:
        lines.append("- `plain_span`: the same plain model called the way NeighborLM calls its LM "
                     "(`input_ids`, `attention_mask`, NeighborLM's `position_ids`, `logits_to_keep` = the "
                     "target span, cross-entropy on the span): the ratio against it is what SA-E itself adds.")
    lines += ["", f"A step: `zero_grad(set_to_none=True)`, forward + loss, `backward`, `optimizer.step` "
              f"(collation not timed). {args.warmup} untimed steps per side, then {args.pairs} rounds per batch "
              f"size, each side once per round on the same batch, the order rotating from round to round.", "",
              f"Trainable parameters: sa_e {trainable['sa_e']:,} (LoRA {trainable['sa_e_lora']:,} + projectors "
              f"{trainable['sa_e_projectors']:,}); plain {trainable['plain']:,}.", "",
              f"Label positions: on the same weights, transformers' loss from `labels` (with NeighborLM's "
              f"position ids) {checks.get('plain_labels_loss', float('nan')):.6f} vs the span loss "
              f"{checks.get('plain_span_loss', float('nan')):.6f} ({'equal' if checks.get('same') else 'DIFFERENT'}).", ""]
    head = ("| batch | seq len (min-max) | tokens per batch (mean) | s/step sa_e | s/step plain | "
            + ("s/step plain_span | " if "plain_span" in sides else "")
            + "tok/s sa_e (median; min-max) | tok/s plain | " + ("tok/s plain_span | " if "plain_span" in sides else "")
            + "**sa_e / plain** per round (median; min-max) | " + ("sa_e / plain_span | " if "plain_span" in sides else "")
            + f"≤ {TARGET}? |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for c in cells:
        sec = c["seconds_median"]
        tok = c["tokens_per_s_per_round"]
        row = (f"| {c['batch_size']} | {min(c['seq_len'])}-{max(c['seq_len'])} | "
               f"{statistics.mean(p['tokens'] for p in c['rounds']):.0f} | {sec['sa_e']:.2f} | {sec['plain']:.2f} | "
               + (f"{sec['plain_span']:.2f} | " if "plain_span" in sides else "")
               + f"{span(tok['sa_e'], '{:.0f}')} | {span(tok['plain'], '{:.0f}')} | "
               + (f"{span(tok['plain_span'], '{:.0f}')} | " if "plain_span" in sides else "")
               + f"**{span(c['ratio_plain'])}** | " + (f"{span(c['ratio_span'])} | " if "plain_span" in sides else "")
               + f"{'yes' if c['meets_target'] else 'NO'} |")
        lines.append(row)
    lines.append("")
    for c in cells:
        verdict = (f"Batch {c['batch_size']}: sa_e / plain per round, median {c['ratio_plain_median']:.2f} "
                   f"(min-max {min(c['ratio_plain']):.2f}-{max(c['ratio_plain']):.2f}): "
                   f"{'within' if c['meets_target'] else 'ABOVE'} the {TARGET}x target")
        if c["ratio_span"]:
            r = c["ratio_span"]
            verdict += (f"; sa_e / plain_span median {med(r):.2f} ({min(r):.2f}-{max(r):.2f}), "
                        f"{'within' if med(r) <= TARGET else 'above'} {TARGET}x too")
        lines.append(verdict + ".")
    lines += ["", "Seconds per step by round (the side that ran first is marked *):", ""]
    for c in cells:
        lines.append(f"- batch {c['batch_size']}: " + "; ".join(
            ", ".join(f"{p[f'{s}_s']:.2f}{'*' if p['order'][0] == s else ''}" for s in sides) for p in c["rounds"])
            + f"  ({' , '.join(sides)})")
    lines += ["", f"Load average at end: {load_end}."]
    busy = max([float(v.split()[0]) for v in (load_start, load_end) if v != "unknown"], default=0.0)
    if busy > (os.cpu_count() or 1):
        lines.append(f"The 1-minute load average exceeded the {os.cpu_count()} cores: other jobs shared the "
                     "machine; the per-round ratios (both sides under the same load) are the measurement.")
    if profile:
        lines += ["", "torch.profiler, one step per side (self CPU time, top operators):", ""]
        for side, table in profile.items():
            lines += [f"{side}:", "", "```", table.rstrip(), "```", ""]
    lines.append("")
    _provenance.emit(lines, None if str(args.out) == "-" else args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
