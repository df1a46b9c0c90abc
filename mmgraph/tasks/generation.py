"""Text generation from multimodal neighbours (MMGL's paradigm) as a task of the runner.

A language model (:class:`mmgraph.generation.NeighborLM`) writes a target node's text (an
openclipart title, a Tux Paint description, a WikiWeb2M section's first sentence) from its input
and its graph neighbours' texts and images. The task turns the graph into examples
(:func:`mmgraph.generation.build.generation_set`), trains the model teacher-forced
(``train_epoch``: shuffled batches, mean cross-entropy over the target tokens) and, at every
evaluation, decodes the validation and test examples autoregressively (the model's greedy or
beam search with a KV cache) and scores them with BLEU-4, ROUGE-L and CIDEr-D
(:mod:`mmgraph.generation.metrics`). The trainer selects epochs on validation, as for every task.

**Split.** A grouped split (``split=grouped``, the default of the item data sets) is grouped on
the *target* field here, whatever key the data set config names: no target text is on both
sides. Any split is reported with how often a validation/test target is also a training target
and how often it appears verbatim in one of its context texts (``describe()["overlap"]``).

**Generation cache.** With ``cache_file``, decoded texts are appended to a JSONL file keyed by
the model's trainable weights (a hash), its decoding settings and the example: an interrupted
run resumes its decoding, and a repeated run (same seed, same weights) decodes nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections import namedtuple
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch_geometric.data import HeteroData

from mmgraph.checks import boolean, choice, integer
from mmgraph.data.graph import target_type
from mmgraph.data.splits import make_split
from mmgraph.errors import ConfigError, DataError
from mmgraph.evaluator import MetricSpec
from mmgraph.generation.examples import CONTEXTS, GenerationSet, iter_batches, with_context
from mmgraph.tasks.base import Metrics, Task

log = logging.getLogger(__name__)

METRICS = ("bleu4", "rouge_l", "cider_d")


def _metrics(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    from mmgraph.generation.metrics import generation_metrics

    preds, refs = list(inp["predictions"]), list(inp["references"])
    if not preds or len(preds) != len(refs):
        raise ValueError(f"predictions ({len(preds)}) and references ({len(refs)}) must be non-empty "
                         f"and of equal length")
    values = generation_metrics(preds, refs, cut=bool(inp.get("cut", True)))
    return {m: values[m] for m in names}


SPEC = MetricSpec(
    task="generation",
    metrics=METRICS,
    primary="rouge_l",
    expected_input="{'predictions': generated texts [N], 'references': target texts [N], 'cut': bool}",
    compute=_metrics,
)

_Key = namedtuple("_Key", "key")


def weights_fingerprint(model: nn.Module) -> str:
    """A hash of the model's trainable parameters and buffers (what training changed) and its
    settings: equal weights decode equally."""
    h = hashlib.sha1()
    desc = getattr(model, "settings", None)
    h.update(repr(sorted(desc().items()) if callable(desc) else type(model).__name__).encode())
    for name, p in model.named_parameters():
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class GenerationTask(Task):
    """Generate a target text per example (see the module docstring).

    Args:
        target: the target node field to generate (the data set config's ``generation.target``).
        input: a target node field always read as tokens (WikiWeb2M: ``input_text``); ``None``.
        relations: relations whose neighbours are the context (item graphs; ``None``: all).
        max_neighbors: neighbours per example (item graphs).
        context: ``none`` (the input only), ``text`` (plus the neighbours' texts) or
            ``multimodal`` (plus their images).
        own_image: the target node's image is part of the input.
        batch_size: training examples per step. ``eval_batch_size``: examples decoded at once.
        train_limit: at most this many training examples per epoch (a seeded draw per epoch;
            ``None``: all).
        eval_sample: examples of each of val and test decoded at every evaluation (a seeded
            sample, the same for every model and seed; ``None``: all).
        sample_seed: the seed of that sample.
        cut: cut predictions at their first "." after character 5 before scoring (MMGL).
        primary: the validation metric of early stopping and the sweep objective.
        cache_file: the generation cache (JSONL; ``None``: none).
    """

    kind = "generation"

    def __init__(self, target: str | None = None, input: str | None = None,
                 relations: Sequence[str] | None = None, max_neighbors: int = 10,
                 context: str = "multimodal", own_image: bool = True, batch_size: int = 8,
                 eval_batch_size: int = 16, train_limit: int | None = None,
                 eval_sample: int | None = 200, sample_seed: int = 0, cut: bool = True,
                 primary: str = "rouge_l", cache_file: str | None = None):
        self.spec = dataclasses.replace(SPEC, primary=choice("task.primary", primary, METRICS))
        super().__init__()
        if target is not None and not isinstance(target, str):
            raise ConfigError(f"task.target must be a node field name, e.g. title; got {target!r}")
        self.target, self.input = target, input
        if input is not None and not isinstance(input, str):
            raise ConfigError(f"task.input must be a node field name or null; got {input!r}")
        if relations is not None and (isinstance(relations, str) or not all(isinstance(r, str) for r in relations)):
            raise ConfigError(f"task.relations must be a list of relation names; got {relations!r}")
        self.relations = list(relations) if relations else None
        self.max_neighbors = integer("task.max_neighbors", max_neighbors, 0)
        self.context = choice("task.context", context, CONTEXTS)
        self.own_image = boolean("task.own_image", own_image)
        self.batch_size = integer("task.batch_size", batch_size, 1)
        self.eval_batch_size = integer("task.eval_batch_size", eval_batch_size, 1)
        self.train_limit = integer("task.train_limit", train_limit, 1, optional=True)
        self.eval_sample = integer("task.eval_sample", eval_sample, 1, optional=True)
        self.sample_seed = integer("task.sample_seed", sample_seed)
        self.cut = boolean("task.cut", cut)
        if cache_file is not None and not isinstance(cache_file, str):
            raise ConfigError(f"task.cache_file must be a path or null; got {cache_file!r}")
        self.cache_file = cache_file
        self.epoch = 0
        self.stats: dict[str, Any] = {}
        self.samples: dict[str, list[dict]] = {}

    # ------------------------------------------------------------------ setup
    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        self.device = device
        if self.target is None:
            raise ConfigError(f"data set {data.meta.get('name')} names no generation target; set "
                              f"task.target=<a text field of its {target_type(data)!r} nodes>")
        if split:
            split = dict(split)
            if split.get("name") == "grouped":
                split["key"] = self.target  # no target text on both sides
            make_split(data, **split)
        self.gen: GenerationSet = self._build(data)
        self.split_meta = data.meta.get("split", {})
        ex = {s: [with_context(e, self.context) for e in self.gen.split(s)] for s in ("train", "val", "test")}
        for s in ("train", "val"):
            if not ex[s]:
                raise DataError(f"{data.meta.get('name')}: the {s} split has no generation example")
        self.train_examples = ex["train"]
        self.eval_examples = {s: self._sample(ex[s]) for s in ("val", "test") if ex[s]}

    def _build(self, data: HeteroData) -> GenerationSet:
        from mmgraph.generation.build import generation_set

        gen = generation_set(data, self.target, input_field=self.input, relations=self.relations,
                             max_neighbors=self.max_neighbors, own_image=self.own_image)
        if gen.meta["empty_targets"]:
            log.warning("%d %s nodes have an empty %r and are not examples", gen.meta["empty_targets"],
                        target_type(data), self.target)
        return gen

    def _sample(self, examples: list) -> list:
        if self.eval_sample is None or self.eval_sample >= len(examples):
            return examples
        gen = torch.Generator().manual_seed(self.sample_seed)
        keep = torch.randperm(len(examples), generator=gen)[: self.eval_sample].sort().values
        return [examples[int(i)] for i in keep]

    def model_kwargs(self) -> dict[str, Any]:
        return {"feature_dims": self.gen.feature_dims, "device": str(self.device)}

    def start_run(self, seed: int) -> None:
        super().start_run(seed)
        self.epoch = 0
        self.stats = {"train_tokens": 0, "train_seconds": 0.0, "generated_tokens": 0,
                      "generation_seconds": 0.0, "decoded": 0, "from_cache": 0}

    # ------------------------------------------------------------------ training
    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        self.epoch += 1
        model.train()
        gen = torch.Generator().manual_seed((self.seed or 0) * 100_003 + self.epoch)
        order = torch.randperm(len(self.train_examples), generator=gen)
        if self.train_limit is not None:
            order = order[: self.train_limit]
        examples = [self.train_examples[int(i)] for i in order]
        total, count = 0.0, 0
        t0 = time.perf_counter()
        for batch in iter_batches(examples, self.batch_size):
            inputs = model.collate(batch, self.gen.features, with_target=True)
            optimizer.zero_grad(set_to_none=True)
            loss = model.loss(inputs)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
            self.stats["train_tokens"] += _tokens(inputs)
        self.stats["train_seconds"] += time.perf_counter() - t0
        return total / max(count, 1)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> Metrics:
        model.eval()
        cache = self._cache(model)
        out: Metrics = {"train": {m: float("nan") for m in self.metrics}}
        self.samples = {}
        for s, examples in self.eval_examples.items():
            texts = self._decode(model, examples, cache)
            refs = [e.target for e in examples]
            out[s] = self.evaluator.eval({"predictions": texts, "references": refs, "cut": self.cut})
            self.samples[s] = [{"id": e.id, "target": e.target, "generated": t}
                               for e, t in zip(examples[:5], texts[:5])]
        if "test" not in out:
            out["test"] = {m: float("nan") for m in self.metrics}
        return out

    def _cache(self, model: nn.Module):
        if self.cache_file is None:
            return None
        from mmgraph.zeroshot.cache import GenerationCache

        settings = {"context": self.context, "data": self.gen.meta.get("version"), "target": self.target,
                    "relations": self.relations, "max_neighbors": self.max_neighbors,
                    "own_image": self.own_image}
        return GenerationCache(self.cache_file, weights_fingerprint(model), settings)

    def _decode(self, model: nn.Module, examples: list, cache) -> list[str]:
        from mmgraph.zeroshot.generate import Generation

        texts: dict[str, str] = {}
        todo = []
        for e in examples:
            hit = cache.get(_Key(e.id)) if cache is not None else None
            if hit is not None:
                texts[e.id] = hit.text
                self.stats["from_cache"] += 1
            else:
                todo.append(e)
        for batch in iter_batches(todo, self.eval_batch_size):
            t0 = time.perf_counter()
            inputs = model.collate(batch, self.gen.features, with_target=False)
            out, new_tokens = model.generate(inputs)
            seconds = time.perf_counter() - t0
            n_new = [int(n) for n in new_tokens]
            self.stats["generated_tokens"] += sum(n_new)
            self.stats["generation_seconds"] += seconds
            self.stats["decoded"] += len(batch)
            for e, t in zip(batch, out):
                texts[e.id] = t
            if cache is not None:
                cache.put_many((_Key(e.id), Generation(t, n, seconds / len(batch)))
                               for e, t, n in zip(batch, out, n_new))
        return [texts[e.id] for e in examples]

    # ------------------------------------------------------------------ records
    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "split": self.split_meta, "target": self.target, "input": self.input,
                "context": self.context, "own_image": self.own_image,
                "relations": self.gen.meta.get("relations"), "max_neighbors": self.max_neighbors,
                "examples": self.gen.counts(), "evaluated": {s: len(v) for s, v in self.eval_examples.items()},
                "eval_sample": self.eval_sample, "sample_seed": self.sample_seed, "train_limit": self.train_limit,
                "overlap": self.gen.meta.get("overlap"), "cut": self.cut}

    def _speeds(self) -> dict[str, Any]:
        st = self.stats
        return {"train_tokens_per_second": round(st["train_tokens"] / st["train_seconds"], 1)
                if st.get("train_seconds") else None,
                "generation_tokens_per_second": round(st["generated_tokens"] / st["generation_seconds"], 1)
                if st.get("generation_seconds") else None}

    def run_record(self, model: nn.Module) -> dict[str, Any]:
        return {"generation": {**self.stats, **self._speeds(), "samples": self.samples,
                               "model": model.describe() if hasattr(model, "describe") else {}}}

    def summary_row(self, model: nn.Module) -> dict[str, Any]:
        settings = model.settings() if hasattr(model, "settings") else {}
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return {"modalities": self.context,
                "generation": {**settings, "context": self.context, "trainable_parameters": trainable,
                               **self._speeds()}}


def _tokens(inputs: Mapping[str, Any]) -> int:
    """Tokens a training batch processed (its attention masks' ones)."""
    n = 0
    for key in ("attention_mask", "decoder_attention_mask"):
        mask = inputs.get(key) if isinstance(inputs, Mapping) else None
        if isinstance(mask, torch.Tensor):
            n += int(mask.sum())
    return n
