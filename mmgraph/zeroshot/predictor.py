"""Zero-shot node classification by a (vision-)language model: MAGB's VLM-as-predictor.

:func:`run_zero_shot` is the runner's path for model configs with ``zero_shot: true``
(``configs/model/smollm2.yaml``): for a seeded sample of the evaluated split's nodes it

1. picks ``num_neighbors`` neighbours per node (``neighbor_strategy``: random, similar, degree);
2. builds the prompt: the node's image and text, the neighbours' text, image or both
   (``neighbor_mode``: MAGB's GRE-T / GRE-V / GRE-M), the categories, optionally a chain of
   thought. For a text-only model (``accepts_images`` false) every image becomes words: the top
   ImageNet labels EfficientNet-Lite0 gives it (``images_as_words``);
3. generates the answers (greedy, batched), cached by a fingerprint of model, settings and
   prompt, so an interrupted run resumes and a repeated one costs nothing;
4. parses each answer into a class (exact name, normalised name, nearest class name by MiniLM
   embedding, else unknown) and scores accuracy, macro-F1 (an unknown answer counts as one more
   predicted class, as in MAGB) and the mismatch rate (share of unknown answers).

The row it returns has the shape of a trained model's, so it sits in the same tables.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mmgraph.errors import ConfigError, DataError

log = logging.getLogger("mmgraph.zeroshot")

METRICS = ("accuracy", "macro_f1", "mismatch")


def sample_nodes(index: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """``size`` nodes of ``index`` drawn with ``seed`` (sorted), or all of them; the same sample
    whatever the prompt settings, so runs with different neighbours compare node for node."""
    index = index.sort().values
    if size is None or size >= index.numel():
        return index
    gen = torch.Generator().manual_seed(int(seed))
    return index[torch.randperm(index.numel(), generator=gen)[: int(size)]].sort().values


def score(y_true: torch.Tensor, pred: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 (unknown = -1 counted as an extra class, as MAGB's string labels do)
    and the mismatch rate."""
    from mmgraph.metrics import accuracy, macro_f1

    unknown = pred < 0
    as_class = torch.where(unknown, torch.full_like(pred, num_classes), pred)
    return {"accuracy": accuracy(y_true, as_class), "macro_f1": macro_f1(y_true, as_class, num_classes + 1),
            "mismatch": float(unknown.float().mean()) if pred.numel() else 0.0}


def _node_content(store, i: int, words: dict[int, str | None], with_image: bool):
    from mmgraph.zeroshot.prompts import NodeContent

    text = store.text[i] if "text" in store else None
    text = text if isinstance(text, str) and text.strip() else None
    image = None
    if with_image and "image" in store:
        ok = bool(store.get("image_mask", torch.ones(store.num_nodes, dtype=torch.bool))[i])
        image = store.image[i] if ok else None
    return NodeContent(text=text, image=image, image_words=words.get(i) if image is not None else None)


