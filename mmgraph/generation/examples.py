"""Generation examples: a target text to write, an input and a small multimodal neighbour graph.

Every generation data set (MMGL's WikiWeb2M sections, openclipart items, Tux Paint stamps) is
turned into the same form, which the neighbour-context language models
(:mod:`mmgraph.generation.model`) read:

* an :class:`Example` has an ``input_text`` (raw text the LM always reads as tokens; may be
  empty), a ``target`` (the text to generate), a split, and ``items``: the example's
  modality items, each on a node of the example's local graph (node 0 is the target node);
* an :class:`Item` is one text or one image: its ``role`` (``input``: the target's own content,
  always shown; ``context``: a neighbour's, which the context level may drop), its ``modality``,
  its ``node``, its raw ``text`` (text items; SA-TE puts it into the token stream) and ``row``,
  the row of its frozen-encoder embedding in :attr:`GenerationSet.features` ``[modality]``;
* the local graph ``edge_index`` (``[2, E]``, both directions of every undirected edge) over
  ``num_nodes`` nodes feeds the positional encodings (Laplacian eigenvectors, a GCN).

A :class:`GenerationSet` holds the examples and the two feature tables (``text``: ``[N_t, d_t]``,
``image``: ``[N_i, d_i]``), whose rows are the embeddings of mmgraph's cached feature encoders.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from mmgraph.errors import ConfigError

__all__ = ["Item", "Example", "GenerationSet", "CONTEXTS", "ROLES", "with_context"]

#: context levels: no neighbours, neighbours' texts only, neighbours' texts and images
CONTEXTS = ("none", "text", "multimodal")
ROLES = ("input", "context")


@dataclass(frozen=True)
class Item:
    """One text or image of an example (see the module docstring)."""

    modality: str             # "text" | "image"
    node: int                 # node of the example's local graph (0 = the target node)
    row: int                  # row of GenerationSet.features[modality]
    role: str = "context"     # "input" | "context"
    text: str | None = None   # raw text of a text item (None for images)


@dataclass
class Example:
    """One generation example (see the module docstring)."""

    id: str
    split: str                # "train" | "val" | "test"
    target: str
    input_text: str = ""
    items: list[Item] = field(default_factory=list)
    num_nodes: int = 1
    edge_index: torch.Tensor = field(default_factory=lambda: torch.zeros(2, 0, dtype=torch.long))
    group: str | None = None  # what the split is grouped on (the normalised target), for checks


def with_context(example: Example, context: str) -> Example:
    """``example`` with its context items limited to ``context`` (:data:`CONTEXTS`): ``none``
    keeps the input items only, ``text`` adds the neighbours' texts, ``multimodal`` keeps all."""
    if context not in CONTEXTS:
        raise ConfigError(f"context must be one of {', '.join(CONTEXTS)}; got {context!r}")
    keep = {"none": (), "text": ("text",), "multimodal": ("text", "image")}[context]
    items = [it for it in example.items if it.role == "input" or it.modality in keep]
    return Example(example.id, example.split, example.target, example.input_text, items,
                   example.num_nodes, example.edge_index, example.group)


@dataclass
class GenerationSet:
    """Examples and the feature tables their items point into."""

    examples: list[Example]
    features: dict[str, torch.Tensor]             # "text" -> [N_t, d_t], "image" -> [N_i, d_i]
    meta: dict = field(default_factory=dict)      # name, target field, encoders, split, counts

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    def counts(self) -> dict[str, int]:
        out = {"train": 0, "val": 0, "test": 0}
        for e in self.examples:
            out[e.split] = out.get(e.split, 0) + 1
        return out

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: int(t.size(1)) for m, t in self.features.items()}

    def check(self) -> None:
        """Every item's row exists in its table; every node is in range."""
        for e in self.examples:
            for it in e.items:
                table = self.features.get(it.modality)
                if table is None or not 0 <= it.row < table.size(0):
                    raise ValueError(f"example {e.id}: {it.modality} row {it.row} is not in the "
                                     f"feature table")
                if not 0 <= it.node < e.num_nodes:
                    raise ValueError(f"example {e.id}: item node {it.node} >= num_nodes {e.num_nodes}")


def tiny_set(num_examples: int = 8, text_dim: int = 16, image_dim: int = 12, seed: int = 0,
             splits: Sequence[str] = ("train", "val", "test")) -> GenerationSet:
    """A small random :class:`GenerationSet` for tests and examples: each example has an input
    image, two text neighbours and one image neighbour on a 4-node path graph."""
    gen = torch.Generator().manual_seed(seed)
    words = ["red", "blue", "cat", "dog", "tree", "house", "sun", "car", "a", "the"]
    examples: list[Example] = []
    n_text = n_image = 0
    for i in range(num_examples):
        pick = torch.randint(0, len(words), (6,), generator=gen).tolist()
        target = " ".join(words[j] for j in pick[:3])
        items = [Item("image", 0, n_image, "input"),
                 Item("text", 1, n_text, "context", " ".join(words[j] for j in pick[2:5])),
                 Item("text", 2, n_text + 1, "context", words[pick[5]]),
                 Item("image", 3, n_image + 1, "context")]
        n_text, n_image = n_text + 2, n_image + 2
        ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        examples.append(Example(f"ex{i}", splits[i % len(splits)], target, "describe:" if i % 2 else "",
                                items, 4, ei, target))
    feats = {"text": torch.randn(n_text, text_dim, generator=gen),
             "image": torch.randn(n_image, image_dim, generator=gen)}
    return GenerationSet(examples, feats, {"name": "tiny"})


def iter_batches(examples: Sequence[Example], batch_size: int) -> Iterable[list[Example]]:
    for i in range(0, len(examples), batch_size):
        yield list(examples[i:i + batch_size])
