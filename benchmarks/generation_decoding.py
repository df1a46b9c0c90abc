"""Decoding throughput: ``mmgraph.generation.decoding.decode`` vs transformers' ``generate``.

SmolLM2-135M-Instruct (the local folder of ``mmgraph.zeroshot.generate.smollm2_folder()``,
float32, CPU), 16 short completion prompts asking for a one-sentence description of a
clip-art title (``PROMPT``), left-padded, ``--max-new-tokens`` (32) new tokens, EOS
``<|im_end|>``. Configurations: greedy and beam search with 4 beams (``length_penalty=1``,
``early_stopping=False``), batch sizes 1 and 8. ``generate`` gets ``input_ids``; ``decode`` gets
``lm.get_input_embeddings()(input_ids)`` (the embedding lookup is timed with it).

Both sides decode the same batches in one process, after one short untimed call of each. A
*pair* is one batch decoded by both sides back to back; the order alternates from pair to pair
(A B, B A, ...), so both see the same machine load, over ``--rounds`` (3) rounds. Reported per
configuration: each side's generated tokens (each row's, up to and including its EOS) per second
of wall time, per pair (median, min-max) and over all pairs, the per-pair ratio of the two
rates, and whether every pair gave the same tokens on both sides. Batch size 1 decodes the first ``--b1-prompts`` (2) prompts
one by one, to keep the run near 5 minutes on 2 cores (a float32 135M-parameter model reads
0.5 GB of weights per step); larger batches the first ``--prompts`` (16). Run from the
repository root:

    .venv/bin/python benchmarks/generation_decoding.py [--rounds 3] [--out benchmarks/results/generation_decoding]

writes ``<out>.json`` and ``<out>.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

TITLES = [
    "red apple with a green leaf", "cartoon owl on a branch", "blue bicycle", "smiling sun",
    "coffee cup with steam", "black cat silhouette", "lighthouse at night", "pine tree in snow",
    "yellow school bus", "hand-drawn world map", "sailing boat on waves", "birthday cake with candles",
    "old key", "mountain landscape", "guitar icon", "butterfly with orange wings",
]


#: Plain completion prompts (the chat template's system prompt would triple their length and
#: make the prompt pass, not decoding, dominate the timings).
PROMPT = "Clip art title: {title}.\nA one-sentence description of this clip art:"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def generated_lengths(seqs: torch.Tensor, eos: int, max_new: int) -> list[int]:
    """Tokens per row up to and including the first EOS (else ``max_new``)."""
    out = []
    for row in seqs.tolist():
        out.append(row.index(eos) + 1 if eos in row else min(len(row), max_new))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=16, help="prompts decoded at batch sizes > 1")
    ap.add_argument("--b1-prompts", type=int, default=2, help="prompts decoded at batch size 1")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/generation_decoding"),
                    help="path prefix of the .json and .md files written")
    args = ap.parse_args()

    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mmgraph.generation.decoding import decode
    from mmgraph.zeroshot.generate import smollm2_folder

    header = _provenance.header("Decoding throughput: mmgraph decode vs transformers generate")
    load_start = _provenance.load()
    folder = smollm2_folder()
    if folder is None:
        sys.exit("SmolLM2 could not be converted to a model folder (see the warning above)")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    eos = pad = int(tok.eos_token_id)
    prompts = [PROMPT.format(title=t) for t in TITLES]

    def run_generate(enc, k, max_new):
        out = lm.generate(**enc, do_sample=False, num_beams=k, max_new_tokens=max_new,
                          eos_token_id=eos, pad_token_id=pad, early_stopping=False, length_penalty=1.0)
        return out[:, enc.input_ids.shape[1]:]

    def run_decode(enc, k, max_new):
        embeds = lm.get_input_embeddings()(enc.input_ids)
        return decode(lm, embeds, enc.attention_mask, max_new_tokens=max_new, num_beams=k,
                      eos_token_id=eos, pad_token_id=pad, length_penalty=1.0).sequences

    lengths = [len(ids) for ids in tok(prompts[:max(args.prompts, args.b1_prompts)]).input_ids]
    sides = {"generate": run_generate, "decode": run_decode}
    with torch.no_grad():  # warm-up: one short call of each
        enc = tok(prompts[:2], return_tensors="pt", padding=True)
        for fn in sides.values():
            fn(enc, 2, 2)

    cells, texts = [], {}
    for bs in args.batch_sizes:
        chosen = prompts[:args.b1_prompts] if bs == 1 else prompts[:args.prompts]
        batches = [tok(chosen[i:i + bs], return_tensors="pt", padding=True)
                   for i in range(0, len(chosen), bs)]
        for k in args.beams:
            pairs, identical, rows_differing = [], True, 0
            for r in range(args.rounds):
                # One pair per batch: both sides back to back, the order alternating (A B, then
                # B A for the next batch or round), so that both see the same machine load.
                for i, enc in enumerate(batches):
                    order = ["generate", "decode"] if (r + i) % 2 == 0 else ["decode", "generate"]
                    pair, outs = {"round": r, "batch": i, "first": order[0]}, {}
                    for side in order:
                        t0 = time.perf_counter()
                        with torch.no_grad():
                            outs[side] = sides[side](enc, k, args.max_new_tokens)
                        pair[f"{side}_s"] = time.perf_counter() - t0
                        pair[f"{side}_tokens"] = sum(generated_lengths(outs[side], eos, args.max_new_tokens))
                    a, b = outs["generate"], outs["decode"]
                    same = a.shape == b.shape and torch.equal(a, b)
                    identical &= same
                    if not same:
                        width = min(a.shape[1], b.shape[1])
                        rows_differing += int((a[:, :width] != b[:, :width]).any(1).sum())
                    pair["ratio"] = ((pair["decode_tokens"] / pair["decode_s"])
                                     / (pair["generate_tokens"] / pair["generate_s"]))
                    pairs.append(pair)
                    if r == 0 and i == 0:
                        texts[f"batch {bs}, beams {k}"] = [tok.decode(row, skip_special_tokens=True)
                                                           for row in b[:2]]
            overall = {s: sum(p[f"{s}_tokens"] for p in pairs) / sum(p[f"{s}_s"] for p in pairs)
                       for s in sides}
            per_pair = {s: [p[f"{s}_tokens"] / p[f"{s}_s"] for p in pairs] for s in sides}
            cell = {"batch_size": bs, "num_beams": k, "prompts": len(chosen),
                    "tokens_per_round": sum(p["decode_tokens"] for p in pairs) // args.rounds,
                    "tokens_per_s_overall": overall, "tokens_per_s_per_pair": per_pair,
                    "ratio_per_pair": [p["ratio"] for p in pairs],
                    "identical_tokens": identical, "rows_differing": rows_differing, "pairs": pairs}
            cells.append(cell)
            print(json.dumps({k2: v for k2, v in cell.items() if k2 != "pairs"}), flush=True)

    load_end = _provenance.load()
    record = {
        "title": "decode vs generate throughput",
        "command": _provenance.command(),
        "date_utc": _provenance.now(),
        "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=_provenance.ROOT,
                                     capture_output=True, text=True).stdout.strip(),
        "tree": _provenance.commit(),
        "machine": _provenance.machine(),
        "cpu_model": cpu_model(),
        "cores": __import__("os").cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_start": load_start, "load_average_end": load_end,
        "model": "SmolLM2-135M-Instruct (float32, CPU, sdpa attention)",
        "attn_implementation": lm.config._attn_implementation,
        "max_new_tokens": args.max_new_tokens, "rounds": args.rounds,
        "cells": cells, "sample_outputs": texts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")

    med = lambda v: statistics.median(v)
    span = lambda v, f="{:.1f}": f"{f.format(med(v))} ({f.format(min(v))}-{f.format(max(v))})"
    lines = header + [
        f"SmolLM2-135M-Instruct, float32, {lm.config._attn_implementation} attention, "
        f"{torch.get_num_threads()} torch threads; torch {torch.__version__}, transformers "
        f"{transformers.__version__}; git commit `{record['git_commit']}`. {len(TITLES)} completion "
        f"prompts ({json.dumps(PROMPT)} with a clip-art title, {min(lengths)}-{max(lengths)} tokens), "
        f"left-padded, {args.max_new_tokens} new "
        f"tokens at most, EOS `{tok.eos_token}`; greedy and beam search (length_penalty 1, "
        f"early_stopping False); batch size 1 over the first {args.b1_prompts} prompts, larger batches "
        f"over the first {args.prompts}. A pair is one batch decoded by both sides back to back, the "
        f"order alternating from pair to pair (A B, B A, ...); {args.rounds} rounds of pairs, after one "
        f"short untimed call of each. Tokens: generated tokens up to and including EOS.", "",
        "| batch | beams | prompts | tokens per pair | `generate` tok/s per pair (median; min-max) | "
        "`decode` tok/s per pair (median; min-max) | decode / generate per pair (median; min-max) "
        "| pairs | identical tokens |",
        "|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        rates = c["tokens_per_s_per_pair"]
        lines.append(f"| {c['batch_size']} | {c['num_beams']} | {c['prompts']} | "
                     f"{c['tokens_per_round'] * args.rounds // len(c['pairs'])} | "
                     f"{span(rates['generate'])} | {span(rates['decode'])} | "
                     f"{span(c['ratio_per_pair'], '{:.2f}')} | "
                     f"{len(c['pairs'])} | "
                     f"{'yes' if c['identical_tokens'] else 'no (%d rows differ)' % c['rows_differing']} |")
    lines += ["", "Over all pairs of a configuration (all its tokens over all its seconds), "
              "generate / decode tok/s: " + "; ".join(
                  f"batch {c['batch_size']} beams {c['num_beams']}: "
                  f"{c['tokens_per_s_overall']['generate']:.1f} / {c['tokens_per_s_overall']['decode']:.1f}"
                  for c in cells) + ".", "",
              "Seconds per pair (generate, decode; the side that ran first is marked *):", ""]
    for c in cells:
        cell_pairs = "; ".join(
            f"{p['generate_s']:.2f}{'*' if p['first'] == 'generate' else ''}, "
            f"{p['decode_s']:.2f}{'*' if p['first'] == 'decode' else ''}" for p in c["pairs"])
        lines.append(f"- batch {c['batch_size']}, beams {c['num_beams']}: {cell_pairs}")
    lines += ["", "First two outputs of `decode` (the same as `generate`'s where the table says so):", ""]
    for name, outs in texts.items():
        lines += [f"- {name}: " + " / ".join(json.dumps(t) for t in outs)]
    one_minute = [float(v.split()[0]) for v in (load_start, load_end) if v != "unknown"]
    busy = max(one_minute, default=0.0)
    lines += ["", f"Load average at end: {load_end}."]
    if busy > (record["cores"] or 1):
        lines.append(f"The 1-minute load average exceeded the {record['cores']} cores: other jobs "
                     "shared the machine, so single pairs can be slow (see the seconds above); "
                     "the medians and the per-pair ratios are the measurement.")
    lines.append("")
    _provenance.emit(lines, args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