def run_zero_shot(cfg: DictConfig, output_dir: str | Path | None = None) -> dict[str, Any]:
    """The runner's zero-shot path (see the module docstring); writes records like ``run``."""
    from mmgraph.assembly import load_dataset, resolve_device, seeds_of
    from mmgraph.data.graph import homogeneous_view, split_indices, target_type
    from mmgraph.data.splits import make_split
    from mmgraph.paths import default_data_root
    from mmgraph.zeroshot.cache import GenerationCache, cached_generate
    from mmgraph.zeroshot.generate import load_generator
    from mmgraph.zeroshot.neighbors import select_neighbors
    from mmgraph.zeroshot.parse import AnswerParser
    from mmgraph.zeroshot.prompts import build_prompt

    m = cfg.model
    device = resolve_device(str(cfg.device))
    data = load_dataset(cfg, device)
    if cfg.dataset.get("split"):
        make_split(data, **OmegaConf.to_container(cfg.dataset.split, resolve=True))
    node_type = target_type(data)
    store = data[node_type]
    graph = homogeneous_view(data)
    class_names = list(data.meta["class_names"])
    splits = list(m.get("splits") or ["test"])
    index = split_indices(graph)
    unknown = [s for s in splits if s not in index]
    if unknown:
        raise ConfigError(f"model.splits: unknown split {unknown[0]!r}; choose from {', '.join(index)}")
    k = int(m.get("num_neighbors", 0))
    mode = str(m.get("neighbor_mode", "text"))
    strategy = str(m.get("neighbor_strategy", "random"))

    if str(m.get("kind", "auto")) == "clip":
        return _run_clip(cfg, data, device, graph, index, splits, out_dir=output_dir)
    extra = {"chat_template": str(m.chat_template)} if m.get("chat_template") else {}
    if m.get("revision"):
        extra["revision"] = str(m.revision)
    generator = load_generator(str(m.generator), device=str(device), dtype=str(m.get("dtype", "auto")),
                               kind=str(m.get("kind", "auto")), image_root=data.meta.get("image_root"), **extra)
    with_images = "image" in store and (generator.accepts_images or bool(m.get("images_as_words", True)))
    settings = {"max_new_tokens": int(m.get("max_new_tokens", 16)), "cot": bool(m.get("cot", False)),
                "max_chars": int(m.get("max_chars", 500))}
    cache_root = Path(m.get("cache_dir") or default_data_root() / "generations")
    cache = GenerationCache(cache_root / str(data.meta.get("name", "data")) / f"{_slug(str(m.name))}.jsonl",
                            generator.fingerprint(), settings)
    embed = _embedder() if m.get("parse_embedding", True) else None
    parser = AnswerParser(class_names, embed=embed)
    features = graph.get("x")

    record_base = _record_base(cfg, data, device, {"name": generator.name, "fingerprint": generator.fingerprint(),
                                                   "accepts_images": generator.accepts_images})
    out = Path(output_dir) if output_dir is not None else None
    runs = []
    for seed in seeds_of(cfg):
        start = time.perf_counter()
        selected, info = {}, {}
        for split in splits:
            nodes = sample_nodes(index[split], m.get("sample"), int(m.get("sample_seed", 0)))
            nodes = nodes[graph.y[nodes] >= 0]
            if nodes.numel() == 0:
                raise DataError(f"the {split} split has no labelled nodes to predict")
            neigh = select_neighbors(graph.edge_index, graph.num_nodes, nodes, k, strategy,
                                     features=features, seed=seed)
            words = _image_words(store, data, nodes, neigh, mode, with_images and not generator.accepts_images, m)
            prompts = []
            for i, nb in zip(nodes.tolist(), neigh):
                center = _node_content(store, i, words, with_images)
                others = [_node_content(store, j, words, with_images and mode in ("image", "both")) for j in nb]
                prompts.append(build_prompt(center, others, class_names, mode=mode, images=generator.accepts_images,
                                            cot=settings["cot"], max_chars=settings["max_chars"]))
            missing = sum(cache.get(p) is None for p in prompts)
            gens = cached_generate(generator, prompts, cache, max_new_tokens=settings["max_new_tokens"],
                                   batch_size=int(m.get("batch_size", 8)))
            parsed = [parser.parse(g.text) for g in gens]
            pred = torch.tensor([p.index for p in parsed], dtype=torch.long)
            values = score(graph.y[nodes], pred, len(class_names))
            _store(selected, split, values)
            tokens = sum(g.new_tokens for g in gens)
            gen_seconds = sum(g.seconds for g in gens)
            info[split] = {"nodes": nodes.numel(), "generated": missing,
                           "new_tokens": tokens, "generation_seconds": round(gen_seconds, 3),
                           "tokens_per_second": tokens / gen_seconds if gen_seconds > 0 else None,
                           "parsed": dict(Counter(p.how for p in parsed)),
                           "examples": [{"node": int(n), "output": g.text[:200], "parsed": p.label}
                                        for n, g, p in list(zip(nodes.tolist(), gens, parsed))[:5]]}
            log.info("seed %d, %s: %d nodes, accuracy %.4f, mismatch %.3f, %s new tokens (%d generated now)",
                     seed, split, nodes.numel(), values["accuracy"], values["mismatch"], tokens,
                     info[split]["generated"])
        runs.append(_seed_record(record_base, seed, selected, start, info, out))
    first = runs[0]["zero_shot"][splits[-1]]
    return _finish(cfg, data, runs, record_base, _modalities(mode, k, with_images),
                   {"num_neighbors": k, "neighbor_mode": mode, "neighbor_strategy": strategy,
                    "nodes": first["nodes"], "tokens_per_second": first["tokens_per_second"]}, out)


def _record_base(cfg: DictConfig, data, device, generator: dict[str, Any]) -> dict[str, Any]:
    """What every zero-shot seed record shares (the keys of a trained run's record, plus the model)."""
    from mmgraph.bench.records import command_line, git_state, package_versions

    return {"command": command_line(), "config": OmegaConf.to_container(cfg, resolve=True),
            "dataset": {key: data.meta[key] for key in ("name", "version", "class_names") if key in data.meta},
            "features": data.meta.get("features", {}), "input": data.meta.get("input", {}),
            "task": {"kind": "node_classification", "split": data.meta.get("split", {}), "zero_shot": True},
            "device": str(device), "versions": package_versions(), "git": git_state(), "generator": generator}


def _store(selected: dict[str, dict], split: str, values: dict[str, float]) -> None:
    """``values`` of ``split`` in the ``selected`` layout of trained runs (no epochs; other splits nan)."""
    for metric, v in values.items():
        selected.setdefault(metric, {"epoch": 0, "val": float("nan"), "test": float("nan"),
                                     "train": float("nan")})[split] = v


def _seed_record(record_base: dict, seed: int, selected: dict, start: float, info: dict,
                 out: Path | None) -> dict[str, Any]:
    from mmgraph.bench.records import write_json

    record = {**record_base, "seed": seed, "selected": selected, "epochs": 0,
              "seconds": time.perf_counter() - start, "stopped_early": False, "history": [], "zero_shot": info}
    if out is not None:
        write_json(out / "runs" / f"seed_{seed}.json", record)
    return record


def _finish(cfg: DictConfig, data, runs: list[dict], record_base: dict, modalities: str,
            zero_shot: dict[str, Any], out: Path | None) -> dict[str, Any]:
    """The summary row (the shape of a trained model's), written beside the seed records."""
    from mmgraph.bench.records import markdown_table, summarize, write_json

    row = {"dataset": cfg.dataset.name, "model": str(cfg.model.name), "modalities": modalities,
           "fusion": "none", "runs": len(runs), "metrics": list(METRICS), "primary": "accuracy",
           "summary": summarize(runs, METRICS, "accuracy"), "seeds": [r["seed"] for r in runs],
           "split": record_base["task"]["split"], "input_fingerprint": data.meta.get("input", {}).get("fingerprint"),
           "zero_shot": zero_shot}
    if out is not None:
        write_json(out / "summary.json", {**row, "record": record_base})
        (out / "results.md").write_text(markdown_table([row]) + "\n")
    return row


def _modalities(mode: str, k: int, images: bool) -> str:
    own = "text+image" if images else "text"
    return own if k == 0 else f"{own}, {k} neighbours ({mode})"


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def _embedder():
    """MiniLM sentence embeddings for the parser's nearest-class fallback (offline)."""
    from mmgraph.features.encoders import get_encoder

    enc = get_encoder("minilm")
    enc.load()
    return lambda texts: enc.encode_text(list(texts))


def _image_words(store, data, nodes: torch.Tensor, neigh: list[list[int]], mode: str, needed: bool,
                 m: DictConfig) -> dict[int, str | None]:
    """EfficientNet-Lite0's words for the images a text-only model's prompts show."""
    if not needed:
        return {}
    from mmgraph.zeroshot.image_words import ImageWords

    wanted = set(nodes.tolist())
    if mode in ("image", "both"):
        wanted |= {j for nb in neigh for j in nb}
    mask = store.get("image_mask", torch.ones(store.num_nodes, dtype=torch.bool))
    ids = sorted(i for i in wanted if bool(mask[i]) and store.image[i] is not None)
    describer = ImageWords(top_k=int(m.get("image_words_top_k", 3)))
    phrases = describer.describe([store.image[i] for i in ids], root=data.meta.get("image_root"))
    return dict(zip(ids, phrases))


def _run_clip(cfg: DictConfig, data, device, graph, index: dict, splits: list[str], out_dir=None) -> dict[str, Any]:
    """Joint-embedding zero-shot (``kind: clip``): each node's image and/or text embedding, mixed
    with its neighbours' (``alpha``), against "a photo of a {class}" text embeddings."""
    from mmgraph.assembly import seeds_of
    from mmgraph.data.graph import target_type
    from mmgraph.zeroshot.clip import ClipZeroShot
    from mmgraph.zeroshot.neighbors import select_neighbors

    m = cfg.model
    store = data[target_type(data)]
    templates = list(m.get("templates") or ["a photo of a {}."])
    clip = ClipZeroShot(str(m.generator), templates=templates, device=str(device))
    class_names = list(data.meta["class_names"])
    class_emb = clip.class_embeddings([c.replace("_", " ") for c in class_names])
    k, use, alpha = int(m.get("num_neighbors", 0)), str(m.get("use", "image")), float(m.get("alpha", 0.0))
    record_base = _record_base(cfg, data, device, {"name": str(m.generator), "fingerprint": clip.fingerprint(),
                                                   "accepts_images": True})
    out = Path(out_dir) if out_dir is not None else None
    texts = [t if isinstance(t, str) and t.strip() else None for t in store.text] if "text" in store else None
    images = list(store.image) if "image" in store else None
    runs = []
    for seed in seeds_of(cfg):
        start, selected, info = time.perf_counter(), {}, {}
        for split in splits:
            nodes = sample_nodes(index[split], m.get("sample"), int(m.get("sample_seed", 0)))
            nodes = nodes[graph.y[nodes] >= 0]
            neigh = select_neighbors(graph.edge_index, graph.num_nodes, nodes, k, str(m.get("neighbor_strategy", "random")),
                                     features=graph.get("x"), seed=seed)
            ids = sorted(set(nodes.tolist()) | {j for nb in neigh for j in nb})
            pos = {n: i for i, n in enumerate(ids)}
            emb = clip.node_embeddings([images[i] for i in ids] if images else None,
                                       [texts[i] for i in ids] if texts else None,
                                       root=data.meta.get("image_root"), use=use)
            logits = clip.predict(emb[[pos[n] for n in nodes.tolist()]], class_emb,
                                  neighbor_index=[[pos[j] for j in nb] for nb in neigh], all_emb=emb, alpha=alpha)
            _store(selected, split, score(graph.y[nodes], logits.argmax(dim=1), len(class_names)))
            info[split] = {"nodes": nodes.numel(), "embedded": len(ids)}
        runs.append(_seed_record(record_base, seed, selected, start, info, out))
    modalities = use.replace("both", "text+image") + (f", {k} neighbours (alpha {alpha:g})" if k else "")
    return _finish(cfg, data, runs, record_base, modalities, {"num_neighbors": k, "alpha": alpha, "use": use}, out)
